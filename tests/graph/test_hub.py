"""The hub reads job histories only while someone follows one (``ON_DEMAND``): the first
follower is let in once the stream reads them, so its current state and the stream leave
nothing out between them."""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections.abc import AsyncIterator
from typing import Any

import pytest
from pymongo.errors import AutoReconnect

from graph.realtime import hub as hub_module
from graph.realtime.hub import Hub, Subscriber, SubscriptionError
from repository import changes
from repository.access import Principal
from repository.database import Store, make_client
from repository.errors import ErrorCode
from repository.models import JobProgress
from tests.helpers.waiting import eventually

ALICE, WORKER = Principal("alice"), Principal("w", roles=frozenset({"worker"}))


class Held:
    """Holds every call of ``owner``'s async method ``name`` at ``gate`` (``reached`` says
    one came), so a test can act while the hub is inside it."""

    def __init__(self, owner: Any, name: str) -> None:
        self.reached, self.gate = asyncio.Event(), asyncio.Event()
        method = getattr(owner, name)

        async def held(*args: Any) -> Any:
            self.reached.set()
            await self.gate.wait()
            return await method(*args)

        setattr(owner, name, held)


@contextlib.asynccontextmanager
async def joining(hub: Hub, job_id: str, gate: asyncio.Event
                  ) -> AsyncIterator[asyncio.Task[Subscriber]]:
    """A subscriber of ``job_id`` coming now, let in in the background; on the way out the
    ``gate`` opens and one never let in is cancelled."""
    joined = asyncio.create_task(hub.subscribe(keys=[("jobs", job_id)]).__aenter__())
    try:
        yield joined
    finally:
        gate.set()
        if not joined.done():
            joined.cancel()


async def assert_sent_only_what_its_state_misses(store: Store, subscriber: Subscriber,
                                                 job_id: str) -> None:
    """Its current state holds the claim (version 1), so the first change it is sent is
    the next one; then it leaves."""
    current = await store.jobs.get(ALICE, job_id)
    assert current is not None and current.version == 1  # its state holds the claim
    await store.jobs.update_progress(WORKER, job_id, JobProgress("s", 50, "m"))
    first = await asyncio.wait_for(subscriber.next(), 30)
    assert first.document is not None
    assert first.document["version"] == 2, "sent the claim, older than the subscription"
    await subscriber.__aexit__(None, None, None)


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


async def test_with_no_subscriber_the_hub_gathers_and_the_first_subscriber_ends_the_wait(
        store: Store, monkeypatch: pytest.MonkeyPatch) -> None:
    """With no subscriber the hub waits UNHEARD_GATHER_SECONDS between ``getMore``s (each
    costs the same whatever it brings). The first subscriber must not wait it out, and is
    not sent what this process wrote before it came and read only after (its current
    state holds that)."""
    monkeypatch.setattr(changes, "UNHEARD_GATHER_SECONDS", 3600.0)
    alice, worker = Principal("alice"), Principal("w", roles=frozenset({"worker"}))
    hub = Hub(store.db)
    await hub.start()
    try:
        job = await store.jobs.create(alice, job_type="unheard")
        await eventually(lambda: hub.feed._unheard is not None)  # read it, and waits now
        await store.jobs.claim(worker, ["unheard"])  # version 1, unread
        async with asyncio.timeout(30), hub.subscribe(  # let in well within the hour
                keys=[("jobs", job.job_id)], collections=["jobs"]) as subscriber:
            assert hub.feed.listened
            current = await store.jobs.get(alice, job.job_id)
            assert current is not None and current.version == 1
            await store.jobs.update_progress(worker, job.job_id, JobProgress("s", 50, "m"))
            progressed = await asyncio.wait_for(subscriber.next(), 30)
            assert progressed.document is not None
            assert (progressed.operation, progressed.document["version"]) == ("update", 2)
        assert not hub.feed.listened  # the last one left
    finally:
        await hub.stop()


