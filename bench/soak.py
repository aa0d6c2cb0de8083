"""Soak test: the worker lifecycle under concurrency while the database is killed.

    python -m bench.soak                      # 32 workers, 500 subscribers, 10 min, 2 kills
    python -m bench.soak --short              # the suite's few-second version

It starts the embedded database (or uses JOBGRAPH_MONGODB_URI, where it cannot
restart anything) and one API process, then runs workers that create, claim,
progress, log and finish jobs, and subscribers (several users, each seeing only
what it may read) that record every status they are told of, while the database is
killed with SIGKILL (and started again) ``restarts`` times. At the end it checks:

- every job reached a terminal state (COMPLETED or FAILED), and exactly once;
- every completion or failure the API acknowledged is still there (nothing lost);
- no job was handed to two workers for the same attempt (nothing worked twice);
- every subscriber saw every status change of every job it may read, in order,
  and nothing of jobs it may not read.

Workers survive the restarts by retrying refused calls and re-reading the job, as a
real worker must: a response lost in an outage says nothing about whether the
change happened.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import random
import re
import sys
import tempfile
import time
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import websockets
from websockets.typing import Subprotocol

from graph.auth.tokens import mint_token
from graph.config.settings import load_settings
from repository.database import EmbeddedServer, free_port

SECRET = "soak-secret-that-is-long-enough-for-hs256-0123456789"
USERS = ["alice", "bob", "carol", "dave"]
TERMINAL = {"COMPLETED", "FAILED"}

CREATE = """mutation($input: CreateJobInput!) { createJob(input: $input) { jobId } }"""
CLAIM = """mutation { claimJob(jobTypes: ["soak"]) { jobId status attempts } }"""
PROGRESS = """mutation($id: ID!, $p: Int!) {
  updateJobProgress(jobId: $id, progress: {step: "work", percent: $p}) { status } }"""
LOG = """mutation($id: ID!) {
  appendJobLogs(jobId: $id, entries: [{level: INFO, message: "soak"}]) { status } }"""
COMPLETE = """mutation($id: ID!) { completeJob(jobId: $id, results: {ok: true}) { status } }"""
FAIL = """mutation($id: ID!) {
  failJob(jobId: $id, error: {code: "SOAK", message: "planned"}, retryable: false) {
    status } }"""
JOB = """query($id: ID!) { job(jobId: $id) { status claimedBy attempts } }"""
REAPER_SECONDS = 5.0
"""The server's lease sweeps (``JOBGRAPH_REAPER_INTERVAL_SECONDS``'s default)."""
RETRY_BASE_SECONDS = 1.0
"""A lapsed claim's job is claimable again this long after its lease is reaped."""
STEP_NAME = re.compile(r"{\s*(\w+)")
"""A mutation's field, to name a refused step."""
SUBSCRIBE = """subscription { jobsChanged(filter: {jobType: "soak"}, initial: 0) {
  kind jobId job { status version accessControl { visibility readAccess } owner } } }"""


@dataclass
class Options:
    duration: float = 600.0
    workers: int = 32
    subscribers: int = 500
    restarts: int = 2
    per_connection: int = 20
    lease_seconds: float = 120.0
    """A claim's lease (``JOBGRAPH_LEASE_SECONDS``): how long a job claimed for no worker
    stays PROCESSING before it is handed out again, so also how long the soak waits for the
    last jobs to end (see ``_drain``)."""


@dataclass
class Acknowledged:
    """What the API answered without error: claims handed out, and final writes."""

    claims: dict[tuple[str, int], int] = field(default_factory=lambda: defaultdict(int))
    endings: dict[str, str] = field(default_factory=dict)
    refusals: dict[str, list[str]] = field(default_factory=lambda: defaultdict(list))
    """Each job's refused steps (code and message), for a problem to say why."""

    def refused(self, job_id: str, step: str, body: dict[str, Any]) -> None:
        self.refusals[job_id] += [
            f"{step}: {error.get('extensions', {}).get('code')}: {error.get('message')}"
            for error in body.get("errors") or ()]


@dataclass
class Report:
    jobs: int = 0
    lifecycles: int = 0
    retried_calls: int = 0
    restarts: int = 0
    events: int = 0
    problems: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems


class Api:
    def __init__(self, url: str, settings: Any) -> None:
        self.client = httpx.AsyncClient(base_url=url, timeout=30)
        self.tokens = {user: mint_token(settings, user, ttl=7200) for user in USERS}
        self.tokens["worker"] = mint_token(settings, "soak-worker", ["worker"], ttl=7200)
        self.retried = 0

    async def call(self, query: str, variables: dict[str, Any] | None = None, *,
                   as_: str) -> dict[str, Any]:
        """The response body; transport errors and DATABASE_UNAVAILABLE are retried."""
        while True:
            try:
                response = await self.client.post(
                    "/graphql", json={"query": query, "variables": variables or {}},
                    headers={"Authorization": f"Bearer {self.tokens[as_]}"})
                body = response.json()
            except (httpx.HTTPError, ValueError):
                body = None
            codes = {e.get("extensions", {}).get("code") for e in (body or {}).get("errors", [])}
            if body is not None and "DATABASE_UNAVAILABLE" not in codes:
                return body
            self.retried += 1
            await asyncio.sleep(0.2)


