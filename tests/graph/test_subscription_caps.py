"""Subscriptions per caller: one user, or all anonymous callers together, can hold only
their share of a process's subscriptions, over as many connections as they like."""

from __future__ import annotations

from contextlib import AsyncExitStack
from typing import Any

import httpx
import pytest

from tests.helpers.graphql import ALICE, BOB, Api, make_settings
from tests.helpers.live import DEADLINE, SubscriptionClosed, live_server, ws_client
from tests.helpers.waiting import eventually

from .test_subscriptions import JOB_CHANGED, bearer, create_job

PUBLIC = {"visibility": "PUBLIC"}


async def subscribed(stack: AsyncExitStack, server: Any, job_id: str,
                     payload: dict[str, str] | None) -> Any:
    """A new connection holding one subscription to the job; its first event read."""
    client = await stack.enter_async_context(ws_client(server, payload=payload))
    op = await client.subscribe(JOB_CHANGED, {"id": job_id})
    return client, op, await client.next(op)


async def refused(stack: AsyncExitStack, server: Any, job_id: str,
                  payload: dict[str, str] | None) -> dict[str, Any]:
    with pytest.raises(SubscriptionClosed) as closed:
        await subscribed(stack, server, job_id, payload)
    [error] = closed.value.errors
    return error


async def test_one_user_holds_at_most_their_share_over_any_number_of_connections(
    mongo_uri: str, store: Any, database_name: str
) -> None:
    settings = make_settings(database=database_name, max_subscriptions_per_user=2,
                             max_subscriptions_per_process=100)
    async with live_server(settings, mongo_uri) as server, httpx.AsyncClient(
            base_url=server.url, timeout=DEADLINE) as http_client:
        job_id = await create_job(Api(http_client, settings), accessControl=PUBLIC)
        alice, bob = bearer(settings, ALICE), bearer(settings, BOB)
        async with AsyncExitStack() as stack:
            # alice's two subscriptions, each on a connection of its own
            first = await subscribed(stack, server, job_id, alice)
            await subscribed(stack, server, job_id, alice)
            # a third connection does not give her a third
            error = await refused(stack, server, job_id, alice)
            assert error["extensions"]["code"] == "TOO_MANY_SUBSCRIPTIONS"
            assert "2" in error["message"]
            # bob is not held back by her
            await subscribed(stack, server, job_id, bob)
            # and once she stops one, she may start one again
            client, op, _ = first
            await client.stop(op)
            async def again() -> bool:
                try:
                    await subscribed(stack, server, job_id, alice)
                except SubscriptionClosed:
                    return False
                return True

            assert await eventually(again)


async def test_anonymous_callers_together_cannot_take_the_process(
    mongo_uri: str, store: Any, database_name: str
) -> None:
    settings = make_settings(database=database_name, max_anonymous_subscriptions=3,
                             max_subscriptions_per_user=50, max_subscriptions_per_process=10)
    async with live_server(settings, mongo_uri) as server, httpx.AsyncClient(
            base_url=server.url, timeout=DEADLINE) as http_client:
        job_id = await create_job(Api(http_client, settings), accessControl=PUBLIC)
        async with AsyncExitStack() as stack:
            # anonymous callers, each on a connection of their own, get three in all
            for _ in range(3):
                await subscribed(stack, server, job_id, None)
            error = await refused(stack, server, job_id, None)
            assert error["extensions"]["code"] == "TOO_MANY_SUBSCRIPTIONS"
            assert "anonymous" in error["message"]
            # while the process still has room for signed-in users
            for caller in (ALICE, BOB):
                await subscribed(stack, server, job_id, bearer(settings, caller))
