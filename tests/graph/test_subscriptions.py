"""Subscriptions through real WebSocket clients against a real uvicorn server."""

from __future__ import annotations

import asyncio
import base64
import json
import os
import subprocess
import sys
import time
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
import websockets

from graph.auth.tokens import mint_token
from repository.database import free_port, make_client
from tests.helpers.graphql import (
    ADMIN,
    ALICE,
    ANON,
    BOB,
    METRICS,
    TEST_SECRET,
    WORKER,
    Api,
    make_settings,
)
from tests.helpers.live import DEADLINE, SubscriptionClosed, live_server, ws_client
from tests.helpers.waiting import eventually

PROTOCOLS = ["graphql-transport-ws", "graphql-ws"]

JOB_CHANGED = """
subscription($id: ID!) {
  jobChanged(jobId: $id) { jobId status version progress { percent } logSeq results error { code } }
}"""
JOBS_CHANGED = """
subscription($filter: JobSubscriptionFilter, $initial: Int!) {
  jobsChanged(filter: $filter, initial: $initial) { kind jobId job { status jobType version } }
}"""
BATCH_CHANGED = """
subscription($id: ID!) {
  batchChanged(batchId: $id) { status counts { pending processing completed failed total } }
}"""
DOCUMENTATION_JOB_CHANGED = """
subscription($id: ID!) { documentationJobChanged(jobId: $id) { status version timestampEnd } }"""
JOB_LOGS = """
subscription($id: ID!, $after: Int!) {
  jobLogs(jobId: $id, after: $after) { entries { seq message } gap { fromSeq toSeq } lastSeq }
}"""

CREATE_JOB = """mutation($input: CreateJobInput!) { createJob(input: $input) { jobId } }"""
CLAIM = """mutation($types: [String!]) { claimJob(jobTypes: $types) { jobId } }"""
PROGRESS = """mutation($id: ID!, $p: Int!) {
  updateJobProgress(jobId: $id, progress: {step: "s", percent: $p}) { version } }"""
LOG = """mutation($id: ID!, $m: String!) {
  appendJobLogs(jobId: $id, entries: [{level: INFO, message: $m}]) { logSeq } }"""
COMPLETE = """mutation($id: ID!) { completeJob(jobId: $id, results: {ok: true}) { version } }"""
HEARTBEAT = """mutation($id: ID!) { heartbeatJob(jobId: $id) { version } }"""
SET_ACCESS = """mutation($id: ID!, $ac: AccessControlInput!) {
  setJobAccess(jobId: $id, accessControl: $ac) { version } }"""


def bearer(settings: Any, caller: Any, ttl: float = 3600) -> dict[str, str]:
    return {"Authorization": f"Bearer {mint_token(settings, caller.user_id, caller.roles, ttl)}"}


@pytest.fixture
async def live(settings: Any, mongo_uri: str, store: Any) -> AsyncIterator[Any]:
    async with live_server(settings, mongo_uri) as server:
        yield server


@pytest.fixture
async def http(live: Any, settings: Any) -> AsyncIterator[Api]:
    async with httpx.AsyncClient(base_url=live.url, timeout=DEADLINE) as client:
        yield Api(client, settings)


async def create_job(http: Api, job_type: str = "pdf", *, as_: Any = ALICE,
                     **fields: Any) -> str:
    data = await http.data(CREATE_JOB, {"input": {"jobType": job_type, **fields}}, as_=as_)
    return data["createJob"]["jobId"]


async def collect(client: Any, op: str, until: Any) -> list[dict[str, Any]]:
    events = []
    while True:
        events.append(await client.next(op))
        if until(events[-1]):
            return events


@pytest.mark.parametrize("protocol", PROTOCOLS)
async def test_several_subscriptions_in_one_document_need_a_name(
    live: Any, http: Api, settings: Any, protocol: str
) -> None:
    job_id = await create_job(http)
    document = ("subscription A($id: ID!) { jobChanged(jobId: $id) { status } } "
                "subscription B($id: ID!) { jobLogs(jobId: $id) { lastSeq } }")
    async with ws_client(live, protocol=protocol, payload=bearer(settings, ALICE)) as client:
        op = await client.subscribe(document, {"id": job_id})
        with pytest.raises(SubscriptionClosed) as refused:
            await client.next(op)
    errors = refused.value.errors
    errors = errors if isinstance(errors, list) else errors.get("errors", [errors])
    assert errors[0]["extensions"]["code"] == "GRAPHQL_VALIDATION_FAILED"


