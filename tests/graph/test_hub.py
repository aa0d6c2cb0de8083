"""The hub reads job histories only while someone follows one (``ON_DEMAND``): the first
follower is let in once the stream reads them, so its current state and the stream leave
nothing out between them."""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

from pymongo.errors import AutoReconnect

from graph.realtime.hub import Hub, Subscriber
from repository.access import Principal
from repository.database import Store
from tests.helpers.waiting import eventually


async def test_the_first_follower_of_histories_waits_for_the_stream_to_read_them(
        store: Store) -> None:
    hub = Hub(store.db)
    await hub.start()
    try:
        assert "job_history" not in hub.feed.watched
        async with hub.subscribe(collections=["job_history"]) as follower:
            # the stream reads them before the subscriber reads anything
            assert "job_history" in hub.feed.watched
            entry = {"_id": uuid.uuid4().hex, "job_id": "j"}
            await store.db["job_history"].insert_one(entry)
            change = await asyncio.wait_for(follower.next(), 30)
            assert (change.collection, change.object_id) == ("job_history", entry["_id"])
        assert hub.followers == {"job_history": 0}
    finally:
        await hub.stop()


def stalled(store: Store) -> Hub:
    """A hub whose stream never comes round to open again (as while its getMore waits)."""
    hub = Hub(store.db)
    hub._task = asyncio.create_task(asyncio.Event().wait())
    return hub


async def waiting_follower(hub: Hub) -> asyncio.Task[Subscriber]:
    waiting = asyncio.create_task(hub.subscribe(collections=["job_history"]).__aenter__())
    await eventually(lambda: hub.count)  # registered, and waiting
    return waiting


async def test_a_follower_that_leaves_while_it_waits_is_unregistered(store: Store) -> None:
    hub = stalled(store)
    try:
        waiting = await waiting_follower(hub)
        waiting.cancel()
        await asyncio.gather(waiting, return_exceptions=True)
        assert waiting.cancelled()
        assert (hub.count, hub.followers, hub.all_subscribers()) == (0, {"job_history": 0}, set())
    finally:
        await hub.stop()


async def test_a_follower_waiting_when_the_hub_stops_is_let_go(store: Store) -> None:
    hub = stalled(store)
    waiting = await waiting_follower(hub)
    await hub.stop()
    follower = await asyncio.wait_for(waiting, 30)
    assert follower.error is not None  # SUBSCRIPTIONS_UNAVAILABLE: shutting down


async def test_a_change_whose_lookup_fails_is_not_skipped_when_the_stream_resumes(
        store: Store) -> None:
    """The hub resumes its stream after a database error "from its last resume token, so no
    change is lost" (README, How events flow). A change whose document must be read (one
    this process holds no state of) and whose read fails must be handed on once the stream
    resumes, not skipped: the token had already moved past it before the read."""
    alice, worker = Principal("alice"), Principal("w", roles=frozenset({"worker"}))
    job = await store.jobs.create(alice, job_type="lookup-fails")  # before the hub: unknown
    hub = Hub(store.db, retry_delay=0.05)
    failures = []
    read = hub.feed._lookup

    async def lookup_failing_once(event: dict[str, Any]) -> dict[str, Any] | None:
        if not failures:
            failures.append(event)
            raise AutoReconnect("connection closed (injected)")
        return await read(event)

    hub.feed._lookup = lookup_failing_once  # type: ignore[method-assign]
    await hub.start()
    try:
        async with hub.subscribe(keys=[("jobs", job.job_id)]) as changes:
            await store.jobs.claim(worker, ["lookup-fails"])  # version 1: needs a lookup
            await eventually(lambda: failures)
            # then the claim reaches the subscriber once the read is retried (skipped, it
            # would come with the job's next change, as a later state, if ever)
            first = await asyncio.wait_for(changes.next(), 30)
        assert first.document is not None
        assert (first.document["version"], first.document["status"]) == (1, "PROCESSING")
    finally:
        await hub.stop()
