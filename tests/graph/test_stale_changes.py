"""A change from before a subscription's current state is old news, whatever its access.

Another API process's writes from just before a subscription began can reach the
subscriber after its current state (this process's client had not been told their
cluster time: ``Subscriber.since``). Each follower skips a state its subscriber already
has before it looks at who could read it: a worker's ``jobChanged`` on a job it had just
claimed ended as NOT_FOUND at the job's creation (which it could not read), seen as a
flaky ``tests/graph/test_big_logs.py`` under a loaded suite."""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import AsyncIterator
from typing import Any

import pytest
from bson import Timestamp

from graph.realtime import hub as hub_module
from graph.realtime.follow import JobEvents, NewerStates, batch_states
from graph.realtime.hub import Hub, Subscriber
from graph.schema.jobs.history import lost_access
from repository import changes
from repository.access import Principal, readable_document
from repository.batches import JobSpec, batch_to_document
from repository.changes import Change
from repository.database import Store, make_client
from repository.errors import ForbiddenError, NotFoundError
from repository.job_documents import job_from_document, job_to_document
from repository.models import AccessControl, JobProgress, SecretaryJob, utcnow
from tests.graph.test_hub import Held
from tests.helpers.waiting import eventually

ALICE = Principal("alice")
WORKER = Principal("worker-stale", frozenset({"worker"}))


@pytest.fixture
async def other_process(mongo_uri: str, database_name: str) -> AsyncIterator[Store]:
    """Writes through a client of its own, as another API process's would."""
    client = make_client(mongo_uri)
    try:
        yield Store(client, database_name)
    finally:
        await client.close()


@pytest.fixture
async def quiet(mongo_uri: str, database_name: str, monkeypatch: pytest.MonkeyPatch
                ) -> AsyncIterator[Hub]:
    """A hub on a client nothing else uses, in a gulp that lasts until a subscriber comes:
    the newest cluster time it knows is from before the other process's writes."""
    monkeypatch.setattr(changes, "UNHEARD_GATHER_SECONDS", 3600.0)
    client = make_client(mongo_uri)
    hub = Hub(Store(client, database_name).db)
    await hub.start()
    try:
        await eventually(lambda: hub.feed._unheard is not None)
        yield hub
    finally:
        await hub.stop()
        await client.close()


async def test_a_workers_job_changed_skips_the_creation_it_could_not_read(
        other_process: Store, quiet: Hub) -> None:
    # given a job created by alice (the worker may not read it) and then claimed by the
    # worker, both written by another process while this one's hub gathers unheard
    await other_process.jobs.create(ALICE, job_type="stale-claim")
    job = await other_process.jobs.claim(WORKER, ["stale-claim"])
    assert job is not None
    # when the worker subscribes here, reads the current state and makes one change
    async with asyncio.timeout(30), quiet.subscribe(keys=[("jobs", job.job_id)]) as changes:
        current = await other_process.jobs.get_without_logs(WORKER, job.job_id)
        follower = NewerStates(current.version, WORKER, job_from_document, kind="job",
                               object_id=job.job_id, claimable=True)
        await other_process.jobs.update_progress(WORKER, job.job_id,
                                                 JobProgress("step", 50, "half"))
        # then the first state it hears is that change's: the creation and the claim,
        # read late, are not news (the creation ended it as NOT_FOUND)
        heard = await first_heard(changes, follower)
    assert heard.version == current.version + 1
    assert heard.progress.percent == 50


async def first_heard(changes: Subscriber, follower: Any) -> Any:
    """The first payload ``follower`` makes of the changes ``changes`` is sent."""
    heard = None
    while heard is None:
        heard = follower.step(await changes.next())
    return heard


def job_change(job_id: str, version: int, *, readable: bool,
               operation: str = "update") -> Change:
    """A change of a job to ``version``, which WORKER may read or not (it holds no claim)."""
    now = utcnow()
    document = job_to_document(SecretaryJob(
        job_id=job_id, job_type="stale", created_at=now, updated_at=now, version=version,
        access_control=AccessControl(read_access=[WORKER.user_id] if readable else []),
        owner="alice"))
    assert readable_document(WORKER, document) is readable
    return Change("jobs", operation, job_id, document, True)


