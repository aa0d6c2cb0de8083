"""/metrics: requests, latency and errors by operation, live sockets, jobs by status."""

from __future__ import annotations

import asyncio
import math
import time
from pathlib import Path
from typing import Any

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families
from pymongo.monitoring import CommandListener, CommandStartedEvent

from graph.config.settings import SettingsError, load_settings
from graph.server.app import create_app
from tests.helpers.graphql import (
    METRICS,
    TEST_METRICS_TOKEN,
    WORKER,
    Api,
    make_settings,
    open_api,
)
from tests.helpers.live import DEADLINE, live_server, ws_client
from tests.helpers.waiting import eventually
from tests.outage import app_on_own_database

COUNT_ME = "query CountMe { viewer { userId } }"
CREATE_JOB = """mutation CreatePdf { createJob(input: {jobType: "pdf"}) { jobId } }"""
CLAIM = """mutation Claim { claimJob(jobTypes: ["pdf"]) { jobId } }"""
COMPLETE = """mutation Complete($id: ID!) { completeJob(jobId: $id) { jobId } }"""
FAIL = """mutation Fail($id: ID!) {
  failJob(jobId: $id, error: {code: "E", message: "broken"}) { jobId } }"""


async def scrape(client: httpx.AsyncClient) -> dict[tuple[str, frozenset], float]:
    """Every sample on /metrics, by name and labels."""
    response = await client.get("/metrics", headers=METRICS)
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain")
    return {(sample.name, frozenset(sample.labels.items())): sample.value
            for family in text_string_to_metric_families(response.text)
            for sample in family.samples}


def value(samples: dict[tuple[str, frozenset], float], name: str, **labels: str) -> float:
    return samples.get((name, frozenset(labels.items())), 0.0)


async def test_metrics_count_requests_and_latency_by_operation_name(api: Api) -> None:
    # given
    before = await scrape(api.client)
    # when
    for _ in range(3):
        await api.data(COUNT_ME)
    # then
    after = await scrape(api.client)
    labels = {"operation_name": "CountMe", "operation_type": "query"}
    for name in ("jobgraph_graphql_requests_total",
                 "jobgraph_graphql_request_duration_seconds_count"):
        assert value(after, name, **labels) - value(before, name, **labels) == 3
    assert value(after, "jobgraph_graphql_request_duration_seconds_sum", **labels) > 0


async def test_metrics_count_errors_by_code(api: Api) -> None:
    # given
    job_id = (await api.data(CREATE_JOB))["createJob"]["jobId"]
    before = await scrape(api.client)
    # when: one mutation refused by the domain, two requests refused before execution
    await api.execute(COMPLETE, {"id": job_id})
    for _ in range(2):
        await api.client.post("/graphql", json={"query": COUNT_ME},
                              headers={"Authorization": "Bearer not-a-token"})
    await api.post("query Broken { viewer(")
    # then
    after = await scrape(api.client)
    for code, count in (("INVALID_TRANSITION", 1), ("UNAUTHENTICATED", 2),
                        ("GRAPHQL_PARSE_FAILED", 1)):
        name = "jobgraph_graphql_errors_total"
        assert value(after, name, code=code) - value(before, name, code=code) == count, code


async def test_metrics_count_jobs_by_status(api: Api) -> None:
    # given: one job of type pdf in each status, and two of type ocr, pending
    for _ in range(2):
        await api.data("""mutation { createJob(input: {jobType: "ocr"}) { jobId } }""")
    ids = [(await api.data(CREATE_JOB))["createJob"]["jobId"] for _ in range(4)]
    await api.data(FAIL, {"id": ids[0]})
    claimed = (await api.data(CLAIM, as_=WORKER))["claimJob"]["jobId"]
    await api.data(COMPLETE, {"id": claimed}, as_=WORKER)
    await api.data(CLAIM, as_=WORKER)
    # when
    samples = await scrape(api.client)
    # then
    assert value(samples, "jobgraph_database_up") == 1
    for status in ("PENDING", "PROCESSING", "COMPLETED", "FAILED"):
        assert value(samples, "jobgraph_jobs", status=status, job_type="pdf") == 1, status
        assert value(samples, "jobgraph_jobs", status=status, job_type="ocr") == (
            2 if status == "PENDING" else 0), status


async def test_metrics_answer_while_database_is_down(tmp_path: Path) -> None:
    # given
    # (counted at every scrape: with the default interval the second would show the first's)
    settings = make_settings(database="metrics", mongodb_timeout_ms=500,
                             metrics_jobs_interval_seconds=0)
    async with app_on_own_database(settings, tmp_path / "data") as outage:
        assert value(await scrape(outage.client), "jobgraph_database_up") == 1
        # when
        outage.stop_database()
        samples = await scrape(outage.client)
    # then: the scrape still works, says why jobs are missing, and invents no counts
    assert value(samples, "jobgraph_database_up") == 0
    assert not any(name == "jobgraph_jobs" for name, _ in samples)
    assert ("jobgraph_graphql_errors_total", frozenset()) not in samples


async def test_metrics_expose_realtime_gauges_set_through_hooks(api: Api, app: Any) -> None:
    # given
    metrics = app.state.metrics
    before = await scrape(api.client)
    # when
    metrics.subscription_started()
    metrics.subscription_started()
    metrics.subscription_stopped()
    metrics.set_change_stream_lag(0.25)
    # then
    after = await scrape(api.client)
    assert (value(after, "jobgraph_subscriptions_active")
            - value(before, "jobgraph_subscriptions_active")) == 1
    assert value(after, "jobgraph_change_stream_lag_seconds") == 0.25
    metrics.subscription_stopped()


