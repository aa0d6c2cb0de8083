"""A job's current state, read once for a burst of subscribers (repository/current_states.py):
every caller gets what its own filtered read would have given (the job, or NOT_FOUND when
it may not read it), in one ``find``; and a read already sent is never joined (who asks
meanwhile shares the next one), so a caller never gets a state older than its own call."""

from __future__ import annotations

import asyncio
import gc
from collections.abc import AsyncIterator
from typing import Any

import pytest

from repository.access import Principal
from repository.current_states import CurrentStates
from repository.database import Store, free_port, make_client
from repository.errors import NotFoundError
from repository.job_logs import get_without_logs
from repository.models import AccessControl, JobStatus
from tests.helpers.commands import CommandCounter
from tests.helpers.waiting import DEADLINE, eventually

from .support import ALICE, ANON, BOB, CAROL, ROOT, WORKER, insert_jobs, make_job

CALLERS = [ALICE, BOB, CAROL, ANON, ROOT, WORKER, Principal("w2", frozenset({"worker"}))]


@pytest.fixture
async def counted(mongo_uri: str, database_name: str, store: Store
                  ) -> AsyncIterator[tuple[Store, CommandCounter]]:
    counter = CommandCounter(database_name)
    client = make_client(mongo_uri, event_listeners=[counter])
    try:
        yield Store(client, database_name), counter
    finally:
        await client.close()


async def outcome(read: Any) -> Any:
    try:
        job = await read
    except NotFoundError as exc:
        return ("NOT_FOUND", str(exc))
    return ("job", job.job_id, job.version)


@pytest.mark.parametrize("public", [False, True])
async def test_a_burst_of_callers_is_one_read_and_each_gets_what_its_own_read_gives(
    counted: tuple[Store, CommandCounter], public: bool
) -> None:
    store, counter = counted
    # given a job alice administers, bob may read, and worker w holds
    [job] = await insert_jobs(store, [make_job(
        status=JobStatus.PROCESSING, claimed_by="w",
        access=AccessControl(admin_access=["alice"], read_access=["bob"],
                             visibility="PUBLIC" if public else "PRIVATE"))])
    expected = [await outcome(get_without_logs(store.jobs.collection, caller, job.job_id))
                for caller in CALLERS]
    counter.clear()
    # when every caller asks for its current state at once (and for a missing job)
    got = await asyncio.gather(*(outcome(store.jobs.get_without_logs(caller, job.job_id))
                                 for caller in CALLERS))
    missing = await asyncio.gather(*(outcome(store.jobs.get_without_logs(caller, "nope"))
                                     for caller in CALLERS[:3]))
    # then each got what the filtered read gives it, from one find per job
    assert got == expected
    assert ("NOT_FOUND", "job 'nope' not found") in missing and len(set(missing)) == 1
    assert counter.counts["find"] == 2
    assert any(result[0] == "NOT_FOUND" for result in got) is not public


async def test_a_read_already_sent_is_not_joined(counted: tuple[Store, CommandCounter]
                                                 ) -> None:
    store, counter = counted
    [job] = await insert_jobs(store, [make_job()])
    counter.clear()
    # given a read that has been sent
    first = asyncio.create_task(store.jobs.get_without_logs(ALICE, job.job_id))
    await eventually(lambda: counter.counts["find"] == 1)
    # when the job changes, and another caller asks
    await store.jobs.collection.update_one({"_id": job.job_id}, {"$inc": {"version": 1}})
    second = await store.jobs.get_without_logs(ALICE, job.job_id)
    # then it read again, and got the state after the change
    assert second.version == job.version + 1
    assert (await first).version in (job.version, job.version + 1)
    assert counter.counts["find"] == 2


