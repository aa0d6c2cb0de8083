"""Database operations have a deadline, and no job stays claimed for a caller that is gone.

A proxy in front of the database holds back the answer to one command, so the database
applies a claim while its answer is kept from the API: the request's deadline passes, or
the client disconnects, with the job already taken. Either way the claim is undone: the
job is PENDING again and its attempt is given back.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest

from repository.database import Store
from tests.helpers.graphql import ADMIN, WORKER, Api, make_settings, open_api
from tests.helpers.live import live_server
from tests.helpers.proxy import WireProxy, wire_proxy
from tests.helpers.waiting import eventually

DEADLINE_MS = 500
CREATE = """mutation { createJob(input: {jobType: "pdf"}) { jobId } }"""
CLAIM = """mutation { claimJob { jobId attempts } }"""
JOB = """query($id: ID!) { job(jobId: $id) { status attempts claimedBy } }"""


@pytest.fixture
async def proxy(mongo_uri: str) -> AsyncIterator[WireProxy]:
    async with wire_proxy(mongo_uri) as proxy:
        yield proxy


async def create(api: Api) -> str:
    return (await api.data(CREATE))["createJob"]["jobId"]


async def back_in_the_queue(api: Api, job_id: str) -> dict[str, Any]:
    """Wait until the job is PENDING with no attempt used, as it was before the claim."""

    async def pending() -> dict[str, Any] | None:
        job = (await api.data(JOB, {"id": job_id}, as_=ADMIN))["job"]
        return job if job["status"] == "PENDING" else None

    return await eventually(pending)


async def test_a_query_past_its_deadline_answers_database_unavailable(
    proxy: WireProxy, database_name: str, store: Store
) -> None:
    settings = make_settings(database=database_name, mongodb_timeout_ms=DEADLINE_MS,
                             reaper_interval_seconds=3600)
    async with open_api(settings, proxy.uri) as api:
        job_id = await create(api)
        held = proxy.hold("find")
        started = time.monotonic()
        body = await asyncio.wait_for(api.execute(JOB, {"id": job_id}, as_=ADMIN), 30)
        elapsed = time.monotonic() - started
        held.release()
        assert held.replied.is_set()
        assert body["errors"][0]["extensions"]["code"] == "DATABASE_UNAVAILABLE", body
        assert elapsed < 10 * DEADLINE_MS / 1000


async def test_a_claim_answered_after_its_deadline_is_undone(
    proxy: WireProxy, database_name: str, store: Store
) -> None:
    settings = make_settings(database=database_name, mongodb_timeout_ms=DEADLINE_MS,
                             reaper_interval_seconds=3600)
    async with open_api(settings, proxy.uri) as api:
        # given a waiting job, and a database whose answer to the claim comes too late
        job_id = await create(api)
        held = proxy.hold("findAndModify")

        # when a worker claims it
        started = time.monotonic()
        body = await asyncio.wait_for(api.execute(CLAIM, as_=WORKER), 30)
        elapsed = time.monotonic() - started

        # then the database did take the job, but the worker hears the deadline passed
        assert held.replied.is_set()
        held.release()
        assert body["errors"][0]["extensions"]["code"] == "DATABASE_UNAVAILABLE", body
        assert elapsed < 10 * DEADLINE_MS / 1000
        # and the claim is undone: the job waits again, its attempt given back
        job = await back_in_the_queue(api, job_id)
        assert (job["attempts"], job["claimedBy"]) == (0, None)
        claimed = (await api.data(CLAIM, as_=WORKER))["claimJob"]
        assert (claimed["jobId"], claimed["attempts"]) == (job_id, 1)


async def test_a_claim_whose_worker_record_gets_no_answer_is_undone(
    proxy: WireProxy, database_name: str, store: Store
) -> None:
    """The claim is answered, but recording its worker (``workers``, for the queues) is
    not: the worker hears DATABASE_UNAVAILABLE, so the job must not stay claimed for it."""
    settings = make_settings(database=database_name, mongodb_timeout_ms=DEADLINE_MS,
                             reaper_interval_seconds=3600)
    async with open_api(settings, proxy.uri) as api:
        job_id = await create(api)
        held = proxy.hold("update", "workers")

        body = await asyncio.wait_for(api.execute(CLAIM, as_=WORKER), 30)

        assert held.replied.is_set()
        held.release()
        assert body["errors"][0]["extensions"]["code"] == "DATABASE_UNAVAILABLE", body
        job = await back_in_the_queue(api, job_id)
        assert (job["attempts"], job["claimedBy"]) == (0, None)


async def test_a_claim_the_database_applies_after_its_deadline_is_undone(
    proxy: WireProxy, database_name: str, store: Store
) -> None:
    """The overloaded database: the claim reaches it only after the worker gave up."""
    settings = make_settings(database=database_name, mongodb_timeout_ms=DEADLINE_MS,
                             reaper_interval_seconds=0.05)
    async with open_api(settings, proxy.uri) as api:
        job_id = await create(api)
        held = proxy.hold("findAndModify", request=True)
        body = await asyncio.wait_for(api.execute(CLAIM, as_=WORKER), 30)
        assert body["errors"][0]["extensions"]["code"] == "DATABASE_UNAVAILABLE", body
        # when the database gets to the claim at last, with nobody waiting for it
        assert held.arrived.is_set() and not held.replied.is_set()
        held.release()
        await asyncio.wait_for(held.replied.wait(), 30)
        # then the lease sweep undoes it
        job = await back_in_the_queue(api, job_id)
        assert (job["attempts"], job["claimedBy"]) == (0, None)


class Records(logging.Handler):
    def __init__(self) -> None:
        super().__init__()
        self.messages: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.messages.append(record.getMessage())


@pytest.mark.parametrize("seen", [False, True], ids=["new document", "known document"])
async def test_a_claim_whose_client_disconnected_is_undone(
    proxy: WireProxy, database_name: str, store: Store, seen: bool
) -> None:
    """A known document takes the express lane (graph/express.py), a new one Strawberry's."""
    settings = make_settings(database=database_name, mongodb_timeout_ms=60_000,
                             reaper_interval_seconds=3600)
    records = Records()
    logging.getLogger("jobgraph.claims").addHandler(records)
    try:
        async with live_server(settings, proxy.uri) as server, httpx.AsyncClient(
                base_url=server.url, timeout=60) as client:
            api = Api(client, settings)
            if seen:
                assert (await api.data(CLAIM, as_=WORKER))["claimJob"] is None
            job_id = await create(api)
            held = proxy.hold("findAndModify")

            # when a worker's claim reaches the database, and the worker gives up on it
            request = asyncio.create_task(client.post(
                "/graphql", json={"query": CLAIM}, headers=WORKER.headers(settings)))
            await asyncio.wait_for(held.replied.wait(), 30)
            request.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await request
            await client.aclose()  # its connection is gone for sure

            # and the server learns it before the database's answer arrives
            await eventually(lambda: any("left" in message for message in records.messages))
            held.release()

            # then the claim is undone: the job waits again, its attempt given back
            async with httpx.AsyncClient(base_url=server.url, timeout=60) as again:
                api = Api(again, settings)
                job = await back_in_the_queue(api, job_id)
                assert (job["attempts"], job["claimedBy"]) == (0, None)
    finally:
        logging.getLogger("jobgraph.claims").removeHandler(records)
