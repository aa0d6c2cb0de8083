"""No documentation job stays claimed for a caller that is gone (as in
``test_claim_deadline`` for jobs): a proxy in front of the database holds back the answer to
the claim, so the database applies it while the worker's request runs past its deadline or
the worker disconnects. Either way the claim is undone: PENDING again, attempt given back."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest

from repository.database import Store
from tests.helpers.graphql import ADMIN, WORKER, Api, make_settings, open_api
from tests.helpers.live import live_server
from tests.helpers.proxy import WireProxy, wire_proxy
from tests.helpers.waiting import eventually

from .test_claim_deadline import Records

DEADLINE_MS = 500
CREATE = """mutation { createDocumentationJob(input: {repositoryPath: "/src/app",
  repositoryName: "app", outputDirectory: "/docs"}) { jobId } }"""
CLAIM = """mutation { claimDocumentationJob { jobId attempts } }"""
JOB = """query($id: ID!) { documentationJob(jobId: $id) { status attempts claimedBy } }"""


@pytest.fixture
async def proxy(mongo_uri: str) -> AsyncIterator[WireProxy]:
    async with wire_proxy(mongo_uri) as proxy:
        yield proxy


async def back_in_the_queue(api: Api, job_id: str) -> dict[str, Any]:
    async def pending() -> dict[str, Any] | None:
        job = (await api.data(JOB, {"id": job_id}, as_=ADMIN))["documentationJob"]
        return job if job["status"] == "PENDING" else None

    return await eventually(pending)


async def test_a_claim_answered_after_its_deadline_is_undone(
    proxy: WireProxy, database_name: str, store: Store
) -> None:
    settings = make_settings(database=database_name, mongodb_timeout_ms=DEADLINE_MS,
                             reaper_interval_seconds=3600)
    async with open_api(settings, proxy.uri) as api:
        # given a waiting job, and a database whose answer to the claim comes too late
        job_id = (await api.data(CREATE))["createDocumentationJob"]["jobId"]
        held = proxy.hold("findAndModify", "documentation_jobs")

        # when a worker claims it
        body = await asyncio.wait_for(api.execute(CLAIM, as_=WORKER), 30)

        # then the database took the job, but the worker hears the deadline passed
        assert held.replied.is_set()
        held.release()
        assert body["errors"][0]["extensions"]["code"] == "DATABASE_UNAVAILABLE", body
        # and the claim is undone, so the next claim takes it as a first attempt
        job = await back_in_the_queue(api, job_id)
        assert (job["attempts"], job["claimedBy"]) == (0, None)
        claimed = (await api.data(CLAIM, as_=WORKER))["claimDocumentationJob"]
        assert (claimed["jobId"], claimed["attempts"]) == (job_id, 1)


async def test_a_claim_whose_client_disconnected_is_undone(
    proxy: WireProxy, database_name: str, store: Store
) -> None:
    settings = make_settings(database=database_name, mongodb_timeout_ms=60_000,
                             reaper_interval_seconds=3600)
    records = Records()
    logging.getLogger("jobgraph.claims").addHandler(records)
    try:
        async with live_server(settings, proxy.uri) as server, httpx.AsyncClient(
                base_url=server.url, timeout=60) as client:
            api = Api(client, settings)
            job_id = (await api.data(CREATE))["createDocumentationJob"]["jobId"]
            held = proxy.hold("findAndModify", "documentation_jobs")

            # when a worker's claim reaches the database, and the worker gives up on it
            request = asyncio.create_task(client.post(
                "/graphql", json={"query": CLAIM}, headers=WORKER.headers(settings)))
            await asyncio.wait_for(held.replied.wait(), 30)
            request.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await request
            await client.aclose()

            # and the server learns it before the database's answer arrives
            await eventually(lambda: any("claimDocumentationJob left" in message
                                         for message in records.messages))
            held.release()

            # then the claim is undone: the job waits again, its attempt given back
            async with httpx.AsyncClient(base_url=server.url, timeout=60) as again:
                job = await back_in_the_queue(Api(again, settings), job_id)
                assert (job["attempts"], job["claimedBy"]) == (0, None)
    finally:
        logging.getLogger("jobgraph.claims").removeHandler(records)
