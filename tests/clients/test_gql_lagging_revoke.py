"""Python gql across two API processes: bob, whose read access to a job was taken through
B, then following every job of its type through A, must hear nothing of it. Found by a
tester (breaker14) against 1b05984, which fixed this for a quiet A (no subscriber): on an
A with a subscriber of its own whose stream lags, the job's creation and update from
before the revoke, then DELETED, still come to bob as news (his cut-off is the newest
cluster time A's client had been told, and what the stream reads after he was let in is
all sent). The README says this takes a write within a few milliseconds of the
subscription; after a burst it is seconds: with a batch of 1,000 jobs created through B
just before, bob heard CREATED v0, UPDATED v1 (the job's data) and DELETED in 3 of 4
rounds, and DELETED alone or nothing in the others (scratch/exp_burst_leak.py, 2 cores;
178a0a5: 1 of 4).

Deterministic: A's client reaches the database through a proxy that holds one reply of
A's change stream (a stream behind, as after a burst), while B writes and bob subscribes.
Fails on 1b05984, on 178a0a5 and on 6f17785; 3 of 10 runs failed with the cut-off taken
from A's last reply when it came within 50 ms (the pings' shortcut, since removed): bob
is let in at once, and his changes wait until a reply of A's stream asked after he came
has told the database's time and the stream has read up to it."""

from __future__ import annotations

import asyncio
import math
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import httpx
import pytest
from gql import Client, GraphQLRequest
from gql.transport.websockets import WebsocketsTransport

from graph.realtime.hub import Hub
from tests.helpers.api_process import api_process
from tests.helpers.graphql import ALICE, BOB, Api, Caller, make_settings
from tests.helpers.live import DEADLINE, LiveServer, live_server
from tests.helpers.proxy import WireProxy, wire_proxy
from tests.helpers.waiting import eventually

from .conftest import CREATE_JOB, token

CAROL = Caller("carol")
LIST = """subscription($type: String) {
  jobsChanged(filter: {jobType: $type}, initial: 5) { kind jobId } }"""


@pytest.fixture
async def writer(settings: Any, mongo_uri: str, store: Any) -> AsyncIterator[LiveServer]:
    """Process B, started first (it holds the loops' leases)."""
    async with api_process(settings, mongo_uri) as server:
        yield server


@pytest.fixture
async def proxy(mongo_uri: str) -> AsyncIterator[WireProxy]:
    async with wire_proxy(mongo_uri) as proxy:
        yield proxy


@pytest.fixture
async def follower(writer: LiveServer, proxy: WireProxy, database_name: str
                   ) -> AsyncIterator[LiveServer]:
    """Process A, through the proxy, with no loop of its own that reads the database."""
    settings = make_settings(database=database_name, reaper_interval_seconds=3600.0,
                             history_poll_seconds=60.0, dispatcher=False)
    async with live_server(settings, proxy.uri) as server:
        yield server


def let_in(hub: Hub, count: int) -> bool:
    """Whether ``count`` subscribers are registered, each let in to read the current state."""
    return hub.count == count and all(subscriber.settled < math.inf
                                      for subscriber in hub.all_subscribers())


def session(server: LiveServer, settings: Any, caller: Caller) -> Client:
    return Client(transport=WebsocketsTransport(
        url=server.ws_url, subprotocols=[WebsocketsTransport.GRAPHQLWS_SUBPROTOCOL],
        init_payload={"Authorization": f"Bearer {token(settings, caller)}"}))


@asynccontextmanager
async def listened(follower: LiveServer, settings: Any) -> AsyncIterator[Client]:
    """Bob's session on A, while carol (following another type) keeps A from being quiet."""
    hub = follower.app.state.hub
    async with session(follower, settings, CAROL) as carol, \
            session(follower, settings, BOB) as bob:
        carols = carol.subscribe(GraphQLRequest(LIST, variable_values={"type": "other"}))
        carol_first = asyncio.ensure_future(anext(carols))
        await eventually(lambda: let_in(hub, 1))
        try:
            yield bob
        finally:
            carol_first.cancel()
            await asyncio.gather(carol_first, return_exceptions=True)
            await carols.aclose()


