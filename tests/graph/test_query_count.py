"""No N+1: a page of jobs with their batches costs the same few database commands whatever
its size, because batches and their counts are loaded per request in one batch each."""

from __future__ import annotations

from collections import Counter
from collections.abc import AsyncIterator
from datetime import UTC, datetime

import httpx
import pytest

from graph.config.settings import Settings
from graph.server.app import create_app
from repository.database import Store
from tests.helpers.commands import CommandCounter, after_startup_sweep
from tests.helpers.graphql import ALICE, make_settings

from .documents import CREATE_BATCH, JOBS_WITH_BATCHES

BATCHES = 4
JOBS_PER_BATCH = 25
LOGS_PER_JOB = 15


@pytest.fixture
async def counted(settings: Settings, mongo_uri: str, store: Store
                  ) -> AsyncIterator[tuple[httpx.AsyncClient, CommandCounter]]:
    counter = CommandCounter(settings.database)
    # The lease reaper sweeps once at start-up (awaited), then not again while we count.
    quiet = make_settings(database=settings.database, reaper_interval_seconds=3600,
                          dispatcher=False)  # no scheduler or webhook loops either
    app = create_app(quiet, mongodb_uri=mongo_uri,
                     client_options={"event_listeners": [counter]})
    async with app.router.lifespan_context(app), httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app), base_url="http://test",
            headers=ALICE.headers(settings)) as client:
        await after_startup_sweep(app)
        yield client, counter


async def seed(client: httpx.AsyncClient, store: Store) -> None:
    """100 jobs in four batches, every one with progress and a log longer than 10."""
    for number in range(BATCHES):
        response = await client.post("/graphql", json={"query": CREATE_BATCH, "variables": {
            "input": {"batchName": f"batch-{number}",
                      "jobs": [{"jobType": "pdf"}] * JOBS_PER_BATCH}}})
        assert response.status_code == 200 and "errors" not in response.json()
    now = datetime.now(UTC)
    logs = [{"timestamp": now, "level": "info", "message": f"line {seq}", "seq": seq,
             "attempt": 1} for seq in range(1, LOGS_PER_JOB + 1)]
    await store.jobs.collection.update_many({}, {"$set": {
        "progress": {"step": "ocr", "percent": 50, "message": None},
        "logs": logs, "log_seq": LOGS_PER_JOB}})


async def test_a_page_of_jobs_with_batches_costs_the_same_commands_at_any_size(
        counted: tuple[httpx.AsyncClient, CommandCounter], store: Store) -> None:
    client, counter = counted
    await seed(client, store)

    commands: dict[int, Counter[str]] = {}
    for size in (10, 50, 100):
        # when
        counter.counts.clear()
        response = await client.post("/graphql", json={"query": JOBS_WITH_BATCHES,
                                                       "variables": {"first": size}})

        # then: the page is complete ...
        body = response.json()
        assert "errors" not in body, body
        edges = body["data"]["jobs"]["edges"]
        assert len(edges) == size
        for edge in edges:
            node = edge["node"]
            assert node["progress"] == {"step": "ocr", "percent": 50}
            assert [entry["seq"] for entry in node["logs"]] == list(range(6, 16))
            assert node["batch"]["counts"] == {"total": JOBS_PER_BATCH}
            assert node["batch"]["status"] == "PENDING"
        if size == 100:
            assert len({edge["node"]["batch"]["batchName"] for edge in edges}) == BATCHES
        commands[size] = Counter(counter.counts)

    # ... and it took one page read, one read of the batches and one count aggregation
    assert commands[10] == Counter({"find": 2, "aggregate": 1})
    assert commands[10] == commands[50] == commands[100]


async def test_batch_jobs_inside_batches_cost_one_command_per_batch_not_per_job(
        counted: tuple[httpx.AsyncClient, CommandCounter], store: Store) -> None:
    client, counter = counted
    await seed(client, store)
    query = """query($first: Int!) { batches { edges { node {
        batchName
        counts { total }
        jobs(first: $first) { edges { node { jobId batch { batchId } } } }
    } } } }"""

    costs = {}
    for size in (5, 25):
        counter.counts.clear()
        response = await client.post("/graphql", json={"query": query,
                                                       "variables": {"first": size}})
        batches = response.json()["data"]["batches"]["edges"]
        assert [len(b["node"]["jobs"]["edges"]) for b in batches] == [size] * BATCHES
        costs[size] = sum(counter.counts.values())

    # then: a page of batches, their counts, one page of jobs per batch and at most one
    # batch lookup per batch (the loader batches what arrives together) - never per job
    for size, cost in costs.items():
        assert 2 + BATCHES + 1 <= cost <= 2 + 2 * BATCHES, (size, cost)