@pytest.mark.parametrize("protocol", PROTOCOLS)
async def test_job_changed_sends_every_lifecycle_step_in_order(
    live: Any, http: Api, settings: Any, protocol: str
) -> None:
    # given a job and a subscriber whose subscription races the first mutations
    job_id = await create_job(http)
    async with ws_client(live, protocol=protocol, payload=bearer(settings, ALICE)) as client:
        op = await client.subscribe(JOB_CHANGED, {"id": job_id})

        async def drive() -> None:
            await http.data(CLAIM, {"types": ["pdf"]}, as_=WORKER)
            for percent in (10, 50, 90):
                await http.data(PROGRESS, {"id": job_id, "p": percent}, as_=WORKER)
            for message in ("one", "two"):
                await http.data(LOG, {"id": job_id, "m": message}, as_=WORKER)
            await http.data(COMPLETE, {"id": job_id}, as_=WORKER)

        # when the worker drives the job through its lifecycle without pausing
        driver = asyncio.create_task(drive())
        events = await collect(client, op,
                               lambda e: e["jobChanged"]["status"] == "COMPLETED")
        await driver
    # then every version from the first state on arrives once, in order
    states = [event["jobChanged"] for event in events]
    versions = [state["version"] for state in states]
    assert versions == list(range(versions[0], 8))
    assert states[-1]["results"] == {"ok": True}
    by_version = {state["version"]: state for state in states}
    expected = {1: ("PROCESSING", None, 0), 2: ("PROCESSING", 10, 0),
                3: ("PROCESSING", 50, 0), 4: ("PROCESSING", 90, 0), 5: ("PROCESSING", 90, 1),
                6: ("PROCESSING", 90, 2), 7: ("COMPLETED", 90, 2)}
    for version, (status, percent, log_seq) in expected.items():
        if version in by_version:
            state = by_version[version]
            assert (state["status"], (state["progress"] or {}).get("percent"),
                    state["logSeq"]) == (status, percent, log_seq)


async def test_jobs_changed_delivers_only_matching_jobs(
    live: Any, http: Api, settings: Any
) -> None:
    # given a subscriber to "pdf" jobs and one existing pdf job
    existing = await create_job(http, "pdf")
    async with ws_client(live, payload=bearer(settings, ALICE)) as client:
        op = await client.subscribe(JOBS_CHANGED, {"filter": {"jobType": "pdf"}, "initial": 5})
        first = await client.next(op)
        assert first["jobsChanged"]["kind"] == "CURRENT"
        assert first["jobsChanged"]["jobId"] == existing
        # when jobs of other types and a new pdf job are created
        other = [await create_job(http, "session") for _ in range(3)]
        marker = await create_job(http, "pdf")
        events = await collect(client, op, lambda e: e["jobsChanged"]["jobId"] == marker)
    # then only the pdf job arrives, as CREATED
    assert [e["jobsChanged"]["jobId"] for e in events] == [marker]
    assert events[0]["jobsChanged"]["kind"] == "CREATED"
    assert not set(other) & {e["jobsChanged"]["jobId"] for e in events}


async def test_jobs_changed_tells_when_a_job_leaves_the_filter(
    live: Any, http: Api, settings: Any
) -> None:
    job_id = await create_job(http, "pdf")
    async with ws_client(live, payload=bearer(settings, ALICE)) as client:
        op = await client.subscribe(JOBS_CHANGED, {"filter": {"status": "PENDING"},
                                                   "initial": 1})
        assert (await client.next(op))["jobsChanged"]["kind"] == "CURRENT"
        await http.data(CLAIM, {"types": ["pdf"]}, as_=WORKER)
        event = (await client.next(op))["jobsChanged"]
    assert (event["jobId"], event["kind"], event["job"]["status"]) == (
        job_id, "UPDATED", "PROCESSING")