async def change_then_take_from_bob(b: Api, job_id: str) -> None:
    """Through B: the job changed, then bob's read access taken."""
    await b.data("mutation($id: ID!) { setJobPriority(jobId: $id, priority: 42) "
                 "{ version } }", {"id": job_id}, as_=ALICE)
    await b.data("""mutation($id: ID!, $a: AccessControlInput!) {
      setJobAccess(jobId: $id, accessControl: $a) { version } }""",
                 {"id": job_id, "a": {"adminAccess": ["alice"]}}, as_=ALICE)


async def test_a_reader_revoked_before_subscribing_to_a_lagging_process_hears_nothing_of_it(
        writer: LiveServer, follower: LiveServer, proxy: WireProxy, settings: Any) -> None:
    hub = follower.app.state.hub
    job_type = f"lagging-{uuid.uuid4().hex[:8]}"
    grant = {"readAccess": ["bob"], "adminAccess": ["alice"]}
    # given process A with a subscriber (carol, following another type): not quiet
    async with (httpx.AsyncClient(base_url=writer.url, timeout=DEADLINE) as client,
                listened(follower, settings) as bob, asyncio.timeout(DEADLINE)):
        b = Api(client, settings)
        # and A's change stream behind: the answer to its next request is slow to come
        reply = proxy.hold("getMore", "")
        await reply.arrived.wait()
        # when a job bob could read is created, changed, then taken from him, through B
        job_id = (await b.data(CREATE_JOB, {"input": {"jobType": job_type,
                                                     "accessControl": grant}},
                               as_=ALICE))["createJob"]["jobId"]
        await change_then_take_from_bob(b, job_id)
        # and then bob follows that type of job through A (the job is not among the current
        # ones he is sent), A's stream catches up, and a job he may read is created
        bobs = bob.subscribe(GraphQLRequest(LIST, variable_values={"type": job_type}))
        bob_heard = asyncio.ensure_future(anext(bobs))
        await eventually(lambda: let_in(hub, 2))
        reply.release()
        marker = (await b.data(CREATE_JOB, {"input": {"jobType": job_type,
                                                     "accessControl": grant}},
                               as_=ALICE))["createJob"]["jobId"]
        seen = [(await bob_heard)["jobsChanged"]]
        while seen[-1]["jobId"] != marker:
            seen.append((await anext(bobs))["jobsChanged"])
        await bobs.aclose()
    # then the first (and only) thing he hears is the new job: nothing of the one taken
    assert seen == [{"kind": "CREATED", "jobId": marker}]


async def test_a_job_sent_as_current_then_taken_while_its_changes_wait_comes_as_deleted(
        writer: LiveServer, follower: LiveServer, proxy: WireProxy, settings: Any) -> None:
    """Found by a tester (breaker15) against 800ae73: bob was sent a job as CURRENT while
    A's stream was behind; the job was changed, then taken from him through B, before the
    stream caught up. He heard the change, never DELETED: his list kept a job he may no
    longer read."""
    job_type = f"current-{uuid.uuid4().hex[:8]}"
    grant = {"readAccess": ["bob"], "adminAccess": ["alice"]}
    async with (httpx.AsyncClient(base_url=writer.url, timeout=DEADLINE) as client,
                listened(follower, settings) as bob, asyncio.timeout(DEADLINE)):
        b = Api(client, settings)
        # given a job bob may read, and A's stream behind (its next reply slow to come)
        job_id = (await b.data(CREATE_JOB, {"input": {"jobType": job_type,
                                                     "accessControl": grant}},
                               as_=ALICE))["createJob"]["jobId"]
        reply = proxy.hold("getMore", "")
        await reply.arrived.wait()
        # when bob follows its type through A, and is sent it as CURRENT
        bobs = bob.subscribe(GraphQLRequest(LIST, variable_values={"type": job_type}))
        seen = [(await anext(bobs))["jobsChanged"]]
        # and the job is changed, then taken from him, through B, before A catches up
        await change_then_take_from_bob(b, job_id)
        reply.release()
        marker = (await b.data(CREATE_JOB, {"input": {"jobType": job_type,
                                                     "accessControl": grant}},
                               as_=ALICE))["createJob"]["jobId"]
        while seen[-1]["jobId"] != marker:
            seen.append((await anext(bobs))["jobsChanged"])
        await bobs.aclose()
    # then he hears the change, then DELETED, then the new job
    assert seen == [{"kind": "CURRENT", "jobId": job_id}, {"kind": "UPDATED", "jobId": job_id},
                    {"kind": "DELETED", "jobId": job_id}, {"kind": "CREATED", "jobId": marker}]
