"""A quiet process's gulp can hold more than one ``getMore`` reply carries (SecantusDB
answers a change stream's ``getMore`` with at most 101 events when no ``batchSize`` is
asked, MongoDB's first-batch default; it also scans at most 200 oplog entries per pull).
Found by a tester (breaker8) when the first subscriber was let in after ONE reply asked
after it came: the rest of a larger backlog (written and acknowledged through this very
process before it came) reached it later, as news; and with no subscriber the stream read
one reply per half second, so a steady flow of more than ~200 changes a second left it
further behind every gulp. Now it is let in once the stream reached the cluster time it
came at, or the end of the oplog, and a reply that may have left more is followed at once
(``repository.changes``: FULL_REPLY, LAGGING_SECONDS, ``ChangeFeed.caught_up``)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest

from graph.realtime.hub import Hub
from repository import changes
from repository.access import Principal
from repository.database import Store
from repository.job_documents import job_to_document
from tests.helpers.waiting import eventually

BACKLOG = 150
"""More changes than one reply carries (101 on SecantusDB)."""
BURST = 500


@pytest.fixture
async def quiet(store: Store, monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[Hub]:
    """A hub with no subscriber, in a gulp that lasts until a test ends it (an hour)."""
    monkeypatch.setattr(changes, "UNHEARD_GATHER_SECONDS", 3600.0)
    hub = Hub(store.db)  # the same client writes: this process's own writes
    await hub.start()
    try:
        yield hub
    finally:
        await hub.stop()


async def job_in_a_gulp(store: Store, hub: Hub, job_type: str) -> str:
    job = await store.jobs.create(Principal("alice"), job_type=job_type)
    await eventually(lambda: hub.feed._unheard is not None)  # it gathers now
    return job.job_id


async def bump(store: Store, job_id: str, times: int = 1) -> None:
    """Writes the job's next versions, each acknowledged to this process."""
    for _ in range(times):
        await store.db["jobs"].update_one({"_id": job_id}, {"$inc": {"version": 1}})


async def assert_first_sent_is_after(store: Store, hub: Hub, job_id: str, version: int
                                     ) -> None:
    """The first subscriber's state holds ``version``; the first change sent is the next."""
    async with asyncio.timeout(30), hub.subscribe(
            keys=[("jobs", job_id)], collections=["jobs"]) as subscriber:
        current = await store.db["jobs"].find_one({"_id": job_id})
        assert current is not None and current["version"] == version  # its state
        await bump(store, job_id)
        first = await asyncio.wait_for(subscriber.next(), 30)
        assert first.document is not None
        assert first.document["version"] == version + 1, (
            f"sent version {first.document['version']}, written before it came")


async def test_the_first_subscriber_is_not_sent_a_backlog_bigger_than_one_reply(
        store: Store, quiet: Hub) -> None:
    job_id = await job_in_a_gulp(store, quiet, "backlog")
    await bump(store, job_id, BACKLOG)
    await assert_first_sent_is_after(store, quiet, job_id, BACKLOG)


async def test_a_quiet_process_reads_its_whole_backlog_in_one_gulp(
        store: Store, quiet: Hub) -> None:
    job_id = await job_in_a_gulp(store, quiet, "gulp")
    await bump(store, job_id, BACKLOG)
    gulp = quiet.feed._unheard
    assert gulp is not None
    gulp.set_result(None)  # the half second is over: it reads what gathered
    await eventually(lambda: quiet.feed._unheard not in (None, gulp))  # gathers again
    state = quiet.feed.cache.get(("jobs", job_id))
    assert state is not None
    assert state["version"] == BACKLOG, (
        f"read up to version {state['version']} of {BACKLOG}, then waits a gulp again")


async def test_a_quiet_process_reads_a_fresh_burst_in_one_gulp(
        store: Store, quiet: Hub, monkeypatch: pytest.MonkeyPatch) -> None:
    """A burst written in one go came 101, 99, 101, ... changes a reply: a reply short of
    full may still leave hundreds behind, and they are not a second old yet (the lag rule
    is out of play here: only the replies' sizes decide)."""
    monkeypatch.setattr(changes, "LAGGING_SECONDS", 3600.0)
    await job_in_a_gulp(store, quiet, "before-burst")
    gulp = quiet.feed._unheard
    docs = [job_to_document(store.jobs.new_job(Principal("alice"), job_type="burst"))
            for _ in range(BURST)]
    await store.jobs.collection.insert_many(docs)
    assert gulp is not None
    gulp.set_result(None)  # the half second is over: it reads what gathered
    await eventually(lambda: quiet.feed._unheard not in (None, gulp))  # gathers again
    read = sum(quiet.feed.cache.get(("jobs", doc["_id"])) is not None for doc in docs)
    assert read == BURST, f"read {read} of the {BURST} new jobs, then waits a gulp again"


async def test_the_first_subscriber_is_not_sent_changes_behind_unwatched_writes(
        store: Store, quiet: Hub) -> None:
    job_id = await job_in_a_gulp(store, quiet, "behind-unwatched")
    # more than a catch-up reply scans (a reply with nothing, its position moved, is not
    # the end): e.g. job_history entries while no one follows one (not watched)
    await store.db["unwatched"].insert_many([{"n": n} for n in range(2000)])
    await bump(store, job_id, 3)  # few: one reply would carry them all
    await assert_first_sent_is_after(store, quiet, job_id, 3)