async def test_a_change_written_while_a_first_subscriber_waits_to_be_let_in_is_sent(
        store: Store, mongo_uri: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """The first subscriber of a quiet process waits for a ``getMore`` asked after it
    came; what that reply brings at or before the cluster time the process had seen is
    left out (its state, read next, holds it), but a change written after, by anyone
    (another client here: another process) and read in that very reply, is sent:
    ``jobsChanged(initial: 0)`` reads no state and would lose it for good."""
    monkeypatch.setattr(changes, "UNHEARD_GATHER_SECONDS", 3600.0)
    job = await store.jobs.create(ALICE, job_type="late")  # before the hub's stream
    client = make_client(mongo_uri)  # the hub's own: it sees nothing of ``store``'s writes
    hub = Hub(client[store.db.name])
    catch_up = Held(hub.feed, "_catch_up")
    await hub.start()
    try:
        await eventually(lambda: hub.feed._unheard is not None)
        async with joining(hub, job.job_id, catch_up.gate) as joined:
            await asyncio.wait_for(catch_up.reached.wait(), 30)  # came; its getMore asked
            assert not joined.done()  # and it waits for that getMore's answer
            await store.jobs.claim(WORKER, ["late"])  # meanwhile, through another client
            catch_up.gate.set()
            subscriber = await asyncio.wait_for(joined, 30)
            claimed = await asyncio.wait_for(subscriber.next(), 30)
            assert claimed.document is not None and claimed.document["version"] == 1
            await subscriber.__aexit__(None, None, None)
    finally:
        await hub.stop()
        await client.close()


async def test_a_subscriber_coming_while_a_batch_is_handed_on_is_not_sent_older_changes(
        store: Store, monkeypatch: pytest.MonkeyPatch) -> None:
    """It came while a batch was being handed on, after a change written before it came
    and not read yet: that change is not sent to it (found by a tester through gql under
    a steady flow of workers: a job's completion written before the subscription, sent
    with a batch handed on after it came)."""
    monkeypatch.setattr(changes, "UNHEARD_GATHER_SECONDS", 3600.0)
    unknown = await store.jobs.create(ALICE, job_type="mid-batch-unknown")  # before the hub
    hub = Hub(store.db)
    lookup = Held(hub.feed, "_lookup")
    await hub.start()
    try:
        job = await store.jobs.create(ALICE, job_type="mid-batch")  # read: then it gathers
        await eventually(lambda: hub.feed._unheard is not None)
        # a change of a job it holds no state of: its lookup is held while the batch that
        # caught up is handed on
        await store.db["jobs"].update_one({"_id": unknown.job_id}, {"$inc": {"version": 1}})
        unheard = hub.feed._unheard
        assert unheard is not None
        unheard.set_result(None)  # the gather ends (as its half second would)
        await asyncio.wait_for(lookup.reached.wait(), 30)  # the batch is being handed on
        claimed = await store.jobs.claim(WORKER, ["mid-batch"])  # version 1, before it came
        assert claimed is not None and claimed.job_id == job.job_id
        async with joining(hub, job.job_id, lookup.gate) as joined:
            await eventually(lambda: hub.count)
            lookup.gate.set()
            subscriber = await asyncio.wait_for(joined, 30)
            await assert_sent_only_what_its_state_misses(store, subscriber, job.job_id)
    finally:
        await hub.stop()


async def test_a_first_subscriber_coming_while_a_getmore_reply_is_unread_is_not_sent_it(
        store: Store) -> None:
    """As under load through gql (a tester): the reply to the stream's ``getMore`` (a
    claim written before the subscription) waited unread in the process when the first
    subscriber came; it was sent that claim, older than its subscription."""
    job = await store.jobs.create(ALICE, job_type="unread-reply")  # before the hub
    hub = Hub(store.db)
    await hub.start()
    stream, gate, arrived = hub.feed._stream, asyncio.Event(), asyncio.Event()
    read = stream.try_next

    async def slow_to_read() -> Any:
        event = await read()
        if event is not None and not gate.is_set():
            arrived.set()
            await gate.wait()  # the reply is here; the process is busy elsewhere
        return event

    stream.try_next = slow_to_read
    try:
        claimed = await store.jobs.claim(WORKER, ["unread-reply"])  # version 1
        assert claimed is not None and claimed.job_id == job.job_id
        await asyncio.wait_for(arrived.wait(), 30)
        assert not hub.feed.listened
        async with joining(hub, job.job_id, gate) as joined:
            await eventually(lambda: hub.count)
            gate.set()
            subscriber = await asyncio.wait_for(joined, 30)
            await assert_sent_only_what_its_state_misses(store, subscriber, job.job_id)
    finally:
        await hub.stop()


async def test_a_first_subscriber_is_let_in_while_the_stream_cannot_answer(
        store: Store, monkeypatch: pytest.MonkeyPatch) -> None:
    """The database does not answer the catch-up ``getMore`` (hung, or far behind): the
    first subscriber is let in after LET_IN_SECONDS, not left waiting on it."""
    monkeypatch.setattr(changes, "UNHEARD_GATHER_SECONDS", 3600.0)
    hub = Hub(store.db)
    catch_up = Held(hub.feed, "_catch_up")
    await hub.start()
    try:
        await eventually(lambda: hub.feed._unheard is not None)
        async with asyncio.timeout(30), hub.subscribe(collections=["jobs"]):
            assert catch_up.reached.is_set()  # let in while its getMore hangs
    finally:
        catch_up.gate.set()
        await hub.stop()


async def test_an_idle_quiet_process_asks_for_changes_about_twice_a_second(
        store: Store, monkeypatch: pytest.MonkeyPatch) -> None:
    """A reply whose last change is old is followed at once (the stream lags the flow),
    but a reply with nothing in it is not: an idle process gathers between asks, however
    old the last change it read (here every change counts as old)."""
    monkeypatch.setattr(changes, "LAGGING_SECONDS", 0.0)
    hub = Hub(store.db)
    await hub.start()
    try:
        await store.jobs.create(Principal("alice"), job_type="idle")
        await eventually(lambda: hub.events >= 1)  # read it, an "old" change
        asked = hub.feed.issued
        await asyncio.sleep(1.5)  # a rate: load only lowers it
        assert hub.feed.issued - asked <= 6, "asked again at once after an empty reply"
    finally:
        await hub.stop()


async def test_subscribers_coming_together_to_a_quiet_process_ask_the_database_nothing(
        store: Store, mongo_uri: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """Each first subscriber of a quiet process waits for the database's cluster time: the
    stream's next reply tells it (a reconnect storm once asked a ping each, ~0.3 ms of the
    API's CPU apiece), and each knows what was written before it, though its client had
    not been told of it when it came."""
    monkeypatch.setattr(changes, "UNHEARD_GATHER_SECONDS", 3600.0)
    client = make_client(mongo_uri)
    hub = Hub(client[store.db.name])
    await hub.start()
    commands = 0
    command = type(hub.feed.db).command

    async def counted(*args: Any, **kwargs: Any) -> Any:
        nonlocal commands
        commands += 1
        return await command(*args, **kwargs)

    monkeypatch.setattr(type(hub.feed.db), "command", counted)
    try:
        await eventually(lambda: hub.feed._unheard is not None)
        job = await store.jobs.create(ALICE, job_type="storm")  # not told to the hub's client
        entered = [hub.subscribe(collections=["jobs"], before_told=True) for _ in range(50)]
        async with asyncio.timeout(30):
            await asyncio.gather(*(subscriber.__aenter__() for subscriber in entered))
        assert commands == 0
        assert all(("jobs", job.job_id) in (subscriber.before_told or {})
                   for subscriber in entered)
        for subscriber in entered:
            await subscriber.__aexit__(None, None, None)
    finally:
        await hub.stop()
        await client.close()


async def test_a_list_subscriber_of_a_listened_process_is_let_in_while_its_changes_wait(
        store: Store, monkeypatch: pytest.MonkeyPatch) -> None:
    """A subscriber that must know what was written before it came (``before_told``) on a
    process whose stream keeps up is let in at once (it reads the current state while the
    stream's next reply is under way), its changes held back until that reply tells the
    database's time; taken off the hub meanwhile (its token expired), its reader hears so
    at once, not when the stream answers."""
    monkeypatch.setattr(hub_module, "WINDOW_SECONDS", 3600.0)
    hub = Hub(store.db)
    await hub.start()
    catch_up: Held | None = None
    try:
        async with asyncio.timeout(30), hub.subscribe(collections=["batches"]):  # listened
            catch_up = Held(hub.feed, "_catch_up")
            subscriber = await hub.subscribe(collections=["jobs"], before_told=True).__aenter__()
            assert subscriber.window is not None and not subscriber.window.admitted.done()
            await store.jobs.create(ALICE, job_type="window")
            await asyncio.wait_for(catch_up.reached.wait(), 30)  # its stream asks again
            reading = asyncio.create_task(subscriber.next())
            await asyncio.sleep(0.05)  # (a reader that would wait for the stream: fails below)
            assert not reading.done()
            subscriber.fail(SubscriptionError(ErrorCode.UNAUTHENTICATED, "token expired"))
            with pytest.raises(SubscriptionError):
                await asyncio.wait_for(reading, 10)
            await subscriber.__aexit__(None, None, None)
    finally:
        if catch_up is not None:
            catch_up.gate.set()
        await hub.stop()


async def test_a_reader_that_stops_waiting_for_held_changes_can_wait_again(
        store: Store) -> None:
    """A reader that gives up waiting while its changes are held back (a timeout around
    ``next``) does not end the hold for good: it hears the next change once the stream
    has caught up."""
    hub = Hub(store.db)
    await hub.start()
    catch_up: Held | None = None
    try:
        async with asyncio.timeout(30), hub.subscribe(collections=["batches"]):  # listened
            catch_up = Held(hub.feed, "_catch_up")
            async with hub.subscribe(collections=["jobs"], before_told=True) as subscriber:
                with pytest.raises(TimeoutError):
                    await asyncio.wait_for(subscriber.next(), 0.05)
                catch_up.gate.set()
                job = await store.jobs.create(ALICE, job_type="gave-up")
                assert (await subscriber.next()).object_id == job.job_id
    finally:
        if catch_up is not None:
            catch_up.gate.set()
        await hub.stop()
