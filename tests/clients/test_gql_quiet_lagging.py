"""Python gql across two API processes: the first subscriber of a quiet process A, coming
right after a burst written through B, must not be dropped as SUBSCRIPTION_LAGGING for
changes older than its subscription. Found by a tester (breaker14) against 1b05984: the
subscriber now waits until A's stream has read up to the database's time (the ping), and
every change read meanwhile is queued for it until it is let in, though those written
before the ping are then left out as old news; over ``JOBGRAPH_SUBSCRIBER_QUEUE_SIZE``
(256) of them, and it is dropped before it was let in. Alice following every job through
A right after a batch of 300 jobs through B was dropped in 4 of 4 rounds
(scratch/exp_lagging_first.py; 150 jobs: 0 of 3). 178a0a5 let her in after the stream's
first reply (100 changes) and passes (sending her the batch as news, the older defect).
What the stream reads while a subscriber waits to be let in no longer counts against its
queue (``Subscriber.__aenter__``).

Deterministic: A's stream gathers unheard until the subscriber comes."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx
from gql import GraphQLRequest

from tests.helpers.graphql import ALICE, Api
from tests.helpers.live import DEADLINE, LiveServer
from tests.helpers.waiting import eventually

from .conftest import CREATE_JOB, ws_client

BURST = 300
"""More than the default JOBGRAPH_SUBSCRIBER_QUEUE_SIZE (256), in three replies."""
CREATE_BATCH = """mutation($input: CreateBatchInput!) { createBatch(input: $input) { batchId } }"""
EVERY_JOB = "subscription { jobsChanged(initial: 0) { kind jobId } }"


async def test_the_first_subscriber_after_a_burst_is_not_dropped_for_older_changes(
        writer: LiveServer, follower: LiveServer, settings: Any) -> None:
    hub = follower.app.state.hub
    async with (httpx.AsyncClient(base_url=writer.url, timeout=DEADLINE * 3) as client,
                ws_client(follower, settings, ALICE) as alice,
                asyncio.timeout(DEADLINE * 3)):
        b = Api(client, settings)
        # given a batch of 300 jobs created through B, which quiet process A has not read
        await b.data(CREATE_BATCH, {"input": {"batchName": "burst",
                                              "jobs": [{"jobType": "burst"}] * BURST}})
        # when alice follows every job through A, A's stream reads the batch, and then she
        # creates a job
        events = alice.subscribe(GraphQLRequest(EVERY_JOB))
        first = asyncio.ensure_future(anext(events))
        await eventually(lambda: hub.events > BURST and not hub.feed._joiners)
        marker = (await b.data(CREATE_JOB, {"input": {"jobType": "marker"}})
                  )["createJob"]["jobId"]
        # then she is not dropped (gql raises SUBSCRIPTION_LAGGING), and hears her job
        seen = [(await first)["jobsChanged"]["jobId"]]
        while seen[-1] != marker:
            seen.append((await anext(events))["jobsChanged"]["jobId"])
        await events.aclose()