async def worker(api: Api, stop: float, created: dict[str, dict[str, Any]], rng: random.Random,
                 acks: Acknowledged) -> int:
    """Create a job as some user, then take one and drive it to the end. Repeat."""
    done = 0
    while time.monotonic() < stop:
        owner = rng.choice(USERS)
        access = {"visibility": rng.choice(["PUBLIC", "PRIVATE"]),
                  "readAccess": rng.sample([u for u in USERS if u != owner], 1)}
        body = await api.call(CREATE, {"input": {"jobType": "soak", "accessControl": access,
                                                 "idempotencyKey": f"{owner}-{rng.random()}"}},
                              as_=owner)
        job_id = body["data"]["createJob"]["jobId"]
        created[job_id] = {"owner": owner, **access}
        claimed = (await api.call(CLAIM, as_="worker"))["data"]["claimJob"]
        if claimed is None:
            continue
        job_id = claimed["jobId"]
        acks.claims[job_id, claimed["attempts"]] += 1
        ending = FAIL if rng.random() < 0.1 else COMPLETE
        steps = [(PROGRESS, {"p": p}) for p in (25, 50, 75)] + [(LOG, {}), (LOG, {})]
        steps.append((ending, {}))
        for query, extra in steps:
            body = await api.call(query, {"id": job_id, **extra}, as_="worker")
            if query is ending and not body.get("errors"):
                acks.endings[job_id] = "FAILED" if ending is FAIL else "COMPLETED"
            if body.get("errors"):
                acks.refused(job_id, STEP_NAME.search(query)[1], body)  # type: ignore[index]
                # Refused: perhaps it happened before an outage cut the answer off.
                state = (await api.call(JOB, {"id": job_id}, as_="worker"))["data"]["job"]
                if state is None or state["status"] in TERMINAL:
                    break
        done += 1
    return done


def may_read(user: str, job: dict[str, Any]) -> bool:
    access = job.get("accessControl") or {}
    return (access.get("visibility") == "PUBLIC" or user == job.get("owner")
            or user in (access.get("readAccess") or []))


class Subscribers:
    """``count`` subscriptions spread over users and connections; each records statuses."""

    def __init__(self, url: str, api: Api, count: int, per_connection: int) -> None:
        self.url = url
        self.api = api
        self.count = count
        self.per_connection = per_connection
        self.seen: list[dict[str, list[str]]] = [defaultdict(list) for _ in range(count)]
        self.users = [USERS[n % len(USERS)] for n in range(count)]
        self.errors: list[str] = []
        self.events = 0
        self.ready = 0
        self.tasks: list[asyncio.Task[None]] = []

    async def start(self) -> None:
        for first in range(0, self.count, self.per_connection):
            members = list(range(first, min(first + self.per_connection, self.count)))
            self.tasks.append(asyncio.create_task(self._connection(members)))
        while self.ready < self.count:
            if any(task.done() for task in self.tasks):
                for task in self.tasks:
                    if task.done():
                        task.result()
            await asyncio.sleep(0.05)

    async def _connection(self, members: list[int]) -> None:
        user = self.users[members[0]]
        for member in members:
            self.users[member] = user
        async with websockets.connect(self.url, subprotocols=[Subprotocol("graphql-transport-ws")],
                                      max_size=None, open_timeout=60,
                                      ping_interval=None) as socket:
            await socket.send(json.dumps({"type": "connection_init", "payload": {
                "Authorization": f"Bearer {self.api.tokens[user]}"}}))
            assert json.loads(await socket.recv())["type"] == "connection_ack"
            for member in members:
                await socket.send(json.dumps({"id": str(member), "type": "subscribe",
                                              "payload": {"query": SUBSCRIBE}}))
            self.ready += len(members)
            async for raw in socket:
                message = json.loads(raw)
                if message.get("type") == "ping":
                    await socket.send(json.dumps({"type": "pong"}))
                    continue
                sender = int(message["id"]) if message.get("id") else None
                payload = message.get("payload") or {}
                if message["type"] != "next" or payload.get("errors"):
                    self.errors.append(f"subscriber {sender} ({user}): {message}")
                    continue
                assert sender is not None  # a "next" message names its subscription
                event = payload["data"]["jobsChanged"]
                if event["job"] is None:
                    continue
                job = event["job"]
                if not may_read(user, job):
                    self.errors.append(f"{user} was told of {event['jobId']}, not theirs")
                history = self.seen[sender][event["jobId"]]
                if not history or history[-1] != job["status"]:
                    history.append(job["status"])
                self.events += 1

    async def stop(self) -> None:
        for task in self.tasks:
            task.cancel()
        for task in self.tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task


