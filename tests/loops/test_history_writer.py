"""The history writer loses no acknowledged change: a writer that dies before writing the
entries of changes it had read leaves them to the next one, which resumes from the saved
position; a replay stores each entry once; a delete names who deleted."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from pymongo import monitoring

from graph.loops import feed_writer, history
from graph.loops.history import HistoryWriter
from repository import changes
from repository.access import Principal
from repository.database import Store, make_client
from repository.models import AccessControl
from tests.helpers.waiting import eventually

ALICE = Principal("alice")


async def kinds(store: Store, job_id: str) -> list[tuple[str, str]]:
    docs = await store.history.collection.find({"job_id": job_id}, sort=[("seq", 1)]).to_list()
    return [(doc["kind"], doc["by"]) for doc in docs]


async def admins_by_kind(store: Store, job_id: str) -> list[tuple[str, list[str]]]:
    docs = await store.history.collection.find({"job_id": job_id}, sort=[("seq", 1)]).to_list()
    return [(doc["kind"], doc["admins"]) for doc in docs]


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


async def test_an_updates_entry_carries_its_jobs_admins_and_bookkeeping_reads_none(
        store: Store, mongo_uri: str, database_name: str) -> None:
    """An update's entry carries the job's admins as they are when the writer reads the
    change (as they were last, once the job is gone); a round of bookkeeping alone (log
    appends, heartbeats: no entry) reads no job at all."""
    sent: list[tuple[str, Any]] = []

    class Listener(monitoring.CommandListener):
        def started(self, event: monitoring.CommandStartedEvent) -> None:
            if event.database_name == database_name:
                sent.append((event.command_name, event.command.get(event.command_name)))

        def succeeded(self, event: monitoring.CommandSucceededEvent) -> None: ...
        def failed(self, event: monitoring.CommandFailedEvent) -> None: ...

    client = make_client(mongo_uri, event_listeners=[Listener()])
    try:
        watched = Store(client, database_name)
        writer = HistoryWriter(watched, lease_seconds=30.0, poll_seconds=0.05, holder="one")
        await writer.step()
        job = await store.jobs.create(ALICE, job_type="pdf")
        await store.jobs.set_priority(ALICE, job.job_id, 3)
        await store.jobs.set_access(ALICE, job.job_id,
                                    AccessControl(admin_access=["alice", "bob"]))
        gone = await store.jobs.create(ALICE, job_type="pdf")
        await store.jobs.set_priority(ALICE, gone.job_id, 3)
        await store.jobs.delete(ALICE, gone.job_id)
        assert await until_written(writer, watched, job.job_id, 3)
        assert await until_written(writer, watched, gone.job_id, 3)
        while await writer.step():  # every change read
            pass
        sent.clear()
        for _ in range(5):  # as a log append writes: no entry
            await store.db["jobs"].update_one({"_id": job.job_id}, {
                "$push": {"logs": {"message": "step"}}, "$inc": {"version": 1}})
        written = writer.written
        assert await eventually(writer.step)  # a round that read them (or some)
        while await writer.step():  # and the rest, until a round finds none
            pass
        assert writer.written == written  # no entry
        await writer.stop()
    finally:
        await client.close()

    assert await admins_by_kind(store, job.job_id) == [
        ("CREATED", ["alice"]), ("PRIORITY_CHANGED", ["alice", "bob"]),
        ("ACCESS_CHANGED", ["alice", "bob"])]
    # the job deleted before its update was read: the update's entry has the admins it
    # had when deleted (its followers heard nothing of it with none), as the delete's
    assert await admins_by_kind(store, gone.job_id) == [
        ("CREATED", ["alice"]), ("PRIORITY_CHANGED", ["alice"]), ("DELETED", ["alice"])]
    assert [command for command in sent if command[1] == "jobs"] == [], sent


async def test_a_job_gone_unstamped_gives_its_last_entrys_admins(store: Store) -> None:
    """Deleted with no stamp (by hand, or by the TTL index) before the writer read its
    update: the update's entry takes the admins of the job's newest entry."""
    writer = HistoryWriter(store, lease_seconds=30.0, poll_seconds=0.05, holder="one")
    await writer.step()
    job = await store.jobs.create(ALICE, job_type="pdf")
    await store.jobs.set_access(ALICE, job.job_id, AccessControl(admin_access=["alice", "bob"]))
    assert await until_written(writer, store, job.job_id, 2)
    await store.jobs.set_priority(ALICE, job.job_id, 3)
    await store.jobs.collection.delete_one({"_id": job.job_id})
    assert await until_written(writer, store, job.job_id, 4)
    await writer.stop()
    assert await admins_by_kind(store, job.job_id) == [
        ("CREATED", ["alice"]), ("ACCESS_CHANGED", ["alice", "bob"]),
        ("PRIORITY_CHANGED", ["alice", "bob"]), ("DELETED", [])]


async def test_a_job_created_changed_and_gone_in_one_round_gives_its_admins_then(
        store: Store) -> None:
    """Its creation, changes and deletion read in one round, before any of its entries
    was written: the admins come from the round's own events, in order."""
    writer = HistoryWriter(store, lease_seconds=30.0, poll_seconds=0.05, holder="one")
    await writer.step()
    job = await store.jobs.create(ALICE, job_type="pdf")
    await store.jobs.set_priority(ALICE, job.job_id, 3)
    await store.jobs.set_access(ALICE, job.job_id, AccessControl(admin_access=["alice", "bob"]))
    await store.jobs.set_priority(ALICE, job.job_id, 4)
    await store.jobs.collection.delete_one({"_id": job.job_id})  # unstamped
    assert await until_written(writer, store, job.job_id, 5)
    await writer.stop()
    # (the last known, as for a job still there: its admins when the entry is written)
    assert await admins_by_kind(store, job.job_id) == [
        ("CREATED", ["alice"]), ("PRIORITY_CHANGED", ["alice", "bob"]),
        ("ACCESS_CHANGED", ["alice", "bob"]), ("PRIORITY_CHANGED", ["alice", "bob"]),
        ("DELETED", [])]


