"""Shared execution (``JOBGRAPH_SHARED_SUBSCRIPTIONS``, on by default) sends exactly what
per-subscriber execution sends: two servers on one database, one sharing and one not,
get the same subscribers (several users, documents that read the caller and documents
that do not, both WebSocket protocols and Server-Sent Events), then the same random
sequence of changes, access taken and given back among them; every subscriber must
receive byte-identical frames from both, and never an object it could not read at that
version.

Frames are compared raw (a third-party client would parse them), so the sockets are the
``websockets`` library's and the event stream is read with httpx; what clients make of
these frames is tested with them in ``tests/clients``.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import random
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import httpx
import pytest
import websockets

from graph.auth.tokens import mint_token
from graph.engine.sharing import shared_results
from tests.helpers.graphql import ADMIN, WORKER, Api, Caller, make_settings
from tests.helpers.live import DEADLINE, live_server
from tests.helpers.waiting import eventually

ANN, BEN, CAT = Caller("ann"), Caller("ben"), Caller("cat")
USERS = (ANN, BEN, CAT)

# reads nothing of the caller: shared by every subscriber of the job
PLAIN = """subscription($id: ID!) { jobChanged(jobId: $id) {
  id jobId status version logSeq progress { step percent } accessControl { readAccess }
  error { code } } }"""
# reads the caller: shared only among the same caller's subscriptions
VIEWER = """subscription($id: ID!) { jobChanged(jobId: $id) {
  version viewerCanWrite viewerCanAdmin batch { batchName } } }"""
FILTERED = """subscription($f: JobSubscriptionFilter) { jobsChanged(filter: $f, initial: 5) {
  kind jobId job { jobId status version progress { percent } } } }"""
FILTERED_VIEWER = """subscription($f: JobSubscriptionFilter) {
  jobsChanged(filter: $f, initial: 5) { kind jobId job { version viewerCanRetry } } }"""

CREATE_BATCH = """mutation($ac: AccessControlInput!, $jac: AccessControlInput!) {
  createBatch(input: {batchName: "shared", accessControl: $ac,
                      jobs: [{jobType: "diff", accessControl: $jac}]}) {
    jobs(first: 1) { edges { node { jobId version } } } } }"""
CREATE_JOB = """mutation($t: String!, $ac: AccessControlInput!) {
  createJob(input: {jobType: $t, accessControl: $ac}) { jobId version } }"""
CLAIM = """mutation { claimJob(jobTypes: ["diff"]) { jobId version } }"""
PROGRESS = """mutation($id: ID!, $p: Int!) {
  updateJobProgress(jobId: $id, progress: {step: "s", percent: $p}) { version } }"""
LOG = """mutation($id: ID!) {
  appendJobLogs(jobId: $id, entries: [{level: INFO, message: "m"}]) { version } }"""
SET_ACCESS = """mutation($id: ID!, $ac: AccessControlInput!) {
  setJobAccess(jobId: $id, accessControl: $ac) { version } }"""
DELETE = """mutation($id: ID!) { deleteJob(jobId: $id) { jobId } }"""


def access(readers: set[str], public: bool = False) -> dict[str, Any]:
    return {"visibility": "PUBLIC" if public else "PRIVATE", "readAccess": sorted(readers)}


@dataclass
class Ledger:
    """Who could read each job at each of its versions."""

    readers: dict[tuple[str, int], frozenset[str] | None] = field(default_factory=dict)
    now: dict[str, tuple[frozenset[str], bool]] = field(default_factory=dict)

    def record(self, job_id: str, version: int) -> None:
        readers, public = self.now[job_id]
        self.readers[(job_id, version)] = None if public else readers

    def may_read(self, user: str, job_id: str, version: int) -> bool:
        readers = self.readers[(job_id, version)]
        return readers is None or user in readers


@dataclass
class Subscription:
    label: str
    user: Caller
    query: str
    variables: dict[str, Any]
    ends_with: str
    """``complete``, or the id of the job whose DELETED event is the last one expected."""


class Socket:
    """A raw WebSocket client: every text frame of each operation, as received."""

    def __init__(self, url: str, protocol: str, token: str) -> None:
        self.url, self.protocol, self.token = url, protocol, token
        self.frames: dict[str, list[str]] = {}
        self.socket: Any = None
        self.reader: asyncio.Task[None] | None = None

    async def open(self) -> None:
        self.socket = await websockets.connect(self.url, subprotocols=[self.protocol],
                                               open_timeout=DEADLINE, max_size=None)
        await self.socket.send(json.dumps({"type": "connection_init",
                                           "payload": {"Authorization": self.token}}))
        assert json.loads(await self.socket.recv())["type"] == "connection_ack"
        self.reader = asyncio.create_task(self._read())

    async def _read(self) -> None:
        with contextlib.suppress(websockets.ConnectionClosed):
            async for raw in self.socket:
                assert isinstance(raw, str), "a binary frame"
                message = json.loads(raw)
                if "id" in message:
                    self.frames.setdefault(message["id"], []).append(raw)

    async def subscribe(self, op: str, subscription: Subscription) -> None:
        kind = "subscribe" if self.protocol == "graphql-transport-ws" else "start"
        self.frames[op] = []
        await self.socket.send(json.dumps({"id": op, "type": kind, "payload": {
            "query": subscription.query, "variables": subscription.variables}}))

    async def close(self) -> None:
        await self.socket.close()
        if self.reader is not None:
            await self.reader


MULTIPART = 'multipart/mixed;boundary="graphql";subscriptionSpec=1.0,application/json'
END_OF_PARTS = "--"
"""The frame standing for a multipart stream's closing boundary."""