def test_a_state_not_newer_than_the_one_sent_is_skipped_whoever_could_read_it() -> None:
    follower = NewerStates(5, WORKER, job_from_document, kind="job", object_id="j1")
    assert follower.step(job_change("j1", 1, readable=False, operation="insert")) is None
    assert follower.step(job_change("j1", 5, readable=False)) is None
    assert follower.step(job_change("j1", 6, readable=True)).version == 6
    with pytest.raises(NotFoundError):  # a newer state it may not read ends it, as before
        follower.step(job_change("j1", 7, readable=False))


def test_a_job_sent_as_current_skips_older_states_whoever_could_read_them() -> None:
    follower = JobEvents(WORKER, {"j1": 5}, lambda change, *event: event)
    assert follower.step(job_change("j1", 2, readable=False)) is None
    assert follower.step(job_change("j1", 5, readable=False)) is None
    readable = job_change("j1", 6, readable=True)
    assert follower.step(readable)[:2] == ("UPDATED", "j1")
    # past the state sent, a change that takes the access tells it DELETED, as before
    revoked = dataclasses.replace(job_change("j1", 7, readable=False),
                                  previous=readable.document)
    assert follower.step(revoked) == ("DELETED", "j1", None)


async def test_a_batch_state_not_newer_than_the_one_sent_is_skipped(store: Store) -> None:
    batch = await store.batches.create(ALICE, batch_name="stale", jobs=[JobSpec("stale")])
    reader = Principal("bob")
    await store.batches.set_access(ALICE, batch.batch_id, AccessControl(
        read_access=["bob"], admin_access=["alice"]))
    current = await store.batches.get(reader, batch.batch_id)
    stored = batch_to_document(current)
    hidden = {**batch_to_document(batch), "version": current.version - 1}  # before bob's
    newer = {**stored, "version": current.version + 1, "batch_name": "renamed"}
    assert not readable_document(reader, hidden) and readable_document(reader, newer)

    class Changes:
        def __init__(self) -> None:
            self.queue = [Change("batches", "update", batch.batch_id, hidden, True),
                          Change("batches", "update", batch.batch_id, newer, True)]

        def __aiter__(self) -> Any:
            return self

        async def __anext__(self) -> Change:
            if not self.queue:
                raise StopAsyncIteration
            return self.queue.pop(0)

    states = batch_states(Changes(), store, reader, current)  # type: ignore[arg-type]
    # the stale state is passed over (it ended the subscription as NOT_FOUND); the newer
    # one is sent
    state = await anext(states)
    assert (state.version, state.batch_name) == (current.version + 1, "renamed")


def test_a_history_follower_passes_over_older_states_of_the_job() -> None:
    """``jobHistory`` ends a follower who lost the job, not one sent an older state of it."""
    admin = Principal("carol")

    def state(version: int, *, reads: bool, administers: bool) -> Change:
        now = utcnow()
        document = job_to_document(SecretaryJob(
            job_id="j1", job_type="stale", created_at=now, updated_at=now, version=version,
            access_control=AccessControl(read_access=["carol"] if reads else [],
                                         admin_access=["carol"] if administers else []),
            owner="alice"))
        return Change("jobs", "update", "j1", document, True)

    # older states (before carol could read or administer it) change nothing
    assert lost_access(admin, "j1", state(1, reads=False, administers=False), 5) == 5
    assert lost_access(admin, "j1", state(5, reads=True, administers=False), 5) == 5
    assert lost_access(admin, "j1", state(6, reads=True, administers=True), 5) == 6
    with pytest.raises(ForbiddenError):  # newer ones still end it, as before
        lost_access(admin, "j1", state(7, reads=True, administers=False), 6)
    with pytest.raises(NotFoundError):
        lost_access(admin, "j1", state(7, reads=False, administers=False), 6)


async def test_a_revoked_reader_is_not_sent_a_jobs_states_from_before_it_subscribed(
        other_process: Store, quiet: Hub) -> None:
    """Found by a tester (breaker13): the revoked reader of a new ``jobsChanged`` heard the
    job's creation and update, then DELETED, all written before it subscribed."""
    # given a job bob could read, changed, then taken from him, all through another
    # process while this one's hub gathers unheard
    bob = Principal("bob-revoked")
    readable = await taken_from(bob, other_process, "revoked")
    # when bob subscribes to every job here (the current state shows him none of it), and
    # then a job he may read is created
    async with (asyncio.timeout(30),
                quiet.subscribe(collections=["jobs"], before_told=True) as changes):
        follower = JobEvents(bob, {}, lambda change, *event: event,
                             changes.before_told)
        marker = await other_process.jobs.create(ALICE, job_type="revoked-marker",
                                                 access_control=readable)
        heard = await first_heard(changes, follower)
    # then the first thing he hears of is the new job: nothing of the one taken from him
    assert heard[:2] == ("CREATED", marker.job_id)


