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
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from gql import Client, GraphQLRequest
from gql.transport.websockets import WebsocketsTransport

from repository import changes
from tests.helpers.api_process import api_process
from tests.helpers.graphql import ALICE, Api, Caller, make_settings
from tests.helpers.live import DEADLINE, LiveServer, live_server
from tests.helpers.waiting import eventually

from .conftest import CREATE_JOB, token

BURST = 300
"""More than the default JOBGRAPH_SUBSCRIBER_QUEUE_SIZE (256), in three replies."""
CREATE_BATCH = """mutation($input: CreateBatchInput!) { createBatch(input: $input) { batchId } }"""
EVERY_JOB = "subscription { jobsChanged(initial: 0) { kind jobId } }"


@pytest.fixture
async def writer(settings: Any, mongo_uri: str, store: Any) -> AsyncIterator[LiveServer]:
    """Process B, started first (it holds the loops' leases)."""
    async with api_process(settings, mongo_uri) as server:
        yield server


@pytest.fixture
async def follower(writer: LiveServer, database_name: str, mongo_uri: str,
                   monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[LiveServer]:
    """Process A, with no loop of its own that reads the database meanwhile, and a stream
    that, unheard, gathers until a subscriber comes."""
    monkeypatch.setattr(changes, "UNHEARD_GATHER_SECONDS", 3600.0)
    settings = make_settings(database=database_name, reaper_interval_seconds=3600.0,
                             history_poll_seconds=60.0, dispatcher=False)
    async with live_server(settings, mongo_uri) as server:
        hub = server.app.state.hub
        await eventually(lambda: hub.feed._unheard is not None)
        yield server


def session(server: LiveServer, settings: Any, caller: Caller) -> Client:
    return Client(transport=WebsocketsTransport(
        url=server.ws_url, subprotocols=[WebsocketsTransport.GRAPHQLWS_SUBPROTOCOL],
        init_payload={"Authorization": f"Bearer {token(settings, caller)}"}))


async def test_the_first_subscriber_after_a_burst_is_not_dropped_for_older_changes(
        writer: LiveServer, follower: LiveServer, settings: Any) -> None:
    hub = follower.app.state.hub
    async with (httpx.AsyncClient(base_url=writer.url, timeout=DEADLINE * 3) as client,
                session(follower, settings, ALICE) as alice,
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