class HttpStream:
    """A raw HTTP subscription stream, Server-Sent Events or multipart: every event (an
    SSE block, a multipart part's body), as received, heartbeats left out."""

    def __init__(self, url: str, token: str, subscription: Subscription, accept: str
                 ) -> None:
        self.raw = ""
        self.accept = accept
        self.client = httpx.AsyncClient(base_url=url, timeout=None)
        self.task = asyncio.create_task(self._read(self.client, token, subscription))

    async def _read(self, client: httpx.AsyncClient, token: str,
                    subscription: Subscription) -> None:
        async with client.stream("POST", "/graphql", json={
                "query": subscription.query, "variables": subscription.variables},
                headers={"Authorization": token, "Accept": self.accept}) as response:
            assert response.status_code == 200, response.status_code
            async for text in response.aiter_text():
                self.raw += text

    @property
    def frames(self) -> list[str]:
        if self.accept == "text/event-stream":
            blocks = self.raw.replace("\r\n", "\n").split("\n\n")[:-1]
            return [block for block in blocks if block.startswith("event:")]
        *parts, last = self.raw.split("--graphql")
        found = []
        for part in parts:
            if "\r\n\r\n" not in part:  # before the first boundary, or before the last
                continue
            body = part.split("\r\n\r\n", 1)[1].strip()
            if body != "{}":  # a heartbeat
                found.append(body)
        if last.startswith(END_OF_PARTS):
            found.append(END_OF_PARTS)
        return found

    async def close(self) -> None:
        self.task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self.task
        await self.client.aclose()
        if not self.task.cancelled() and self.task.exception() is not None:
            raise self.task.exception()  # type: ignore[misc]


def done(frames: list[str], ends_with: str) -> bool:
    if ends_with == "complete":
        return any('"complete"' in frame or frame.startswith("event: complete")
                   or frame == END_OF_PARTS for frame in frames)
    return any(ends_with in frame and "DELETED" in frame for frame in frames)


def payloads(frames: list[str]) -> list[dict[str, Any]]:
    found = []
    for frame in frames:
        if frame == END_OF_PARTS:
            continue
        text = frame.split("data: ", 1)[1] if frame.startswith("event:") else frame
        message = json.loads(text) if text.strip() else {}
        payload = message.get("payload", message)
        if isinstance(payload, dict) and payload.get("data"):
            found.append(payload["data"])
    return found


def view_of(server: Any) -> Any:
    """The app's GraphQL view (what holds its parked subscriptions and its schema)."""
    [route] = [route for route in server.app.routes
               if getattr(route, "path", None) == "/graphql" and hasattr(route, "methods")]
    return route.endpoint


@contextlib.asynccontextmanager
async def two_servers(mongo_uri: str, database_name: str) -> AsyncIterator[tuple[Any, Any]]:
    shared = make_settings(database=database_name)
    alone = make_settings(database=database_name, shared_subscriptions=False)
    async with live_server(shared, mongo_uri) as one, live_server(alone, mongo_uri) as two:
        yield one, two


