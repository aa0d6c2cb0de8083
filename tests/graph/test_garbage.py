"""What a request or a subscription leaves behind is freed as it ends, by reference
counting: none of it waits for the cyclic garbage collector. Three cycles did: each
upgraded WebSocket's HTTP protocol (its parser holds its callbacks), each execution's
executor (graphql-core's resolver helpers are its bound methods) and with it the context
and what its loaders read, and each subscription's executor again through its parking;
and a failed execution's error, whose traceback held the executor that held the error.
In a reconnect storm of 5,000 subscribers, the collections that freed them took ~120 us
per subscriber, a fifth of what connecting cost.

The server runs in the test's process; ``gc.DEBUG_SAVEALL`` keeps what a collection
finds unreachable, and the test reads the types."""

from __future__ import annotations

import gc
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import httpx
import pytest

from tests.helpers.graphql import Api, make_settings
from tests.helpers.live import DEADLINE, live_server, ws_client

from .test_subscriptions import ALICE, JOBS_CHANGED, bearer, create_job

WATCHED = ("graph.", "repository.", "graphql.", "strawberry.", "uvicorn.", "httptools",
           "websockets.", "starlette.")
"""Modules whose objects should never be found in a cycle."""

JOB = "query($id: ID!) { job(jobId: $id) { jobId status version parameters } }"
FOLLOW = "subscription($id: ID!) { jobChanged(jobId: $id) { version status } }"
PRIORITY = "mutation($id: ID!, $p: Int!) { setJobPriority(jobId: $id, priority: $p) { priority } }"


async def left_to_the_collector(run: Callable[[], Awaitable[None]]) -> Counter[str]:
    """The objects of WATCHED modules that only a collection freed while ``run`` ran."""
    gc.collect()
    gc.set_debug(gc.DEBUG_SAVEALL)
    try:
        await run()
        gc.collect()
    finally:
        gc.set_debug(0)
    found = Counter(f"{type(o).__module__}.{type(o).__qualname__}" for o in gc.garbage
                    if type(o).__module__.startswith(WATCHED))
    gc.garbage.clear()
    return found


@pytest.fixture
async def served(mongo_uri: str, store: Any, database_name: str
                 ) -> AsyncIterator[tuple[Any, Api, Any]]:
    settings = make_settings(database=database_name)
    async with live_server(settings, mongo_uri) as server, httpx.AsyncClient(
            base_url=server.url, timeout=DEADLINE) as client:
        yield server, Api(client, settings), settings


async def test_requests_leave_nothing_to_the_garbage_collector(served: Any) -> None:
    _, http, _ = served
    job_id = await create_job(http)
    await http.data(JOB, {"id": job_id})  # the documents validated, the code warm
    await http.data(PRIORITY, {"id": job_id, "p": 9})

    async def requests() -> None:
        for priority in range(5):
            await http.data(JOB, {"id": job_id})
            await http.data(PRIORITY, {"id": job_id, "p": priority})

    assert await left_to_the_collector(requests) == Counter()


async def test_failed_requests_leave_nothing_to_the_garbage_collector(served: Any) -> None:
    # the resolver's exception: its traceback held the executor, which held the error
    _, http, _ = served
    missing = "00000000-0000-4000-8000-000000000000"
    await http.error(JOB, {"id": missing})  # the documents validated, the code warm
    await http.error(PRIORITY, {"id": missing, "p": 1})

    async def requests() -> None:
        for _ in range(3):
            assert (await http.error(JOB, {"id": missing}))["extensions"]["code"] == "NOT_FOUND"
            assert (await http.error(PRIORITY, {"id": missing, "p": 1})
                    )["extensions"]["code"] == "NOT_FOUND"

    assert await left_to_the_collector(requests) == Counter()


@pytest.mark.parametrize("protocol", ["graphql-transport-ws", "graphql-ws"])
async def test_subscriptions_leave_nothing_to_the_garbage_collector(
        served: Any, protocol: str) -> None:
    server, http, settings = served
    job_id = await create_job(http)

    async def subscriptions() -> None:
        for priority in range(3):
            async with ws_client(server, protocol=protocol,
                                 payload=bearer(settings, ALICE)) as client:
                one = await client.subscribe(FOLLOW, {"id": job_id})
                listed = await client.subscribe(JOBS_CHANGED, {"initial": 5})
                first = await client.next(one)
                assert (await client.next(listed))["jobsChanged"]["kind"] == "CURRENT"
                await http.data(PRIORITY, {"id": job_id, "p": priority + 1})
                second = await client.next(one)
                assert second["jobChanged"]["version"] > first["jobChanged"]["version"]
                assert (await client.next(listed))["jobsChanged"]["kind"] == "UPDATED"
                await client.stop(listed)

    await subscriptions()  # the documents validated, the code warm
    assert await left_to_the_collector(subscriptions) == Counter()