class SlowFind:
    """The job collection, except that ``find_one`` answers only when the test says so,
    with the document as it was when the read was sent (its snapshot), as a read in
    flight does; each read's start is recorded."""

    def __init__(self, collection: Any) -> None:
        self.collection = collection
        self.sent: list[asyncio.Event] = []
        self.release = asyncio.Event()

    async def find_one(self, *args: Any, **kwargs: Any) -> Any:
        taken = asyncio.Event()
        self.sent.append(taken)
        doc = await self.collection.find_one(*args, **kwargs)
        taken.set()
        await self.release.wait()
        return doc


def slowed(store: Store) -> SlowFind:
    states = store.jobs.current_states
    slow = SlowFind(states.collection)
    states.collection = slow  # type: ignore[assignment]
    return slow


async def test_callers_who_ask_while_a_read_is_in_flight_share_the_next_one(
        store: Store) -> None:
    [job] = await insert_jobs(store, [make_job()])
    slow = slowed(store)
    # given a read of the job in flight, its snapshot taken
    first = asyncio.create_task(store.jobs.get_without_logs(ALICE, job.job_id))
    await eventually(lambda: len(slow.sent) == 1)
    await asyncio.wait_for(slow.sent[0].wait(), DEADLINE)
    # when the job changes and five callers ask meanwhile
    await store.jobs.collection.update_one({"_id": job.job_id}, {"$inc": {"version": 1}})
    later = [asyncio.create_task(store.jobs.get_without_logs(ALICE, job.job_id))
             for _ in range(5)]
    await asyncio.sleep(0)
    await asyncio.sleep(0)
    # then none of them joined the read in flight, nor sent its own
    assert len(slow.sent) == 1 and not any(task.done() for task in later)
    # and once it is answered, one more read answers all five, with the change
    slow.release.set()
    assert (await first).version == job.version
    assert {(await task).version for task in later} == {job.version + 1}
    assert len(slow.sent) == 2


async def test_a_caller_who_lost_read_access_before_asking_never_gets_the_job(
        store: Store) -> None:
    # (found by a tester: a caller joining a read sent before its access was taken got the
    # state from before)
    [job] = await insert_jobs(store, [make_job(
        access=AccessControl(admin_access=["alice"], read_access=["bob"]))])
    slow = slowed(store)
    # given a read in flight that took the job while bob could still read it
    first = asyncio.create_task(store.jobs.get_without_logs(ALICE, job.job_id))
    await eventually(lambda: len(slow.sent) == 1)
    await asyncio.wait_for(slow.sent[0].wait(), DEADLINE)
    # when alice takes bob's access, and then bob asks
    await store.jobs.set_access(ALICE, job.job_id, AccessControl(admin_access=["alice"]))
    asking = asyncio.create_task(outcome(store.jobs.get_without_logs(BOB, job.job_id)))
    slow.release.set()
    await first
    # then bob gets NOT_FOUND, as his own read after the change gives, never the job
    assert (await asking)[0] == "NOT_FOUND"


async def test_a_failed_read_whose_callers_all_left_logs_no_unretrieved_exception(
        caplog: pytest.LogCaptureFixture) -> None:
    """Subscribers that leave while the database is down (a reconnect storm during an
    outage, a server shutting down) left their shared read failing with no one to hear
    it: asyncio logged "Future exception was never retrieved" at ERROR with a traceback,
    which README's Reliability section does not explain (seen with a killed database)."""
    client = make_client(f"mongodb://127.0.0.1:{free_port()}/?directConnection=true",
                         timeout_ms=300)  # nothing listens there: the database is down
    try:
        states = CurrentStates(client["down"]["jobs"])
        caller = asyncio.create_task(states.get(ALICE, "j"))
        await eventually(lambda: states.in_flight)  # the read is sent
        caller.cancel()  # and its only caller leaves
        await asyncio.gather(caller, return_exceptions=True)
        await eventually(lambda: not states.in_flight)  # the read failed
        del caller  # (its cancellation's traceback holds the read)
        gc.collect()
    finally:
        await client.close()
    unretrieved = [r for r in caplog.records if "never retrieved" in r.getMessage()]
    assert not unretrieved, unretrieved[0].getMessage()