async def saved_token(store: Store) -> Any:
    return (await store.history_feed.collection.find_one({"_id": "feed"}))["resume_token"]


async def test_while_changes_flow_the_position_is_saved_at_most_every_save_seconds(
        store: Store, monkeypatch: pytest.MonkeyPatch) -> None:
    """A save a round was a quarter of the writer's CPU; what is written but not saved is
    saved on stop (and would only be written again, once, after a crash)."""
    monkeypatch.setattr(feed_writer, "SAVE_SECONDS", 3600.0)
    writer = HistoryWriter(store, lease_seconds=30.0, poll_seconds=0.05, holder="one")
    await writer.step()
    first = await saved_token(store)
    job = await store.jobs.create(ALICE, job_type="pdf")
    await store.jobs.set_priority(ALICE, job.job_id, 3)
    assert await until_written(writer, store, job.job_id, 2)
    assert await saved_token(store) == first  # written, not saved yet
    await writer.stop()
    assert await saved_token(store) != first
    # and a writer resuming there starts after those changes: nothing is written twice
    await store.history.collection.delete_many({"job_id": job.job_id})
    await store.jobs.set_priority(ALICE, job.job_id, 4)
    second = HistoryWriter(store, lease_seconds=30.0, poll_seconds=0.05, holder="two")
    assert await until_written(second, store, job.job_id, 1) == [("PRIORITY_CHANGED", "alice")]
    await second.stop()