async def test_private_job_events_never_reach_an_unrelated_user(
    live: Any, http: Api, settings: Any
) -> None:
    # given bob subscribed to every job change
    async with ws_client(live, payload=bearer(settings, BOB)) as client:
        op = await client.subscribe(JOBS_CHANGED, {"initial": 0})
        # when alice creates and drives a private job, then a public marker job
        private = await create_job(http, "secret")
        await http.data(LOG, {"id": private, "m": "hidden"})
        marker = await create_job(http, "marker",
                                  accessControl={"visibility": "PUBLIC"})
        events = await collect(client, op, lambda e: e["jobsChanged"]["jobId"] == marker)
        # then bob heard only of the public job
        assert {e["jobsChanged"]["jobId"] for e in events} == {marker}
        # and subscribing to the private job directly looks like a missing job
        op2 = await client.subscribe(JOB_CHANGED, {"id": private})
        with pytest.raises(SubscriptionClosed) as refused:
            await client.next(op2)
        assert refused.value.errors[0]["extensions"]["code"] == "NOT_FOUND"


async def test_a_legacy_stop_read_with_its_start_is_answered_complete(
    live: Any, http: Api, settings: Any
) -> None:
    """graphql-ws: a ``stop`` read in the same go as its ``start`` (the operation's task not
    yet begun) is answered ``complete``, as a stop of a running or parked one is."""
    job_id = await create_job(http)
    async with websockets.connect(live.ws_url, subprotocols=["graphql-ws"]) as socket:  # type: ignore[list-item]
        await socket.send(json.dumps({"type": "connection_init",
                                      "payload": bearer(settings, ALICE)}))
        assert json.loads(await socket.recv())["type"] == "connection_ack"
        for operation_id in ("validates-the-document", "stopped-at-once"):
            # (the server reads both messages at once: it shares this event loop)
            await socket.send(json.dumps({"id": operation_id, "type": "start", "payload": {
                "query": JOB_CHANGED, "variables": {"id": job_id}}}))
            await socket.send(json.dumps({"id": operation_id, "type": "stop"}))
            async with asyncio.timeout(DEADLINE):
                while True:
                    message = json.loads(await socket.recv())
                    if message.get("id") == operation_id and message["type"] == "complete":
                        break


async def test_subscriber_who_loses_read_access_stops_receiving(
    live: Any, http: Api, settings: Any
) -> None:
    job_id = await create_job(http, accessControl={"readAccess": ["bob"]})
    async with ws_client(live, payload=bearer(settings, BOB)) as client:
        op = await client.subscribe(JOB_CHANGED, {"id": job_id})
        assert (await client.next(op))["jobChanged"]["jobId"] == job_id
        # when alice removes bob from the readers and changes the job again
        await http.data(SET_ACCESS, {"id": job_id, "ac": {"adminAccess": ["alice"]}})
        await http.data(LOG, {"id": job_id, "m": "after revocation"})
        # then bob's subscription ends with NOT_FOUND and carries nothing more
        with pytest.raises(SubscriptionClosed) as ended:
            await client.next(op)
        assert ended.value.errors[0]["extensions"]["code"] == "NOT_FOUND"


async def test_batch_changed_follows_status_and_counts(
    live: Any, http: Api, settings: Any
) -> None:
    data = await http.data(
        """mutation { createBatch(input: {batchName: "b", jobs: [{jobType: "bt"}]}) {
             batchId } }""")
    batch_id = data["createBatch"]["batchId"]
    async with ws_client(live, payload=bearer(settings, ALICE)) as client:
        op = await client.subscribe(BATCH_CHANGED, {"id": batch_id})
        assert (await client.next(op))["batchChanged"]["status"] == "PENDING"
        claimed = await http.data(CLAIM, {"types": ["bt"]}, as_=WORKER)
        await http.data(COMPLETE, {"id": claimed["claimJob"]["jobId"]}, as_=WORKER)
        events = await collect(client, op,
                               lambda e: e["batchChanged"]["status"] == "COMPLETED")
    assert events[-1]["batchChanged"]["counts"] == {
        "pending": 0, "processing": 0, "completed": 1, "failed": 0, "total": 1}