async def run(options: Options, log: Any = print) -> Report:
    report = Report()
    uri = os.environ.get("JOBGRAPH_MONGODB_URI")
    database = f"soak_{int(time.time())}"
    server = None
    with tempfile.TemporaryDirectory() as scratch:
        if uri is None:
            server = EmbeddedServer(data_dir=Path(scratch) / "db")
            uri = await asyncio.to_thread(server.start)
        elif options.restarts:
            log("soak: JOBGRAPH_MONGODB_URI is set; the database will not be restarted")
            options.restarts = 0
        port = free_port()
        env = {**os.environ, "JOBGRAPH_MONGODB_URI": uri, "JOBGRAPH_DATABASE": database,
               "JOBGRAPH_JWT_SECRET": SECRET, "JOBGRAPH_LOG_LEVEL": "WARNING",
               "JOBGRAPH_MONGODB_TIMEOUT_MS": "2000",
               "JOBGRAPH_LEASE_SECONDS": str(options.lease_seconds),
               "JOBGRAPH_RETRY_BASE_SECONDS": str(RETRY_BASE_SECONDS),
               "JOBGRAPH_MAX_SUBSCRIPTIONS_PER_PROCESS": str(options.subscribers + 10),
               "JOBGRAPH_MAX_SUBSCRIPTIONS_PER_USER": str(options.subscribers + 10)}
        process = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "uvicorn", "graph.server.app:create_app", "--factory",
            "--host", "127.0.0.1", "--port", str(port), "--log-level", "warning", env=env)
        settings = load_settings(jwt_secret=SECRET)
        api = Api(f"http://127.0.0.1:{port}", settings)
        subscribers = Subscribers(f"ws://127.0.0.1:{port}/graphql", api, options.subscribers,
                                  options.per_connection)
        try:
            await _wait_ready(api)
            await subscribers.start()
            log(f"soak: {options.subscribers} subscribers ready; "
                f"{options.workers} workers for {options.duration:.0f} s")
            created: dict[str, dict[str, Any]] = {}
            stop = time.monotonic() + options.duration
            rng = random.Random(7)
            acks = Acknowledged()
            workers = [asyncio.create_task(worker(api, stop, created,
                                                  random.Random(rng.random()), acks))
                       for _ in range(options.workers)]
            for n in range(options.restarts):
                await asyncio.sleep(options.duration / (options.restarts + 1))
                log(f"soak: killing the database with SIGKILL ({n + 1}/{options.restarts})")
                await asyncio.to_thread(server.crash)  # type: ignore[union-attr]
                await asyncio.to_thread(server.start)  # type: ignore[union-attr]
                report.restarts += 1
            report.lifecycles = sum(await asyncio.gather(*workers))
            report.jobs = len(created)
            await _drain(api, created, acks, options.lease_seconds + RETRY_BASE_SECONDS
                         + 3 * REAPER_SECONDS)
            await _settle(subscribers, created, api)
            report.events = subscribers.events
            report.retried_calls = api.retried
            report.problems += await _check(api, created, subscribers, acks)
            report.problems += await _check_acknowledged(api, created, acks)
        finally:
            await subscribers.stop()
            await api.client.aclose()
            process.terminate()
            await process.wait()
            if server is not None:
                await asyncio.to_thread(server.stop)
    return report


async def _wait_ready(api: Api) -> None:
    async with asyncio.timeout(60):
        while True:
            with contextlib.suppress(httpx.HTTPError):
                if (await api.client.get("/readyz")).status_code == 200:
                    return
            await asyncio.sleep(0.1)


async def _drain(api: Api, created: dict[str, dict[str, Any]], acks: Acknowledged,
                 deadline: float) -> None:
    """Finish jobs created but not yet claimed when time ran out, until every job has
    ended or ``deadline`` passed. Two kinds of claim end up held for no worker, PROCESSING
    for a while after the load: one the database applied as it died, whose answer never
    came, until the server's next lease sweep undoes it (``REAPER_SECONDS``); and, on the
    embedded database, one the driver sent again once it was back: SecantusDB forgets the
    retryable writes it saw when it is killed, so the retry took a second job (MongoDB
    keeps them with the write), and the first comes back when its lease lapses, after the
    retry delay. A job still unfinished at the deadline is what the check reports."""
    end = time.monotonic() + deadline
    while True:
        claimed = (await api.call(CLAIM, as_="worker"))["data"]["claimJob"]
        if claimed is None:
            states = await _final_states(api, created)
            if (all(status in TERMINAL for status, _ in states.values())
                    or time.monotonic() > end):
                return
            await asyncio.sleep(0.5)
            continue
        body = await api.call(COMPLETE, {"id": claimed["jobId"]}, as_="worker")
        acks.refused(claimed["jobId"], "completeJob (drain)", body)