async def taken_from(reader: Principal, store: Store, job_type: str) -> AccessControl:
    """A job ``reader`` could read, changed, then taken from him, through ``store``;
    returns the access that let him read it."""
    readable = AccessControl(read_access=[reader.user_id], admin_access=[ALICE.user_id])
    job = await store.jobs.create(ALICE, job_type=job_type, access_control=readable)
    await store.jobs.set_priority(ALICE, job.job_id, 42)
    await store.jobs.set_access(ALICE, job.job_id, AccessControl(admin_access=[ALICE.user_id]))
    return readable


def timed(change: Change, t: int, previous: Change | None = None) -> Change:
    return dataclasses.replace(change, cluster_time=Timestamp(1000, t),
                               previous=previous.document if previous else None)


def test_of_a_job_hidden_by_the_time_told_only_what_the_subscriber_was_never_sent_is_passed_over(
        ) -> None:
    """``hidden_by_then``: a first subscriber of a quiet process is sent what was written
    around the time it came (it cannot tell before from after); of a job it may not read by
    the time the database told it, it hears nothing of that time, unless it was sent the job
    (then its DELETED is due), and later changes are news as ever."""
    created = timed(job_change("j1", 1, readable=True, operation="insert"), 1)
    revoked = timed(job_change("j1", 2, readable=False), 2, created)
    regranted = timed(job_change("j1", 3, readable=True), 3, revoked)
    before_told = {("jobs", "j1"): revoked}
    follower = JobEvents(WORKER, {}, lambda change, *event: event, before_told)
    assert follower.step(created) is None and follower.step(revoked) is None
    assert not before_told  # let go with its last change
    assert follower.step(regranted)[:2] == ("UPDATED", "j1")  # after it: news
    # a job it was sent as CURRENT (at version 1) hears that it may no longer read it
    sent = JobEvents(WORKER, {"j1": 1}, lambda change, *event: event,
                     {("jobs", "j1"): revoked})
    assert sent.step(created) is None  # (not newer than what it was sent)
    assert sent.step(revoked) == ("DELETED", "j1", None)
    # nor of one deleted by then
    deleted = timed(dataclasses.replace(job_change("j1", 2, readable=True, operation="delete"),
                                        document=None), 2, created)
    gone = JobEvents(WORKER, {}, lambda change, *event: event, {("jobs", "j1"): deleted})
    assert gone.step(created) is None and gone.step(deleted) is None
    # a job still readable by then is sent, its creation included (it may be news)
    readable = JobEvents(WORKER, {}, lambda change, *event: event, {("jobs", "j1"): created})
    assert readable.step(created)[:2] == ("CREATED", "j1")
    # one sent as CURRENT (at version 0), changed, then taken, all before the time told
    # (a tester: it read its state while the stream was behind): UPDATED, then DELETED
    updated = timed(job_change("j1", 1, readable=True), 2, created)
    taken = timed(job_change("j1", 2, readable=False), 3, updated)
    shown = JobEvents(WORKER, {"j1": 0}, lambda change, *event: event,
                      {("jobs", "j1"): taken})
    assert shown.step(updated)[:2] == ("UPDATED", "j1")
    assert shown.step(taken) == ("DELETED", "j1", None)