async def test_documentation_job_changed_follows_its_lifecycle(
    live: Any, http: Api, settings: Any
) -> None:
    data = await http.data("""mutation { createDocumentationJob(input: {
        repositoryPath: "/r", repositoryName: "r", outputDirectory: "/o"}) { jobId } }""")
    job_id = data["createDocumentationJob"]["jobId"]
    async with ws_client(live, payload=bearer(settings, ALICE)) as client:
        op = await client.subscribe(DOCUMENTATION_JOB_CHANGED, {"id": job_id})
        assert (await client.next(op))["documentationJobChanged"]["status"] == "PENDING"
        for action in ("start", "complete"):
            await http.data(f'mutation($id: ID!) {{ {action}DocumentationJob(jobId: $id) '
                            '{ status } }', {"id": job_id})
        events = await collect(client, op, lambda e: e["documentationJobChanged"]["status"]
                               == "COMPLETED")
    assert [e["documentationJobChanged"]["status"] for e in events] == ["RUNNING", "COMPLETED"]
    assert events[-1]["documentationJobChanged"]["timestampEnd"]


async def test_job_logs_resume_from_a_sequence_number_without_gap_or_duplicate(
    live: Any, http: Api, settings: Any
) -> None:
    job_id = await create_job(http)
    for n in range(1, 4):
        await http.data(LOG, {"id": job_id, "m": f"m{n}"})
    seen: list[int] = []
    async with ws_client(live, payload=bearer(settings, ALICE)) as client:
        op = await client.subscribe(JOB_LOGS, {"id": job_id, "after": 0})
        first = (await client.next(op))["jobLogs"]
        seen += [entry["seq"] for entry in first["entries"]]
        await http.data(LOG, {"id": job_id, "m": "m4"})
        batch = (await client.next(op))["jobLogs"]
        seen += [entry["seq"] for entry in batch["entries"]]
        last = batch["lastSeq"]
    # while disconnected, more entries arrive
    for n in range(5, 8):
        await http.data(LOG, {"id": job_id, "m": f"m{n}"})
    async with ws_client(live, payload=bearer(settings, ALICE)) as client:
        op = await client.subscribe(JOB_LOGS, {"id": job_id, "after": last})
        resumed = (await client.next(op))["jobLogs"]
        seen += [entry["seq"] for entry in resumed["entries"]]
        assert resumed["gap"] is None
    assert seen == [1, 2, 3, 4, 5, 6, 7]


async def test_job_logs_report_a_gap_when_the_capped_log_dropped_entries(
    mongo_uri: str, store: Any, database_name: str
) -> None:
    settings = make_settings(database=database_name, max_logs_per_job=5)
    async with live_server(settings, mongo_uri) as server, httpx.AsyncClient(
            base_url=server.url, timeout=DEADLINE) as client:
        http = Api(client, settings)
        job_id = await create_job(http)
        for n in range(12):
            await http.data(LOG, {"id": job_id, "m": f"m{n}"})
        async with ws_client(server, payload=bearer(settings, ALICE)) as ws:
            op = await ws.subscribe(JOB_LOGS, {"id": job_id, "after": 2})
            batch = (await ws.next(op))["jobLogs"]
    assert batch["gap"] == {"fromSeq": 3, "toSeq": 7}
    assert [entry["seq"] for entry in batch["entries"]] == [8, 9, 10, 11, 12]


async def test_socket_is_closed_when_its_token_expires(live: Any, settings: Any) -> None:
    async with ws_client(live, payload=bearer(settings, ALICE, ttl=2)) as client:
        code, reason = await asyncio.wait_for(client.closed, DEADLINE)
    assert (code, reason) == (4401, "Token expired")


@pytest.mark.parametrize("protocol", PROTOCOLS)
async def test_invalid_token_in_connection_init_is_refused(live: Any, protocol: str) -> None:
    with pytest.raises(SubscriptionClosed):
        async with ws_client(live, protocol=protocol,
                             payload={"Authorization": "Bearer not-a-token"}):
            pass


async def test_handshake_authorization_header_authenticates_the_socket(
    live: Any, http: Api, settings: Any
) -> None:
    job_id = await create_job(http)
    async with ws_client(live, headers=bearer(settings, ALICE)) as client:
        op = await client.subscribe(JOB_CHANGED, {"id": job_id})
        assert (await client.next(op))["jobChanged"]["jobId"] == job_id


async def test_anonymous_subscriber_sees_public_jobs_only(
    live: Any, http: Api, settings: Any
) -> None:
    private = await create_job(http)
    public = await create_job(http, accessControl={"visibility": "PUBLIC"})
    async with ws_client(live) as client:
        op = await client.subscribe(JOBS_CHANGED, {"initial": 10})
        first = (await client.next(op))["jobsChanged"]
        op2 = await client.subscribe(JOB_CHANGED, {"id": private})
        with pytest.raises(SubscriptionClosed):
            await client.next(op2)
    assert first["jobId"] == public
    assert ANON.user_id is None


