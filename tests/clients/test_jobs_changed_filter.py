"""``jobsChanged`` with a filter, on a process that never saw a job's earlier state: a job
it was sent as CURRENT still leaves the filter with UPDATED. Each process keeps the
states it saw, a bounded number (``repository/changes.py``); one started after the job
was written (a restart, a deploy, a process added), or one that had to forget it, knows
only what it reads when the job changes. Python's gql client."""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

import pytest
from gql import Client, GraphQLRequest
from gql.transport.websockets import WebsocketsTransport

from tests.helpers.graphql import WORKER, Api
from tests.helpers.live import DEADLINE, LiveServer, live_server

from .conftest import CLAIM, create_job, token

JOBS_CHANGED = GraphQLRequest("""subscription($filter: JobSubscriptionFilter) {
  jobsChanged(filter: $filter, initial: 10) { kind jobId job { status } } }""")


@pytest.mark.parametrize("forgotten", ["started after", "forgot"])
async def test_a_job_sent_as_current_leaves_the_filter_on_a_process_that_never_saw_it_change(
    live: LiveServer, http: Api, settings: Any, mongo_uri: str, forgotten: str
) -> None:
    # given a pending job, written before the serving process saw anything of it
    job_type = f"filter-{uuid.uuid4().hex[:8]}"
    job_id = await create_job(http, job_type)
    async with live_server(settings, mongo_uri) as other:
        if forgotten == "forgot":  # it saw the job, and had to let it go (bounded cache)
            await asyncio.sleep(0)
            other.app.state.hub.feed.cache.clear()
        transport = WebsocketsTransport(
            url=other.ws_url, init_payload={"Authorization": f"Bearer {token(settings)}"})
        async with Client(transport=transport) as session, asyncio.timeout(DEADLINE):
            stream = session.subscribe(GraphQLRequest(JOBS_CHANGED, variable_values={
                "filter": {"status": "PENDING", "jobType": job_type}}))
            first = (await anext(stream))["jobsChanged"]
            assert (first["kind"], first["jobId"]) == ("CURRENT", job_id)

            # when a worker claims it (PENDING -> PROCESSING), then a marker is created
            await http.data(CLAIM, {"types": [job_type]}, as_=WORKER)
            marker = await create_job(http, job_type)

            # then the subscriber hears that it left the filter, before the marker
            events = []
            async for event in stream:
                events.append(event["jobsChanged"])
                if event["jobsChanged"]["jobId"] == marker:
                    break
            await stream.aclose()
    assert [(e["kind"], e["jobId"], e["job"] and e["job"]["status"]) for e in events] == [
        ("UPDATED", job_id, "PROCESSING"), ("CREATED", marker, "PENDING")]