@pytest.mark.parametrize("seed", [1, 2])
async def test_shared_execution_sends_what_per_subscriber_execution_sends(
    mongo_uri: str, store: Any, database_name: str, seed: int
) -> None:
    rng = random.Random(seed)
    settings = make_settings(database=database_name)

    def token(caller: Caller) -> str:
        return f"Bearer {mint_token(settings, caller.user_id, caller.roles)}"

    async with two_servers(mongo_uri, database_name) as servers, httpx.AsyncClient(
            base_url=servers[0].url, timeout=DEADLINE) as client:
        api = Api(client, settings)
        ledger = Ledger()
        job_type = f"diff-{seed}"

        async def write(query: str, variables: dict[str, Any], job_id: str,
                        as_: Caller = WORKER) -> None:
            data = await api.data(query, variables, as_=as_)
            ledger.record(job_id, next(iter(data.values()))["version"])

        # given two jobs of a batch only ann may read, ann and ben reading the first and
        # ann and cat the second, both claimed by a worker
        created = await api.data(CREATE_BATCH.replace('"diff"', f'"{job_type}"'), {
            "ac": access({"ann"}), "jac": access({"ann", "ben"})}, as_=ADMIN)
        first = created["createBatch"]["jobs"]["edges"][0]["node"]
        second = (await api.data(CREATE_JOB, {"t": job_type, "ac": access({"ann", "cat"})},
                                 as_=ADMIN))["createJob"]
        jobs = [first["jobId"], second["jobId"]]
        ledger.now = {jobs[0]: (frozenset({"ann", "ben"}), False),
                      jobs[1]: (frozenset({"ann", "cat"}), False)}
        for node in (first, second):
            ledger.record(node["jobId"], node["version"])
        for _ in jobs:
            claimed = (await api.data(CLAIM.replace('"diff"', f'"{job_type}"'),
                                      as_=WORKER))["claimJob"]
            ledger.record(claimed["jobId"], claimed["version"])
        sentinel = "sentinel"  # replaced by the id of the last job, made to end the streams
        one_id = {"id": jobs[0]}
        two_id = {"id": jobs[1]}
        by_type = {"f": {"jobType": job_type}}
        sockets_plan: list[tuple[str, Caller, str, list[Subscription]]] = [
            ("ann", ANN, "graphql-transport-ws", [
                Subscription("a1", ANN, PLAIN, one_id, "complete"),
                Subscription("a2", ANN, VIEWER, one_id, "complete"),
                Subscription("a3", ANN, FILTERED, by_type, sentinel),
                Subscription("a4", ANN, FILTERED_VIEWER, by_type, sentinel),
                Subscription("a5", ANN, PLAIN, two_id, "complete")]),
            ("ben", BEN, "graphql-ws", [
                Subscription("b1", BEN, PLAIN, one_id, "complete"),
                Subscription("b2", BEN, VIEWER, one_id, "complete"),
                Subscription("b3", BEN, FILTERED, by_type, sentinel)]),
            ("ben-2", BEN, "graphql-transport-ws", [
                Subscription("d1", BEN, PLAIN, two_id, "complete"),  # refused: not a reader
                Subscription("d2", BEN, PLAIN, one_id, "complete")]),
            ("cat", CAT, "graphql-transport-ws", [
                Subscription("c1", CAT, PLAIN, two_id, "complete"),
                Subscription("c2", CAT, VIEWER, two_id, "complete"),
                Subscription("c3", CAT, FILTERED_VIEWER, by_type, sentinel)]),
        ]
        streams_plan = [  # (subscription, Accept)
            (Subscription("s1", ANN, PLAIN, one_id, "complete"), "text/event-stream"),
            (Subscription("s2", BEN, FILTERED, by_type, sentinel), "text/event-stream"),
            (Subscription("m1", BEN, PLAIN, one_id, "complete"), MULTIPART),
            (Subscription("m2", CAT, FILTERED_VIEWER, by_type, sentinel), MULTIPART)]

        # when both servers get the same subscribers
        sockets: list[list[Socket]] = []
        streams: list[list[HttpStream]] = []
        for server in servers:
            opened = []
            for _label, user, protocol, subscriptions in sockets_plan:
                socket = Socket(server.ws_url, protocol, token(user))
                await socket.open()
                for subscription in subscriptions:
                    await socket.subscribe(subscription.label, subscription)
                opened.append(socket)
            sockets.append(opened)
            streams.append([HttpStream(server.url, token(s.user), s, accept)
                            for s, accept in streams_plan])
        try:
            def silent() -> list[str]:
                return [f"{server}:{label}" for server, per_server in enumerate(sockets)
                        for socket in per_server for label, frames in socket.frames.items()
                        if not frames] + [
                    f"{server}:{s.label}" for server, per_server in enumerate(streams)
                    for stream, (s, _) in zip(per_server, streams_plan, strict=True)
                    if not stream.frames]

            try:
                await eventually(lambda: not silent(), deadline=DEADLINE)
            except TimeoutError:
                raise AssertionError(f"no first frame: {silent()}") from None
            # (the sharing server parked its sockets' subscriptions, several in one group;
            # the other parked none)
            shared_fanout, alone_fanout = (view_of(server).fanout for server in servers)
            assert shared_fanout.parked > 0 and alone_fanout.parked == 0
            assert max(group.members for group in shared_fanout.groups.values()) >= 3
            # and the same changes: progress, logs, access taken and given, new jobs
            readers = {job_id: set(ledger.now[job_id][0]) for job_id in jobs}
            for _ in range(14):
                job_id = rng.choice(jobs)
                action = rng.choice(["progress", "log", "access", "access", "create"])
                if action == "progress":
                    await write(PROGRESS, {"id": job_id, "p": rng.randrange(100)}, job_id)
                elif action == "log":
                    await write(LOG, {"id": job_id}, job_id)
                elif action == "access":
                    readers[job_id] = {user.user_id for user in USERS if rng.random() < 0.6}
                    public = rng.random() < 0.2
                    ledger.now[job_id] = (frozenset(readers[job_id]), public)
                    await write(SET_ACCESS, {"id": job_id, "ac": access(readers[job_id],
                                                                          public)},
                                job_id, as_=ADMIN)
                else:
                    chosen = {user.user_id for user in USERS if rng.random() < 0.5}
                    made = (await api.data(CREATE_JOB, {"t": job_type, "ac": access(chosen)},
                                           as_=ADMIN))["createJob"]
                    ledger.now[made["jobId"]] = (frozenset(chosen), False)
                    ledger.record(made["jobId"], made["version"])
            for job_id in jobs:
                await api.data(DELETE, {"id": job_id}, as_=ADMIN)
            last = (await api.data(CREATE_JOB, {"t": job_type, "ac": access(set(), True)},
                                   as_=ADMIN))["createJob"]
            ledger.now[last["jobId"]] = (frozenset(), True)
            ledger.record(last["jobId"], last["version"])
            await api.data(DELETE, {"id": last["jobId"]}, as_=ADMIN)

            def ended() -> bool:
                for per_server, per_streams in zip(sockets, streams, strict=True):
                    for socket, (_, _, _, subscriptions) in zip(per_server, sockets_plan,
                                                                strict=True):
                        for s in subscriptions:
                            end = last["jobId"] if s.ends_with == sentinel else "complete"
                            if not done(socket.frames[s.label], end):
                                return False
                    for stream, (s, _) in zip(per_streams, streams_plan, strict=True):
                        end = last["jobId"] if s.ends_with == sentinel else "complete"
                        if not done(stream.frames, end):
                            return False
                return True

            await eventually(ended, deadline=3 * DEADLINE)
            # (and shared results, which the HTTP streams execute through, on one only)
            assert shared_results(view_of(servers[0]).schema._schema).entries
            assert not shared_results(view_of(servers[1]).schema._schema).entries
        finally:
            for per_server in sockets:
                for socket in per_server:
                    await socket.close()
            for per_streams in streams:
                for stream in per_streams:
                    await stream.close()

    # then every subscriber got byte-identical frames from both servers
    shared_sockets, alone_sockets = sockets
    for (label, user, _, subscriptions), shared, alone in zip(
            sockets_plan, shared_sockets, alone_sockets, strict=True):
        for s in subscriptions:
            assert shared.frames[s.label] == alone.frames[s.label], (label, s.label)
            check_readable(user, s, shared.frames[s.label], ledger)
    for (s, _), shared, alone in zip(streams_plan, *streams, strict=True):
        assert shared.frames == alone.frames, s.label
        check_readable(s.user, s, shared.frames, ledger)
    # and the run saw what it is about: events after the start, and access taken
    assert sum(len(frames) for socket in shared_sockets for frames in socket.frames.values()) \
        > 20
    assert any("NOT_FOUND" in frame for socket in shared_sockets
               for frames in socket.frames.values() for frame in frames)


def check_readable(user: Caller, subscription: Subscription, frames: list[str],
                   ledger: Ledger) -> None:
    """No frame carries a job its subscriber could not read at that version (nor a batch
    only ann may read, to anyone else)."""
    for data in payloads(frames):
        for value in data.values():
            job = value.get("job", value) if isinstance(value, dict) else None
            if not job or "version" not in job:
                continue
            job_id = job.get("jobId") or value.get("jobId") or subscription.variables.get("id")
            assert ledger.may_read(user.user_id, job_id, job["version"]), (
                f"{user.user_id} got {job_id} at version {job['version']}")
            if job.get("batch") is not None:
                assert user.user_id == "ann", f"{user.user_id} got the batch"
