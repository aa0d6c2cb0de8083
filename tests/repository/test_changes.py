"""Exact per-change states from change events (repository/changes.py)."""

from __future__ import annotations

import asyncio
import copy
import json
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from bson import Timestamp

from repository.access import Principal
from repository.changes import (
    CATCH_UP_AWAIT_MS,
    ChangeFeed,
    StateCache,
    apply_update,
    buffered,
    lagging,
    later,
    stream_pipeline,
    to_change,
    token_time,
)
from repository.database import Store
from repository.job_documents import job_from_document
from repository.job_filters import JobFilter
from repository.models import JobStatus


def update_event(object_id: str, fields: dict[str, Any], *, looked_up: dict[str, Any] | None,
                 removed: list[str] | None = None,
                 truncated: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    return {"operationType": "update", "ns": {"db": "d", "coll": "jobs"},
            "documentKey": {"_id": object_id}, "fullDocument": looked_up,
            "updateDescription": {"updatedFields": fields, "removedFields": removed or [],
                                  "truncatedArrays": truncated or []}}


def test_apply_update_handles_dotted_paths_arrays_and_removals() -> None:
    # given a document and a description as a real mongod writes them
    document = {"_id": "j", "progress": {"step": "a", "percent": 1}, "logs": [1, 2, 3, 4],
                "error": {"code": "E"}, "version": 3}
    before = copy.deepcopy(document)
    description = {"updatedFields": {"progress.percent": 50, "logs.1": 20, "logs.2": 30,
                                     "new.nested": True, "version": 4},
                   "removedFields": ["error"],
                   "truncatedArrays": [{"field": "logs", "newSize": 3}]}
    # when
    after = apply_update(document, description)
    # then the change is applied exactly, and the original is untouched (copy on write)
    assert after == {"_id": "j", "progress": {"step": "a", "percent": 50}, "logs": [1, 20, 30],
                     "new": {"nested": True}, "version": 4}
    assert document == before


def test_apply_update_appends_to_an_array_by_index() -> None:
    after = apply_update({"logs": [{"seq": 1}]}, {"updatedFields": {"logs.1": {"seq": 2}}})
    assert after == {"logs": [{"seq": 1}, {"seq": 2}]}


def test_to_change_is_exact_from_the_previous_state_even_when_the_lookup_moved_on() -> None:
    cache = StateCache()
    insert = {"operationType": "insert", "ns": {"coll": "jobs"}, "documentKey": {"_id": "j"},
              "fullDocument": {"_id": "j", "status": "PENDING", "version": 0}}
    latest = {"_id": "j", "status": "COMPLETED", "version": 2}
    first = to_change(insert, cache)
    # the lookup already shows version 2, but the event is version 1
    second = to_change(update_event("j", {"status": "PROCESSING", "version": 1},
                                    looked_up=latest), cache)
    assert first is not None and second is not None
    assert second.exact and second.document == {"_id": "j", "status": "PROCESSING",
                                                 "version": 1}
    assert second.previous == {"_id": "j", "status": "PENDING", "version": 0}


def test_to_change_without_a_matching_previous_state_says_it_is_not_exact() -> None:
    cache = StateCache()
    # given a stale cached state (version 0) and an event for version 5
    cache.put(("jobs", "j"), {"_id": "j", "version": 0})
    latest = {"_id": "j", "status": "FAILED", "version": 6}
    change = to_change(update_event("j", {"status": "COMPLETED", "version": 5},
                                    looked_up=latest), cache)
    # then the lookup is used, flagged as a later state
    assert change is not None and not change.exact
    assert change.document == latest


def test_state_cache_is_bounded() -> None:
    cache = StateCache(size=2)
    for n in range(5):
        cache.put(("jobs", n), {"n": n})
    assert len(cache.states) == 2 and cache.get(("jobs", 4)) == {"n": 4}
    assert cache.get(("jobs", 0)) is None


async def test_the_feed_carries_and_keeps_no_log_entries(store: Store) -> None:
    # given a job with a log, and a feed that knows nothing of it yet
    worker = Principal("w", roles=frozenset({"worker"}))
    job = await store.jobs.create(Principal("alice"), job_type="t")
    await store.jobs.claim(worker, ["t"])
    await store.jobs.append_logs(worker, job.job_id, [("info", "before the feed")])
    feed = ChangeFeed(store.db)
    await feed.open()
    try:
        # when entries are appended: the first change is looked up (a state never seen),
        # the next one derived from it
        changes = feed.changes()
        seen = []
        for message in ("one", "two"):
            await store.jobs.append_logs(worker, job.job_id, [("info", message)])
            seen.append(await asyncio.wait_for(anext(changes), 30))
        await changes.aclose()
    finally:
        await feed.close()
    # then no state the feed hands out or keeps holds a log entry
    assert [(c.document["log_seq"], c.exact) for c in seen] == [(2, True), (3, True)]
    assert all("logs" not in change.document for change in seen)
    assert all("logs" not in state for state in feed.cache.states.values())
    # and a job decoded from them says its log was left out, with log_seq to read it by
    model = seen[-1].model(job_from_document)
    assert (model.logs_loaded, model.logs, model.log_seq) == (False, [], 3)
    assert [e.message for e in await store.jobs.log_window(model, 2)] == ["one", "two"]


def test_the_stream_pipeline_leaves_out_every_path_of_the_log() -> None:
    stages = stream_pipeline()
    assert {"$unset": ["fullDocument.logs"]} in stages
    # updatedFields are filtered by their first path segment: logs, logs.999
    assert '"logs"' in json.dumps(stages[-1]) and "$split" in json.dumps(stages[-1])


async def test_a_deletes_history_stamp_is_no_change_for_subscribers(store: Store) -> None:
    """``deleteJob`` first stamps who deletes (for the history), then deletes: the stamp
    bumps no version, and a hub that read it after the delete used to hand some
    subscribers an UPDATED of the old version before the DELETED (seen in the shared
    subscriptions' differential test). The feed gives only the delete."""
    job = await store.jobs.create(Principal("alice"), job_type="t")
    feed = ChangeFeed(store.db)
    await feed.open()
    try:
        changes = feed.changes()
        await store.jobs.delete(Principal("alice"), job.job_id)
        first = await asyncio.wait_for(anext(changes), 30)
        await changes.aclose()
    finally:
        await feed.close()
    assert (first.operation, first.object_id) == ("delete", job.job_id)


async def test_job_histories_are_read_only_while_someone_follows_one(
        store: Store, monkeypatch: pytest.MonkeyPatch) -> None:
    """An entry is written for every change of a job; a process whose subscribers follow no
    history must not decode them all. Following one opens the stream again from the last
    change handed on, so none after it is missed; unfollowed, it lingers, then goes."""
    alice, entries = Principal("alice"), store.db["job_history"]
    feed = ChangeFeed(store.db)
    await feed.open()
    changes = feed.changes()

    async def following() -> list[tuple[str, str]]:
        """What comes of an entry then a job written now."""
        await entries.insert_one({"_id": uuid.uuid4().hex, "job_id": "j"})
        job = await store.jobs.create(alice, job_type="t")
        seen = []
        while not seen or seen[-1][1] != job.job_id:
            change = await asyncio.wait_for(anext(changes), 30)
            seen.append((change.collection, change.object_id))
        return [(collection, "job" if key == job.job_id else "entry") for collection, key in seen]

    try:
        assert "job_history" not in feed.watched
        assert await following() == [("jobs", "job")]
        await entries.insert_one({"_id": uuid.uuid4().hex, "job_id": "j"})  # after the last
        feed.want("job_history", True)                                       # handed on
        assert await following() == [("job_history", "entry")] * 2 + [("jobs", "job")]
        assert "job_history" in feed.watched
        feed.want("job_history", False)  # lingers, so that followers coming and going...
        assert await following() == [("job_history", "entry"), ("jobs", "job")]
        monkeypatch.setattr("repository.changes.LINGER_SECONDS", 0.0)
        feed.want("job_history", False)  # ...do not reopen the stream each time
        assert await following() == [("jobs", "job")]
        assert "job_history" not in feed.watched
    finally:
        await changes.aclose()
        await feed.close()


@pytest.mark.parametrize(("changed", "status_filter", "type_filter"), [
    (frozenset({"progress", "updated_at", "version"}), False, False),
    (frozenset({"status", "version"}), True, False),
    (frozenset({"job_type"}), False, True),
    (None, True, True),  # a replace: anything may have changed
])
def test_a_filter_may_have_matched_a_job_only_through_a_field_it_reads(
        changed: frozenset[str] | None, status_filter: bool, type_filter: bool) -> None:
    assert JobFilter(status=JobStatus.PENDING).may_have_matched(changed) is status_filter
    assert JobFilter(job_type="pdf").may_have_matched(changed) is type_filter


def test_an_update_names_the_top_level_fields_it_wrote() -> None:
    event = update_event("j", {"progress.percent": 5, "version": 2}, looked_up=None,
                         removed=["error"], truncated=[{"field": "former_workers",
                                                        "newSize": 0}])
    change = to_change(event, StateCache(), {"_id": "j", "version": 2})
    assert change is not None
    assert change.changed == {"progress", "version", "error", "former_workers"}
    assert change.previous is None  # this process never saw it before


def test_a_change_older_than_a_second_is_lagging_whatever_its_time_zone() -> None:
    """A quiet stream follows such a reply at once instead of waiting a gulp."""
    now = datetime.now(UTC)
    assert lagging(now - timedelta(seconds=5))
    assert lagging((now - timedelta(seconds=5)).replace(tzinfo=None))  # pymongo's naive UTC
    assert not lagging(now)
    assert not lagging(None)  # no wall time told: nothing to go by


async def test_the_pymongo_internals_the_quiet_hub_reads_are_there(store: Store) -> None:
    """pymongo has no public way to say what a change stream holds unread, the cluster time
    its client was told, or one ``getMore``'s wait (nor to read its position without a
    deep copy, which only costs CPU). Without them the hub degrades quietly
    (a getMore per change, first subscribers sent older changes as news, or let in only
    after the server's 1 s wait), so an upgrade that moves them must fail here."""
    feed = ChangeFeed(store.db)
    await feed.open()
    try:
        await store.jobs.create(Principal("alice"), job_type="internals")
        assert isinstance(feed.seen(), Timestamp)
        assert buffered(feed._stream) is not None
        assert feed._stream._resume_token == feed._stream.resume_token  # (``position``)
        cursor = feed._stream._cursor
        usual = cursor._max_await_time_ms
        seen_waits = []
        send = cursor._send_message

        async def spy(operation: Any) -> Any:
            seen_waits.append(operation.max_await_time_ms)
            return await send(operation)

        cursor._send_message = spy
        event = await feed._catch_up()
        assert event is not None and event["operationType"] == "insert"
        assert seen_waits == [CATCH_UP_AWAIT_MS]  # the getMore asked with the short wait
        assert cursor._max_await_time_ms == usual  # and the stream's own wait restored
    finally:
        await feed.close()


def test_a_resume_token_tells_its_cluster_time_where_its_server_says() -> None:
    """A first subscriber of a quiet process waits for the stream to reach the database's
    time; an empty reply's token, moved past unwatched writes, may say it has."""
    # an insert event's token as MongoDB 7.0 wrote it, with its clusterTime (t, i)
    event = ("8267C867A2000000192B042C0100296E5A1004D3284E04D8914467A2160201812E4C4C463C"
             "6F7065726174696F6E54797065003C696E736572740046646F63756D656E744B65790046645F"
             "6964006467C867A2FB1CBCD579F4E4DE000004")
    assert token_time({"_data": event}) == Timestamp(1741186978, 25)
    assert token_time({"_data": "8267C867A3000000012B0429296E1404"}) == Timestamp(
        1741186979, 1)  # a high-water mark (an empty reply's)
    # SecantusDB's: a BSON document, ``t`` the time of the oplog entry its scan stopped at
    secantus = {"_data": "1b0000001273000100000000000000117400050000006e2f1c6b00"}
    assert token_time(secantus) == Timestamp(0x6B1C2F6E, 5)
    for unknown in ({"_data": "1b00000012730001000000000000001174"}, {"_data": "82zz"},
                    {"_data": "0c0000001074000100000000"}, {"_data": 7}, None, {}):
        assert token_time(unknown) is None
    assert later(None, Timestamp(1, 2)) == Timestamp(1, 2)
    assert later(Timestamp(3, 1), Timestamp(1, 2)) == Timestamp(3, 1)
    assert later(Timestamp(3, 1), None) == Timestamp(3, 1)


async def test_who_holds_back_changes_stays_while_the_stream_is_away(store: Store) -> None:
    """When the stream closes or fails, a subscriber waiting to be let in goes on (it must
    not hang while the database is away), but one that only holds back its changes until
    the stream catches up holds them until the resumed stream does: a tester saw the
    revoked job's earlier states sent after the database was down 7.5 s."""
    feed = ChangeFeed(store.db)
    waiting = feed.join(None, 3600.0)
    holding = feed.join(None, 3600.0, holds=True)
    await feed.close()
    assert waiting.admitted.done() and not waiting.caught
    assert not holding.admitted.done() and feed._joiners == [holding]
    holding.admitted.cancel()  # (its subscriber gone)
