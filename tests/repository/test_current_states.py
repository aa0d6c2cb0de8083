"""A job's current state, read once for a burst of subscribers (repository/current_states.py):
every caller gets what its own filtered read would have given (the job, or NOT_FOUND when
it may not read it), in one ``find``; and a read already sent is joined only while the
caller's hub says no change of the job reached its subscribers since the read started, so a
caller never gets a state older than its own call without the change that follows it."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import pytest

from repository.access import Principal
from repository.database import Store, make_client
from repository.errors import NotFoundError
from repository.job_logs import get_without_logs
from repository.models import AccessControl, JobStatus
from tests.helpers.commands import CommandCounter
from tests.helpers.waiting import eventually

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


class Epochs:
    """Stands for the hub: the job's epoch is whatever the test says."""

    def __init__(self, value: int | None) -> None:
        self.value = value

    def job_epoch(self, job_id: str) -> int | None:
        return self.value


async def started_read(store: Store, job_id: str, epochs: Epochs) -> asyncio.Task[Any]:
    """A caller's read, sent (recorded as in flight) and not yet answered."""
    first = asyncio.create_task(store.jobs.get_without_logs(ALICE, job_id, epochs))
    await asyncio.sleep(0)  # it asks: its read waits for the end of the loop's pass
    await asyncio.sleep(0)  # the read starts (its find is not even on the wire yet)
    assert job_id in store.jobs.current_states.sent
    return first


async def test_a_read_in_flight_is_joined_while_no_change_of_the_job_reached_its_subscribers(
        counted: tuple[Store, CommandCounter]) -> None:
    store, counter = counted
    [job] = await insert_jobs(store, [make_job()])
    epochs = Epochs(7)
    counter.clear()
    # given a read in flight, and no change handed to the job's subscribers since it started
    first = await started_read(store, job.job_id, epochs)
    # when another caller asks (a reader, and one who may not read it)
    second, refused = await asyncio.gather(
        store.jobs.get_without_logs(ALICE, job.job_id, epochs),
        outcome(store.jobs.get_without_logs(BOB, job.job_id, epochs)))
    # then all were answered by the one find, each as its own read would have answered
    assert (await first).version == second.version == job.version
    assert refused[0] == "NOT_FOUND"
    assert counter.counts["find"] == 1
    assert store.jobs.current_states.sent == {}  # nothing kept once answered


@pytest.mark.parametrize("moved", ["changed", "no subscribers", "another hub"])
async def test_a_read_in_flight_is_not_joined_once_the_epoch_moved_or_is_unknown(
        counted: tuple[Store, CommandCounter], moved: str) -> None:
    store, counter = counted
    [job] = await insert_jobs(store, [make_job()])
    epochs = Epochs(7)
    counter.clear()
    # given a read in flight
    first = await started_read(store, job.job_id, epochs)
    # when a change of the job reached its subscribers, or the caller's epoch is unknown
    # or from elsewhere, and a caller asks
    asking = {"changed": epochs, "no subscribers": Epochs(None), "another hub": Epochs(7)}
    if moved == "changed":
        epochs.value = 8
    elif moved == "no subscribers":
        epochs.value = None
    second = await store.jobs.get_without_logs(ALICE, job.job_id, asking[moved])
    # then it read again
    await first
    assert second.job_id == job.job_id
    assert counter.counts["find"] == 2