async def test_metrics_count_open_websockets(
        mongo_uri: str, store: Any, database_name: str) -> None:
    settings = make_settings(database=database_name)

    async def websockets_now(client: httpx.AsyncClient) -> float:
        return value(await scrape(client), "jobgraph_websocket_connections")

    async def until(client: httpx.AsyncClient, expected: float) -> None:
        async with asyncio.timeout(DEADLINE):
            while True:
                if await websockets_now(client) == expected:
                    return
                await asyncio.sleep(0.02)

    async with live_server(settings, mongo_uri) as server, httpx.AsyncClient(
            base_url=server.url) as http:
        # when
        async with ws_client(server, payload=WORKER.headers(settings)):
            # then
            await until(http, 1)
        await until(http, 0)


def test_metrics_registry_is_separate_per_app(mongo_uri: str) -> None:
    first = create_app(make_settings(), mongodb_uri=mongo_uri)
    second = create_app(make_settings(), mongodb_uri=mongo_uri)
    assert first.state.metrics.registry is not second.state.metrics.registry


async def test_change_stream_lag_is_unknown_until_the_first_event() -> None:
    from graph.server.metrics import Metrics

    metrics = Metrics()
    lag = metrics.change_stream_lag._value.get()

    assert math.isnan(lag)


# -- who may scrape, and what a scrape costs the database -----------------------------------


@pytest.mark.parametrize("authorization", [
    None, "Bearer wrong-token-0123456789", f"Basic {TEST_METRICS_TOKEN}", TEST_METRICS_TOKEN,
    f"Bearer {TEST_METRICS_TOKEN}x", "Bearer "])
async def test_metrics_need_the_configured_token(api: Api, authorization: str | None) -> None:
    headers = {"Authorization": authorization} if authorization is not None else {}
    response = await api.client.get("/metrics", headers=headers)
    assert response.status_code == 401
    assert response.headers["www-authenticate"].startswith("Bearer")
    assert response.json()["errors"][0]["extensions"] == {"code": "UNAUTHENTICATED"}
    assert "jobgraph_" not in response.text
    # and with it, the scrape answers (the scheme's case does not matter)
    for scheme in ("Bearer", "bearer"):
        scraped = await api.client.get(
            "/metrics", headers={"Authorization": f"{scheme} {TEST_METRICS_TOKEN}"})
        assert scraped.status_code == 200
        assert "jobgraph_database_up" in scraped.text


async def test_metrics_are_not_served_without_a_token(
    mongo_uri: str, store: Any, database_name: str
) -> None:
    settings = make_settings(database=database_name, metrics_token=None)
    async with open_api(settings, mongo_uri) as api:
        for headers in ({}, METRICS):
            response = await api.client.get("/metrics", headers=headers)
            assert response.status_code == 404
            assert response.json()["errors"][0]["extensions"] == {"code": "NOT_FOUND"}


def test_a_metrics_token_must_be_long_enough() -> None:
    with pytest.raises(SettingsError, match="JOBGRAPH_METRICS_TOKEN"):
        load_settings(metrics_token="short")
    assert load_settings(metrics_token="").metrics_token is None  # compose's "unset"


class Aggregations(CommandListener):
    """Counts the aggregations on ``jobs`` (the jobs-by-status count)."""

    def __init__(self) -> None:
        self.count = 0

    def started(self, event: CommandStartedEvent) -> None:
        if event.command_name == "aggregate" and event.command.get("aggregate") == "jobs":
            self.count += 1

    def succeeded(self, event: Any) -> None:
        pass

    def failed(self, event: Any) -> None:
        pass


async def test_jobs_are_counted_at_most_once_per_interval_however_often_scraped(
    mongo_uri: str, store: Any, database_name: str
) -> None:
    aggregations = Aggregations()
    settings = make_settings(database=database_name, metrics_jobs_interval_seconds=600)
    async with open_api(settings, mongo_uri,
                        client_options={"event_listeners": [aggregations]}) as api:
        await api.data(CREATE_JOB)
        # 20 scrapes at once, then 20 more one by one: one aggregation for all of them
        concurrent = await asyncio.gather(*(scrape(api.client) for _ in range(20)))
        sequential = [await scrape(api.client) for _ in range(20)]
        assert aggregations.count == 1
        for samples in (*concurrent, *sequential):
            assert value(samples, "jobgraph_jobs", status="PENDING", job_type="pdf") == 1
            assert value(samples, "jobgraph_database_up") == 1


async def test_the_jobs_gauge_follows_the_database_once_its_interval_has_passed(
    mongo_uri: str, store: Any, database_name: str
) -> None:
    aggregations = Aggregations()
    interval = 1.0
    settings = make_settings(database=database_name, metrics_jobs_interval_seconds=interval)
    async with open_api(settings, mongo_uri,
                        client_options={"event_listeners": [aggregations]}) as api:
        started = time.monotonic()
        assert value(await scrape(api.client), "jobgraph_jobs", status="PENDING",
                     job_type="pdf") == 0
        await api.data(CREATE_JOB)

        async def counted() -> bool:
            return value(await scrape(api.client), "jobgraph_jobs", status="PENDING",
                         job_type="pdf") == 1

        # scraped as fast as it answers, the gauge shows the new job once an interval passed
        assert await eventually(counted, interval=0.01)
        elapsed = time.monotonic() - started
    # and the database counted no more often than once per interval
    assert 2 <= aggregations.count <= 1 + math.ceil(elapsed / interval)