async def _final_states(api: Api, created: dict[str, dict[str, Any]]
                        ) -> dict[str, tuple[str, int]]:
    """Each job's final status and how many times it was claimed."""
    states = {}
    for job_id, meta in created.items():
        job = (await api.call(JOB, {"id": job_id}, as_=meta["owner"]))["data"]["job"]
        states[job_id] = (job["status"], job["attempts"]) if job else ("MISSING", 0)
    return states


async def _settle(subscribers: Subscribers, created: dict[str, dict[str, Any]], api: Api,
                  deadline: float = 60) -> None:
    """Wait until every subscriber heard of every readable job's final state."""
    states = await _final_states(api, created)
    end = time.monotonic() + deadline
    while time.monotonic() < end:
        if all(seen.get(job_id, [None])[-1] == states[job_id][0]
               for member, seen in enumerate(subscribers.seen)
               for job_id, meta in created.items()
               if may_read(subscribers.users[member], {"owner": meta["owner"],
                                                       "accessControl": meta})):
            return
        await asyncio.sleep(0.2)


async def _check(api: Api, created: dict[str, dict[str, Any]], subscribers: Subscribers,
                 acks: Acknowledged) -> list[str]:
    problems = list(subscribers.errors[:20])
    states = await _final_states(api, created)
    for job_id, (status, _attempts) in states.items():
        if status not in TERMINAL:
            refused = "; ".join(acks.refusals.get(job_id, [])) or "no step refused"
            problems.append(f"job {job_id} ended {status}, not in a terminal state "
                            f"({refused})")
    histories: dict[str, list[str]] = {}
    for member, seen in enumerate(subscribers.seen):
        user = subscribers.users[member]
        for job_id, meta in created.items():
            readable = may_read(user, {"owner": meta["owner"], "accessControl": meta})
            history = seen.get(job_id, [])
            if not readable:
                if history:
                    problems.append(f"subscriber {member} ({user}) saw unreadable {job_id}")
                continue
            final, attempts = states[job_id]
            # Every change, in order: PENDING -> PROCESSING per claim (a claim whose answer
            # was lost in an outage is undone: PROCESSING -> PENDING, its attempt given
            # back, so there may be more claims than attempts), then the end; and every
            # subscriber of the job saw the same history.
            claims = (len(history) - 1) // 2
            if (history != ["PENDING", "PROCESSING"] * claims + [final]
                    or claims < attempts):
                problems.append(f"subscriber {member} ({user}) saw {history} for {job_id}, "
                                f"which ended {final} after {attempts} attempts")
            elif histories.setdefault(job_id, history) != history:
                problems.append(f"subscriber {member} ({user}) saw {history} for {job_id}, "
                                f"another saw {histories[job_id]}")
    return problems[:50]


async def _check_acknowledged(api: Api, created: dict[str, dict[str, Any]],
                              acks: Acknowledged) -> list[str]:
    """Acknowledged endings kept; no attempt of a job handed to two workers."""
    problems = [f"job {job_id} attempt {attempt} was handed to {count} workers"
                for (job_id, attempt), count in acks.claims.items() if count > 1]
    states = await _final_states(api, created)
    for job_id, ending in acks.endings.items():
        status = states.get(job_id, ("NOT CREATED BY US", 0))[0]
        if status != ending:
            problems.append(f"job {job_id}: {ending} was acknowledged, it is now {status}")
    return problems[:50]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.soak", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--duration", type=float, default=600.0, help="seconds of load")
    parser.add_argument("--workers", type=int, default=32)
    parser.add_argument("--subscribers", type=int, default=500)
    parser.add_argument("--restarts", type=int, default=2,
                        help="times the database is killed (SIGKILL) and started again")
    parser.add_argument("--short", action="store_true",
                        help="the suite's version: 12 s, 4 workers, 20 subscribers, 1 restart, "
                             "10 s leases")
    parser.add_argument("--lease-seconds", type=float, default=120.0,
                        help="claims' leases: how long a claim held for no worker lasts")
    args = parser.parse_args(argv)
    options = (Options(12, 4, 20, 1, lease_seconds=10) if args.short else
               Options(args.duration, args.workers, args.subscribers, args.restarts,
                       lease_seconds=args.lease_seconds))
    report = asyncio.run(run(options))
    print(json.dumps({**report.__dict__, "ok": report.ok}, indent=2))
    return 0 if report.ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