async def test_subscriptions_per_connection_are_limited(
    mongo_uri: str, store: Any, database_name: str
) -> None:
    settings = make_settings(database=database_name, max_subscriptions_per_connection=2)
    async with live_server(settings, mongo_uri) as server, ws_client(
            server, payload=bearer(settings, ALICE)) as client:
        ops = [await client.subscribe(JOBS_CHANGED, {"initial": 0}) for _ in range(3)]
        with pytest.raises(SubscriptionClosed) as refused:
            await client.next(ops[2])
    error = refused.value.errors[0]
    assert error["extensions"]["code"] == "TOO_MANY_SUBSCRIPTIONS"
    assert "at most 2" in error["message"]


async def test_subscriptions_per_process_are_limited(
    mongo_uri: str, store: Any, database_name: str
) -> None:
    settings = make_settings(database=database_name, max_subscriptions_per_process=2)
    async with live_server(settings, mongo_uri) as server, httpx.AsyncClient(
            base_url=server.url, timeout=DEADLINE) as http_client:
        http = Api(http_client, settings)
        job_id = await create_job(http)
        async with ws_client(server, payload=bearer(settings, ALICE)) as client:
            ops = [await client.subscribe(JOB_CHANGED, {"id": job_id}) for _ in range(3)]
            for op in ops[:2]:
                assert (await client.next(op))["jobChanged"]["jobId"] == job_id
            with pytest.raises(SubscriptionClosed) as refused:
                await client.next(ops[2])
    assert refused.value.errors[0]["extensions"]["code"] == "TOO_MANY_SUBSCRIPTIONS"


async def open_cursors(mongo_uri: str) -> int:
    client = make_client(mongo_uri)
    try:
        status = await client.admin.command("serverStatus")
        return status["metrics"]["cursor"]["open"]["total"]
    finally:
        await client.close()


async def test_one_change_stream_per_process_with_200_subscribers(
    mongo_uri: str, store: Any, database_name: str
) -> None:
    settings = make_settings(database=database_name, max_subscriptions_per_user=200)
    before = await open_cursors(mongo_uri)
    async with live_server(settings, mongo_uri) as server, httpx.AsyncClient(
            base_url=server.url, timeout=DEADLINE) as http_client:
        http = Api(http_client, settings)
        job_id = await create_job(http, accessControl={"visibility": "PUBLIC"})
        with_server = await open_cursors(mongo_uri)
        clients, ops = [], []
        for _ in range(10):
            manager = ws_client(server, payload=bearer(settings, BOB))
            client = await manager.__aenter__()
            clients.append((manager, client))
            for _ in range(20):
                op = await client.subscribe(JOB_CHANGED, {"id": job_id})
                ops.append((client, op))
        try:
            for client, op in ops:
                await client.next(op)
            assert server.app.state.hub.count == 200
            with_subscribers = await open_cursors(mongo_uri)
            await http.data(LOG, {"id": job_id, "m": "to everyone"})
            for client, op in ops:
                assert (await client.next(op))["jobChanged"]["logSeq"] == 1
        finally:
            for manager, _client in clients:
                await manager.__aexit__(None, None, None)
    # the hub's stream, and the history writer's (held by one process of a deployment,
    # here the only one: graph/loops/history.py); none per subscriber
    assert with_server == before + 2
    assert with_subscribers == with_server