async def test_a_revoked_reader_coming_while_a_listened_stream_lags_hears_nothing_of_the_job(
        other_process: Store, mongo_uri: str, database_name: str,
        monkeypatch: pytest.MonkeyPatch) -> None:
    """Found by a tester (breaker14), pre-existing: on a process with subscribers whose
    stream lags (right after a batch of 1,000 jobs), a reader revoked through another
    process just before subscribing heard the job's earlier states, then DELETED. A stream
    whose last reply may have left more now counts as behind: a subscriber coming then
    catches up first, as on a quiet process."""
    monkeypatch.setattr(changes, "MORE_BEHIND", 1)  # every reply with a change may leave more
    client = make_client(mongo_uri)
    hub = Hub(Store(client, database_name).db)
    await hub.start()
    bob = Principal("bob-lagging")
    readable = AccessControl(read_access=[bob.user_id], admin_access=[ALICE.user_id])
    catch_up: Held | None = None
    try:
        async with asyncio.timeout(30), hub.subscribe(collections=["batches"]):  # listened
            # given a stream that read a reply that may have left more, its next request
            # held (the backlog of a burst)
            catch_up = Held(hub.feed, "_gather")
            await other_process.jobs.create(ALICE, job_type="lagging-filler")
            await asyncio.wait_for(catch_up.reached.wait(), 30)
            # and a job bob could read, changed, then taken from him, meanwhile
            await taken_from(bob, other_process, "lagging")
            # when bob subscribes to every job here, and the stream goes on
            joining = asyncio.create_task(
                hub.subscribe(collections=["jobs"], before_told=True).__aenter__())
            await eventually(lambda: hub.count == 2)  # (registered)
            catch_up.gate.set()
            changes_ = await joining
            follower = JobEvents(bob, {}, lambda change, *event: event,
                                 changes_.before_told)
            marker = await other_process.jobs.create(ALICE, job_type="lagging-marker",
                                                     access_control=readable)
            heard = await first_heard(changes_, follower)
            await changes_.__aexit__(None, None, None)
        # then the first thing he hears of is the new job: nothing of the one taken from him
        assert heard[:2] == ("CREATED", marker.job_id)
    finally:
        if catch_up is not None:
            catch_up.gate.set()
        await hub.stop()
        await client.close()


async def test_a_revoked_reader_let_in_before_a_quiet_stream_caught_up_hears_nothing_of_it(
        other_process: Store, quiet: Hub, monkeypatch: pytest.MonkeyPatch) -> None:
    """Found by a tester (breaker15): a first subscriber of a quiet process let in by its
    timer (the stream slow to answer, or paused right after a burst) heard the revoked
    job's earlier states, then DELETED. It holds back its changes until the stream has
    caught up, as one let in at once does."""
    monkeypatch.setattr(changes, "LET_IN_SECONDS", 0.2)
    bob = Principal("bob-timer")
    readable = await taken_from(bob, other_process, "timer")
    catch_up = Held(quiet.feed, "_catch_up")
    try:
        async with (asyncio.timeout(30),
                    quiet.subscribe(collections=["jobs"], before_told=True) as changes_):
            assert changes_.window is not None  # let in by its timer, the stream held
            catch_up.gate.set()
            follower = JobEvents(bob, {}, lambda change, *event: event, changes_.before_told)
            marker = await other_process.jobs.create(ALICE, job_type="timer-marker",
                                                     access_control=readable)
            heard = await first_heard(changes_, follower)
        assert heard[:2] == ("CREATED", marker.job_id)
    finally:
        catch_up.gate.set()


async def test_a_list_subscribers_changes_wait_for_the_stream_among_unwatched_writes(
        store: Store, monkeypatch: pytest.MonkeyPatch) -> None:
    """Found by a tester (breaker15): with a collection the stream does not watch written
    every few milliseconds, a job created just after a list subscriber came was held for
    the whole window (5 s then): SecantusDB's empty replies move their token past the
    unwatched writes, which no event tells. The token's time says how far it read."""
    monkeypatch.setattr(hub_module, "WINDOW_SECONDS", 3600.0)
    hub = Hub(store.db)  # (the noise's replies tell its client their time)
    await hub.start()
    stop, written = asyncio.Event(), [0]

    async def unwatched() -> None:
        while not stop.is_set():
            await store.db["unwatched_noise"].insert_one({"at": utcnow()})
            written[0] += 1
            await asyncio.sleep(0.005)

    noise = asyncio.create_task(unwatched())
    catch_up: Held | None = None
    try:
        async with (asyncio.timeout(30), hub.subscribe(collections=["batches"])):  # listened
            catch_up = Held(hub.feed, "_catch_up")
            async with hub.subscribe(collections=["jobs"], before_told=True) as changes_:
                # the job is written, then noise, before the stream's next reply tells
                # the time: the job's event is older than that time, and nothing watched
                # comes after it
                job = await store.jobs.create(ALICE, job_type="unwatched")
                after = written[0]
                await eventually(lambda: written[0] >= after + 3)
                catch_up.gate.set()
                heard = await changes_.next()  # (held until the stream tells it caught up)
                assert heard.object_id == job.job_id
    finally:
        if catch_up is not None:
            catch_up.gate.set()
        stop.set()
        await noise
        await hub.stop()
