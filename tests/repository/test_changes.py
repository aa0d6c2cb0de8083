"""Exact per-change states from change events (repository/changes.py)."""

from __future__ import annotations

import copy
from typing import Any

from repository.changes import StateCache, apply_update, to_change


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