@pytest.mark.slow
async def test_slow_subscriber_is_dropped_while_a_fast_one_keeps_receiving(
    mongo_uri: str, store: Any, database_name: str
) -> None:
    settings = make_settings(database=database_name, subscriber_queue_size=4,
                             max_payload_bytes=200_000)
    async with live_server(settings, mongo_uri) as server, httpx.AsyncClient(
            base_url=server.url, timeout=DEADLINE) as http_client:
        http = Api(http_client, settings)
        # incompressible, so each event really is ~150 KB on the wire
        blob = base64.b64encode(os.urandom(110_000)).decode()
        job_id = await create_job(http, parameters={"blob": blob})
        await http.data(CLAIM, {"types": ["pdf"]}, as_=WORKER)
        query = "subscription($id: ID!) { jobChanged(jobId: $id) { version parameters } }"
        # a slow client: it never reads, and its library buffers at most one message
        slow = await websockets.connect(server.ws_url, subprotocols=["graphql-transport-ws"],
                                        max_queue=1, max_size=None, open_timeout=DEADLINE,
                                        compression=None, ping_interval=None)
        await slow.send(json.dumps({"type": "connection_init",
                                    "payload": bearer(settings, ALICE)}))
        await slow.send(json.dumps({"id": "s", "type": "subscribe",
                                    "payload": {"query": query, "variables": {"id": job_id}}}))
        async with ws_client(server, payload=bearer(settings, ALICE)) as fast:
            op = await fast.subscribe(query, {"id": job_id})
            await fast.next(op)
            hub = server.app.state.hub
            deadline = time.monotonic() + 120
            sent = 0
            # when changes keep coming until the slow subscriber is dropped
            while hub.count > 1:
                assert time.monotonic() < deadline, "the slow subscriber was never dropped"
                await http.data(HEARTBEAT, {"id": job_id}, as_=WORKER)
                sent += 1
                # then the fast one receives every change meanwhile
                assert (await fast.next(op))["jobChanged"]["version"] == 1 + sent
            for _ in range(3):
                await http.data(HEARTBEAT, {"id": job_id}, as_=WORKER)
                sent += 1
                assert (await fast.next(op))["jobChanged"]["version"] == 1 + sent
        # and the slow one finds, after what it had buffered, a clear error
        messages = []
        async with asyncio.timeout(DEADLINE):
            async for raw in slow:
                messages.append(json.loads(raw))
                if errors_of(messages[-1]):
                    break
        await slow.close()
    assert errors_of(messages[-1])[0]["extensions"]["code"] == "SUBSCRIPTION_LAGGING"
    assert len(messages) - 1 < sent


def errors_of(message: dict[str, Any]) -> list[dict[str, Any]]:
    """Errors of an ``error`` message, or of a ``next`` message that carries only errors."""
    payload = message.get("payload")
    if message.get("type") == "error":
        return payload
    return (payload or {}).get("errors") or [] if isinstance(payload, dict) else []


async def test_subscribers_keep_receiving_across_a_database_restart(tmp_path: Any) -> None:
    from repository.database import EmbeddedServer

    # a server of this test's own: restarting the session's would unsettle later tests
    server = EmbeddedServer(data_dir=tmp_path / "restarting")
    await asyncio.to_thread(server.start)
    try:
        settings = make_settings(database="restarting")
        async with live_server(settings, server.uri) as live, httpx.AsyncClient(
                base_url=live.url, timeout=DEADLINE) as http_client:
            http = Api(http_client, settings)
            job_id = await create_job(http)
            async with ws_client(live, payload=bearer(settings, ALICE)) as client:
                op = await client.subscribe(JOB_CHANGED, {"id": job_id})
                await client.next(op)
                await http.data(LOG, {"id": job_id, "m": "before"})
                # when the database restarts
                await asyncio.to_thread(server.restart)

                # then a change made after the restart still arrives, after the one before
                async def logged_after() -> bool:
                    try:
                        await http.data(LOG, {"id": job_id, "m": "after"})
                    except (AssertionError, httpx.HTTPError):
                        return False
                    return True

                await eventually(logged_after, deadline=60, interval=0.2)
                seqs = []
                while not seqs or seqs[-1] < 2:
                    seqs.append((await client.next(op, deadline=60))["jobChanged"]["logSeq"])
    finally:
        await asyncio.to_thread(server.stop)
    assert seqs == [1, 2]


async def test_standalone_database_turns_subscriptions_off_with_one_clear_line(
    tmp_path: Any, caplog: pytest.LogCaptureFixture
) -> None:
    from repository.database import EmbeddedServer

    server = EmbeddedServer(data_dir=tmp_path / "standalone", extra_args=("--standalone",))
    await asyncio.to_thread(server.start)
    try:
        settings = make_settings(database="standalone")
        with caplog.at_level("ERROR", logger="jobgraph.hub"):
            async with live_server(settings, server.uri) as live, ws_client(
                    live, payload=bearer(settings, ADMIN)) as client:
                op = await client.subscribe(JOBS_CHANGED, {"initial": 0})
                with pytest.raises(SubscriptionClosed) as refused:
                    await client.next(op)
    finally:
        await asyncio.to_thread(server.stop)
    lines = [r.getMessage() for r in caplog.records if r.name == "jobgraph.hub"]
    assert len(lines) == 1 and "replica set" in lines[0]
    assert refused.value.errors[0]["extensions"]["code"] == "SUBSCRIPTIONS_UNAVAILABLE"


