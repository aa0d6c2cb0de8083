"""Python gql across two API processes: a job created through B after bob's
``jobsChanged(initial: 0)`` reached quiet process A (A had registered it) must be sent to
him. Found by a tester (breaker14) against 1b05984: the first subscriber of a quiet process
is let in with the cluster time of a ``ping`` as its cut-off, and a change read before it
was let in and written before that ping reached the database is dropped as old news; with
``initial: 0`` nothing reads it back, so it is lost for good. The ping may reach the
database well after the subscriber was registered: it is asked after the event loop gets
to it, and a subscriber who comes while another's ping is under way waits for the next
one, asked only once that one has answered. In a reconnect storm of 1,000 graphql-ws
clients on 2 cores, 521-828 of them lost 1-15 jobs each, created up to 145-327 ms after
their subscription was registered (scratch/exp_storm.py).

Deterministic: A's client reaches the database through a proxy that holds one ping (its
request, or its reply), as a slow network or a busy event loop would; A's stream gathers
unheard until the subscriber comes. 178a0a5 (no ping) passes both."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from gql import GraphQLRequest

from repository import changes
from tests.helpers.graphql import ALICE, BOB, Api, Caller
from tests.helpers.live import DEADLINE, LiveServer
from tests.helpers.proxy import WireProxy, wire_proxy
from tests.helpers.waiting import eventually

from .conftest import CREATE_JOB, quiet_process, ws_client

CAROL = Caller("carol")
LIST = """subscription($type: String) {
  jobsChanged(filter: {jobType: $type}, initial: 0) { kind jobId } }"""


@pytest.fixture
async def proxy(mongo_uri: str) -> AsyncIterator[WireProxy]:
    async with wire_proxy(mongo_uri) as proxy:
        yield proxy


@pytest.fixture
async def follower(writer: LiveServer, proxy: WireProxy, database_name: str,
                   monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[LiveServer]:
    """Process A through the proxy, and no timer that lets a subscriber in before the test
    is done (the machine may be slow)."""
    monkeypatch.setattr(changes, "UNHEARD_GATHER_SECONDS", 3600.0)
    monkeypatch.setattr(changes, "LET_IN_SECONDS", 30.0)
    async with quiet_process(database_name, proxy.uri) as server:
        yield server


async def heard_until(subscription: Any, marker: str) -> list[str]:
    """The job ids ``subscription`` sends, up to and including ``marker``'s."""
    seen: list[str] = []
    while not seen or seen[-1] != marker:
        seen.append((await anext(subscription))["jobsChanged"]["jobId"])
    return seen


@pytest.mark.parametrize("held", ["request", "reply"], ids=[
    "its-own-ping-reaches-the-database-late",
    "it-came-while-another-subscribers-ping-was-under-way"])
async def test_a_job_created_after_a_quiet_process_registered_a_subscription_is_sent(
        writer: LiveServer, follower: LiveServer, proxy: WireProxy, settings: Any,
        held: str) -> None:
    hub = follower.app.state.hub
    job_type = f"quiet-loss-{uuid.uuid4().hex[:8]}"
    readable = {"readAccess": ["bob"], "adminAccess": ["alice"]}
    # the next ping A's client sends: held on its way to the database ("request"), or its
    # answer held on its way back ("reply"; the database applied it at once)
    ping = proxy.hold("ping", "", request=held == "request")
    async with (httpx.AsyncClient(base_url=writer.url, timeout=DEADLINE) as client,
                ws_client(follower, settings, CAROL) as carol,
                ws_client(follower, settings, BOB) as bob, asyncio.timeout(DEADLINE)):
        b = Api(client, settings)
        carols: Any = None
        if held == "reply":
            # given carol, the first subscriber of quiet process A: her ping is answered
            # slowly
            carols = carol.subscribe(GraphQLRequest(LIST, variable_values={"type": "other"}))
            carol_first = asyncio.ensure_future(anext(carols))
            await eventually(lambda: hub.count == 1)
        # when bob subscribes to jobs of a type through A (registered by A), and then a
        # job of that type he may read is created through B, and read by A's stream
        bobs = bob.subscribe(GraphQLRequest(LIST, variable_values={"type": job_type}))
        bob_heard = asyncio.ensure_future(anext(bobs))
        await eventually(lambda: hub.count == (2 if held == "reply" else 1))
        job_id = (await b.data(CREATE_JOB, {"input": {"jobType": job_type,
                                                     "accessControl": readable}},
                               as_=ALICE))["createJob"]["jobId"]
        await eventually(lambda: hub.feed.cache.get(("jobs", job_id)) is not None)
        ping.release()
        await eventually(lambda: not hub.feed._joiners)  # every subscriber let in
        marker = (await b.data(CREATE_JOB, {"input": {"jobType": job_type,
                                                     "accessControl": readable}},
                               as_=ALICE))["createJob"]["jobId"]
        first = (await bob_heard)["jobsChanged"]["jobId"]
        seen = [first] if first == marker else [first, *await heard_until(bobs, marker)]
        await bobs.aclose()
        if carols is not None:
            carol_first.cancel()
            await asyncio.gather(carol_first, return_exceptions=True)
            await carols.aclose()
    # then he hears of the job created after his subscription was registered, then of the
    # marker
    assert seen == [job_id, marker]