async def test_a_writer_stopped_mid_round_saves_only_what_it_wrote(
        store: Store, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(feed_writer, "SAVE_SECONDS", 3600.0)
    writer = HistoryWriter(store, lease_seconds=30.0, poll_seconds=0.05, holder="one")
    await writer.step()
    job = await store.jobs.create(ALICE, job_type="pdf")
    assert await until_written(writer, store, job.job_id, 1)
    # the next round reads a change and is stopped before it writes its entry
    await store.jobs.set_priority(ALICE, job.job_id, 3)
    read = asyncio.Event()

    async def stalled_write(entries: list[dict[str, Any]]) -> int:
        read.set()
        await asyncio.Event().wait()
        return 0

    monkeypatch.setattr(store.history, "write", stalled_write)
    writer.start()
    await asyncio.wait_for(read.wait(), 30)
    await writer.stop()
    monkeypatch.undo()
    # then the next writer writes it
    second = HistoryWriter(store, lease_seconds=30.0, poll_seconds=0.05, holder="two")
    assert await until_written(second, store, job.job_id, 2) == [
        ("CREATED", "alice"), ("PRIORITY_CHANGED", "alice")]
    await second.stop()


async def test_a_writer_that_stood_down_saves_nothing_on_stop(
        store: Store, monkeypatch: pytest.MonkeyPatch) -> None:
    """What it wrote before standing down (a lost lease, no webhooks for the outbox) is
    not saved later over a newer position."""
    monkeypatch.setattr(feed_writer, "SAVE_SECONDS", 3600.0)
    writer = HistoryWriter(store, lease_seconds=30.0, poll_seconds=0.05, holder="one")
    await writer.step()
    job = await store.jobs.create(ALICE, job_type="pdf")
    assert await until_written(writer, store, job.job_id, 1)
    await writer._close()  # as when it stands down; another writer goes on from here
    newer = {"_data": "newer"}
    await store.history_feed.collection.update_one({"_id": "feed"},
                                                   {"$set": {"resume_token": newer}})
    await writer.stop()
    assert await saved_token(store) == newer


@pytest.mark.slow
async def test_a_backlog_is_written_without_waiting_a_poll_per_reply(
        store: Store, monkeypatch: pytest.MonkeyPatch) -> None:
    """A round reads one reply (at most 101 changes on SecantusDB, fewer when other
    collections' writes sit between them: a tester saw 66 with two such writes a change);
    after one whose changes are older than LAGGING_SECONDS, the next round starts at once,
    however few it read (``test_history_burst.py`` has the rule for big replies, taken
    out of play here)."""
    monkeypatch.setattr(history, "MORE_BEHIND", 10_000)
    # given: a writer whose poll is longer than the test, its stream open
    writer = HistoryWriter(store, lease_seconds=30.0, poll_seconds=3600, holder="one")
    await writer.step()
    # when: more changes than two replies hold are made, then it runs
    for _ in range(5):
        await asyncio.gather(*(store.jobs.create(ALICE, job_type="backlog")
                               for _ in range(50)))
    await asyncio.sleep(changes.LAGGING_SECONDS)  # the backlog is old: the writer is behind
    writer.start()
    try:
        # then: every change has its entry
        async def written() -> bool:
            return await store.history.collection.count_documents(
                {"changes.job_type": "backlog"}) >= 250
        await eventually(written)
    finally:
        await writer.stop()


async def test_under_a_flow_of_changes_a_round_writes_a_poll_of_them(
        store: Store, monkeypatch: pytest.MonkeyPatch) -> None:
    """A round is three round trips whatever it writes: under a steady flow it waits
    ``poll_seconds`` before the next, rather than writing a change or two each."""
    rounds: list[int] = []
    write = store.history.write

    async def counted(entries: list[dict[str, Any]]) -> int:
        if entries:
            rounds.append(len(entries))
        return await write(entries)

    monkeypatch.setattr(store.history, "write", counted)
    writer = HistoryWriter(store, lease_seconds=30.0, poll_seconds=0.25, holder="one")
    await writer.step()
    writer.start()
    try:
        # when: jobs are made one after another
        started = asyncio.get_running_loop().time()
        for _ in range(60):
            await store.jobs.create(ALICE, job_type="flow")

        # then: all are written, a round a poll (a round per change or two without it),
        # counted until the last is written (the flow's last rounds come after it), less
        # the rounds that follow one that may have left more behind (those come at once)
        async def written() -> bool:
            return sum(rounds) >= 60
        await eventually(written)
        elapsed = asyncio.get_running_loop().time() - started
    finally:
        await writer.stop()
    followed_at_once = sum(1 for count in rounds[:-1] if count >= changes.MORE_BEHIND)
    assert len(rounds) - followed_at_once <= elapsed / 0.25 + 2, (rounds, elapsed)