async def test_mutation_on_one_process_reaches_subscribers_on_another(
    live: Any, http: Api, settings: Any, mongo_uri: str, database_name: str
) -> None:
    # given a second API process on the same database
    port = free_port()
    env = {**os.environ, "JOBGRAPH_MONGODB_URI": mongo_uri, "JOBGRAPH_DATABASE": database_name,
           "JOBGRAPH_JWT_SECRET": TEST_SECRET, "JOBGRAPH_LOG_LEVEL": "WARNING"}
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "uvicorn", "graph.server.app:create_app", "--factory",
        "--host", "127.0.0.1", "--port", str(port), "--log-level", "warning",
        env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        other = type(live)(live.app, port)
        async with httpx.AsyncClient(base_url=other.url) as probe, asyncio.timeout(60):
            while True:
                try:
                    if (await probe.get("/readyz")).status_code == 200:
                        break
                except httpx.HTTPError:
                    pass
                await asyncio.sleep(0.1)
        job_id = await create_job(http)
        async with ws_client(other, payload=bearer(settings, ALICE)) as client:
            op = await client.subscribe(JOB_CHANGED, {"id": job_id})
            await client.next(op)
            # when a mutation goes to this process
            await http.data(LOG, {"id": job_id, "m": "cross-process"})
            event = await client.next(op)  # within the generous DEADLINE, not a timed claim
    finally:
        process.terminate()
        await asyncio.wait_for(process.wait(), DEADLINE)
    # then the subscriber on the other process hears of it
    assert event["jobChanged"]["logSeq"] == 1


def gauge(text: str, name: str) -> float:
    [line] = [line for line in text.splitlines() if line.startswith(name + " ")]
    return float(line.split()[1])


async def test_metrics_count_active_subscriptions_and_stream_lag(
    live: Any, http: Api, settings: Any
) -> None:
    job_id = await create_job(http)
    before = (await http.client.get("/metrics", headers=METRICS)).text
    async with ws_client(live, payload=bearer(settings, ALICE)) as client:
        op = await client.subscribe(JOB_CHANGED, {"id": job_id})
        await client.next(op)
        await http.data(LOG, {"id": job_id, "m": "tick"})
        await client.next(op)
        during = (await http.client.get("/metrics", headers=METRICS)).text
    assert gauge(during, "jobgraph_subscriptions_active") == 1
    # the events were counted, and the lag gauge was set from one (NaN until then)
    assert (gauge(during, "jobgraph_change_stream_events_total")
            > gauge(before, "jobgraph_change_stream_events_total"))
    assert 0 <= gauge(during, "jobgraph_change_stream_lag_seconds") < 60
    # and the gauge drops when the socket is gone
    async def released() -> bool:
        text = (await http.client.get("/metrics", headers=METRICS)).text
        return gauge(text, "jobgraph_subscriptions_active") == 0

    assert await eventually(released)


async def test_a_message_nested_beyond_the_body_depth_limit_closes_with_4400(
    live: Any, settings: Any
) -> None:
    # graphql-transport-ws closes on a message that is not JSON (the older graphql-ws
    # protocol answers connection_error and reads on: tests/graph/test_socket_messages.py)
    async with websockets.connect(live.ws_url, subprotocols=["graphql-transport-ws"],
                                  open_timeout=DEADLINE) as socket:
        await socket.send(json.dumps({"type": "connection_init", "payload": {}}))
        assert json.loads(await asyncio.wait_for(socket.recv(), DEADLINE))["type"] == \
            "connection_ack"
        deep = "[" * (settings.max_body_depth + 1) + "]" * (settings.max_body_depth + 1)
        await socket.send('{"id": "1", "type": "subscribe", "payload": {"query": "{ a }", '
                          f'"variables": {{"x": {deep}}}}}}}')
        with pytest.raises(websockets.ConnectionClosed):
            await asyncio.wait_for(socket.recv(), DEADLINE)
    assert socket.close_code == 4400
