"""The history writer loses no acknowledged change: a writer that dies before writing the
entries of changes it had read leaves them to the next one, which resumes from the saved
position; a replay stores each entry once; a delete names who deleted."""

from __future__ import annotations

from typing import Any

from graph.loops.history import HistoryWriter
from repository.access import Principal
from repository.database import Store
from repository.models import AccessControl
from tests.helpers.waiting import eventually

ALICE = Principal("alice")


async def kinds(store: Store, job_id: str) -> list[tuple[str, str]]:
    docs = await store.history.collection.find({"job_id": job_id}, sort=[("seq", 1)]).to_list()
    return [(doc["kind"], doc["by"]) for doc in docs]


async def until_written(writer: HistoryWriter, store: Store, job_id: str, count: int
                        ) -> list[tuple[str, str]]:
    async def step() -> Any:
        await writer.step()
        found = await kinds(store, job_id)
        return found if len(found) >= count else None
    return await eventually(step)


async def test_a_writer_killed_before_writing_loses_nothing(store: Store) -> None:
    # given a writer that opened the stream and saved its position
    first = HistoryWriter(store, lease_seconds=1.0, poll_seconds=0.05, holder="first")
    await first.step()
    # when jobs change and it dies before writing anything (no release, no more steps)
    job = await store.jobs.create(ALICE, job_type="pdf")
    await store.jobs.set_priority(ALICE, job.job_id, 5)
    await store.jobs.cancel(ALICE, job.job_id, "no")
    await first._close()
    # then the next writer, once the lease lapsed, records every change from that position
    second = HistoryWriter(store, lease_seconds=1.0, poll_seconds=0.05, holder="second")
    found = await until_written(second, store, job.job_id, 3)
    assert found == [("CREATED", "alice"), ("PRIORITY_CHANGED", "alice"), ("FAILED", "alice")]
    await second.stop()


async def test_a_replayed_change_is_stored_once(store: Store) -> None:
    writer = HistoryWriter(store, lease_seconds=5.0, poll_seconds=0.05, holder="one")
    await writer.step()
    saved = (await store.history_feed.collection.find_one({"_id": "feed"}))["resume_token"]
    job = await store.jobs.create(ALICE, job_type="pdf")
    await until_written(writer, store, job.job_id, 1)
    # the position goes back (as after a crash between the entries and the save): replayed
    await writer._close()
    await store.history_feed.collection.update_one({"_id": "feed"},
                                                   {"$set": {"resume_token": saved}})
    await store.jobs.set_priority(ALICE, job.job_id, 3)
    found = await until_written(writer, store, job.job_id, 2)
    assert found == [("CREATED", "alice"), ("PRIORITY_CHANGED", "alice")]
    await writer.stop()


async def test_a_deletes_entry_names_the_deleter(store: Store) -> None:
    bob = Principal("bob")
    writer = HistoryWriter(store, lease_seconds=5.0, poll_seconds=0.05, holder="one")
    await writer.step()
    job = await store.jobs.create(ALICE, job_type="pdf")
    await store.jobs.set_access(ALICE, job.job_id, AccessControl(admin_access=["alice", "bob"]))
    await store.jobs.delete(bob, job.job_id)
    found = await until_written(writer, store, job.job_id, 3)
    assert found == [("CREATED", "alice"), ("ACCESS_CHANGED", "alice"), ("DELETED", "bob")]
    await writer.stop()
