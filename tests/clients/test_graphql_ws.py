"""The npm graphql-ws client (graphql-transport-ws) subscribed on one API process while
the mutations go to another on the same database, authenticated via connectionParams."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from tests.helpers.graphql import WORKER, Api
from tests.helpers.live import DEADLINE, LiveServer, live_server
from tests.helpers.node import node_script

from .conftest import CLAIM, COMPLETE, LOG, PROGRESS, create_job, token

pytestmark = pytest.mark.usefixtures("node_clients")

JOB_CHANGED = """subscription($id: ID!) {
  jobChanged(jobId: $id) { jobId status version progress { percent } logSeq results } }"""
JOBS_CHANGED = """subscription($filter: JobSubscriptionFilter, $initial: Int!) {
  jobsChanged(filter: $filter, initial: $initial) { kind jobId job { status jobType } } }"""
JOB_LOGS = """subscription($id: ID!, $after: Int!) {
  jobLogs(jobId: $id, after: $after) { entries { seq message } gap { fromSeq toSeq } lastSeq }
}"""


def subscription(server: LiveServer, settings: Any, query: str, **variables: Any) -> Any:
    return node_script("graphql-ws-subscribe.mjs", {
        "url": server.ws_url, "token": token(settings), "query": query,
        "variables": variables})


def data(line: dict[str, Any], field: str) -> Any:
    assert "next" in line, line
    return line["next"]["data"][field]


async def test_a_job_lifecycle_reaches_a_subscriber_on_another_process(
    live: LiveServer, http: Api, other: LiveServer, settings: Any
) -> None:
    # given alice's job, and alice subscribed to it through the second process
    job_id = await create_job(http)
    async with subscription(other, settings, JOB_CHANGED, id=job_id) as subscriber:
        assert await subscriber.next() == {"connected": {"userId": "alice"}}
        first = data(await subscriber.next(), "jobChanged")
        # when a worker drives the job through its lifecycle on the first process
        await http.data(CLAIM, {"types": ["pdf"]}, as_=WORKER)
        for percent in (10, 50, 90):
            await http.data(PROGRESS, {"id": job_id, "p": percent}, as_=WORKER)
        for message in ("one", "two"):
            await http.data(LOG, {"id": job_id, "m": message}, as_=WORKER)
        await http.data(COMPLETE, {"id": job_id}, as_=WORKER)
        lines = await subscriber.until(
            lambda line: data(line, "jobChanged")["status"] == "COMPLETED")
    # then every state arrives once, in order, from the current one to COMPLETED
    states = [first, *(data(line, "jobChanged") for line in lines)]
    assert [(s["jobId"], s["version"], s["status"], (s["progress"] or {}).get("percent"),
             s["logSeq"]) for s in states] == [
        (job_id, 0, "PENDING", None, 0),
        (job_id, 1, "PROCESSING", None, 0),
        (job_id, 2, "PROCESSING", 10, 0),
        (job_id, 3, "PROCESSING", 50, 0),
        (job_id, 4, "PROCESSING", 90, 0),
        (job_id, 5, "PROCESSING", 90, 1),
        (job_id, 6, "PROCESSING", 90, 2),
        (job_id, 7, "COMPLETED", 90, 2),
    ]
    assert states[-1]["results"] == {"ok": True}


async def test_a_filtered_jobs_subscription_hears_only_matching_jobs(
    live: LiveServer, http: Api, other: LiveServer, settings: Any
) -> None:
    # given a pending pdf job, and a subscriber to pending pdf jobs on the second process
    existing = await create_job(http, "pdf")
    async with subscription(other, settings, JOBS_CHANGED, initial=5,
                            filter={"jobType": "pdf", "status": "PENDING"}) as subscriber:
        await subscriber.next()  # connected
        current = data(await subscriber.next(), "jobsChanged")
        # when jobs of another type and a new pdf job are created, then the first is claimed
        others = [await create_job(http, "session") for _ in range(3)]
        marker = await create_job(http, "pdf")
        await http.data(CLAIM, {"types": ["pdf"]}, as_=WORKER)
        lines = await subscriber.until(lambda line: data(line, "jobsChanged")["kind"] == "UPDATED")
    # then it hears of the pdf jobs only: the current one, the new one, the one that left
    events = [current, *(data(line, "jobsChanged") for line in lines)]
    assert [(e["kind"], e["jobId"], e["job"]["status"], e["job"]["jobType"]) for e in events] == [
        ("CURRENT", existing, "PENDING", "pdf"),
        ("CREATED", marker, "PENDING", "pdf"),
        ("UPDATED", existing, "PROCESSING", "pdf"),
    ]
    assert not set(others) & {e["jobId"] for e in events}


async def test_a_log_stream_resumed_with_after_has_no_gap_and_no_duplicate(
    live: LiveServer, http: Api, other: LiveServer, settings: Any
) -> None:
    job_id = await create_job(http)
    seen: list[int] = []
    # given a subscriber that read the first two entries and then went away
    async with subscription(other, settings, JOB_LOGS, id=job_id, after=0) as subscriber:
        await subscriber.next()  # connected
        assert data(await subscriber.next(), "jobLogs")["entries"] == []
        for message in ("one", "two"):
            await http.data(LOG, {"id": job_id, "m": message})
        for line in await subscriber.until(lambda line: data(line, "jobLogs")["lastSeq"] == 2):
            seen += [entry["seq"] for entry in data(line, "jobLogs")["entries"]]
        last = 2
    # when entries are appended while it is away, and it comes back with after=lastSeq
    for message in ("three", "four"):
        await http.data(LOG, {"id": job_id, "m": message})
    async with subscription(other, settings, JOB_LOGS, id=job_id, after=last) as subscriber:
        await subscriber.next()  # connected
        resumed = data(await subscriber.next(), "jobLogs")
        seen += [entry["seq"] for entry in resumed["entries"]]
        await http.data(LOG, {"id": job_id, "m": "five"})
        for line in await subscriber.until(lambda line: data(line, "jobLogs")["lastSeq"] == 5):
            batch = data(line, "jobLogs")
            assert batch["gap"] is None
            seen += [entry["seq"] for entry in batch["entries"]]
    # then it saw every entry exactly once, in order
    assert resumed["gap"] is None and resumed["lastSeq"] == 4
    assert [entry["message"] for entry in resumed["entries"]] == ["three", "four"]
    assert seen == [1, 2, 3, 4, 5]


@pytest.mark.parametrize(("document", "code"), [
    ("subscription {", "GRAPHQL_PARSE_FAILED"),
    ("subscription { jobsChanged { " + "kind " * 2100 + "} }", "QUERY_TOO_COMPLEX"),
])
async def test_a_document_that_does_not_parse_is_answered_with_its_code(
    live: LiveServer, settings: Any, document: str, code: str
) -> None:
    async with subscription(live, settings, document) as subscriber:
        await subscriber.next()  # connected
        refused = await subscriber.next()
    assert [error["extensions"]["code"] for error in refused["error"]["errors"]] == [code]


async def test_a_client_whose_socket_stops_reading_is_closed_with_4499_and_reconnects(
    settings: Any, mongo_uri: str, store: Any
) -> None:
    # given the server as `jobgraph serve` runs it, with a fast keepalive
    async with live_server(settings, mongo_uri, ws_ping=1.0) as server, httpx.AsyncClient(
            base_url=server.url, timeout=DEADLINE) as client:
        http = Api(client, settings)
        job_id = await create_job(http)
        async with node_script("graphql-ws-stall.mjs", {
                "url": server.ws_url, "token": token(settings), "query": JOB_CHANGED,
                "variables": {"id": job_id}, "stallMs": 4000}) as subscriber:
            assert await subscriber.next() == {"connected": {"userId": "alice"}}
            assert data(await subscriber.next(), "jobChanged")["version"] == 0
            assert "stalled" in await subscriber.next()
            # when its socket reads nothing for longer than the keepalive waits
            await http.data(LOG, {"id": job_id, "m": "while it stalls"})
            seen: list[str] = []

            def reconnected(line: dict[str, Any]) -> bool:
                seen.extend(line)
                return "closed" in seen and seen[-2:] == ["connected", "next"]

            lines = await subscriber.until(reconnected)
    # then, once it read again (what it had been sent first), it was closed with 4499
    # SUBSCRIPTION_LAGGING, and graphql-ws reconnected by itself
    closes = [line["closed"] for line in lines if "closed" in line]
    assert closes == [{"code": 4499, "reason": "SUBSCRIPTION_LAGGING"}]
    # and its subscription, sent again, starts from the current state
    assert data(lines[-1], "jobChanged")["logSeq"] == 1


async def test_a_mutation_runs_over_the_socket(
    live: LiveServer, http: Api, settings: Any
) -> None:
    """graphql-transport-ws's `subscribe` carries any operation; a mutation runs as the
    socket's caller, once (README, Subscriptions: refused only by GET)."""
    make = 'mutation Make { createJob(input: {jobType: "socket"}) { jobId owner } }'
    async with subscription(live, settings, make) as client:
        assert await client.next() == {"connected": {"userId": "alice"}}
        lines = await client.until(lambda line: "complete" in line)
    [made] = [data(line, "createJob") for line in lines[:-1]]
    assert made["owner"] == "alice"
    found = await http.data("{ jobs(filter: {jobType: \"socket\"}) { edges { node { jobId } } } }")
    assert [edge["node"]["jobId"] for edge in found["jobs"]["edges"]] == [made["jobId"]]
