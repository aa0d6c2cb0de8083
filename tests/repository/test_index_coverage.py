"""Every list query the API can issue is served by a declared index, so a real MongoDB
answers it without a blocking sort at any size.

The queries are not written out here: every filter combination, for every kind of
caller and in both paging directions, goes through the repositories (the code the
resolvers call), and the commands they send are captured from the driver. A query is
served when some declared index starts with equality fields of it (in any order; ``$in``
counts, as MongoDB merges the sorted runs; as many as lead the index) followed by its
sort keys in order (or all reversed), and then holds every other field it filters on that
is not a sort key (a range, ``$ne``, ``$nin``, ``$not``, or an equality the index does not
lead with: MongoDB's equality-sort-range rule), so those are decided from the index keys
too and nothing is sorted in memory. A contained ``$or`` (the worker's read filter, a
cursor's position) needs this for each branch. A query on ``_id`` reads one document at
most, by the unique ``_id`` index.
"""

from __future__ import annotations

import itertools
from collections.abc import AsyncIterator, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from pymongo import IndexModel, monitoring

from repository import batches, documentation_jobs, jobs, queues, workers
from repository.access import ANONYMOUS, Principal
from repository.batches import BatchFilter, JobSpec
from repository.database import Store, make_client
from repository.documentation_job_filters import (
    DocumentationJobFilter,
    DocumentationJobOrderField,
    documentation_job_order,
)
from repository.job_filters import JobFilter, JobOrderField, job_order
from repository.models import DocumentationJobStatus, JobStatus, utcnow
from repository.pagination import PageRequest, encode_cursor
from repository.stats import Bucket, StatsWindow, documentation_job_stats, job_stats

CALLERS = {
    "admin": Principal("root", frozenset({"admin"})),
    "anonymous": ANONYMOUS,
    "user": Principal("alice"),
    "worker": Principal("worker-1", frozenset({"worker"})),
}
CURSOR = encode_cursor(datetime(2026, 1, 1, tzinfo=UTC), "some-id")
PAGES = [PageRequest(first=5), PageRequest(first=5, after=CURSOR), PageRequest(last=5),
         PageRequest(last=5, before=CURSOR)]
WHEN = datetime(2025, 6, 1, tzinfo=UTC)


@dataclass
class Captured(monitoring.CommandListener):
    """(collection, filter, sort) of every read and count sent to one database."""

    database: str
    queries: list[tuple[str, dict[str, Any], list[tuple[str, int]]]] = field(
        default_factory=list)

    def started(self, event: monitoring.CommandStartedEvent) -> None:
        if event.database_name != self.database:
            return
        command = event.command
        name = event.command_name
        if name == "find":
            self.queries.append((command["find"], command.get("filter", {}),
                                 list(command.get("sort", {}).items())))
        elif name == "aggregate" and command.get("pipeline"):
            match = command["pipeline"][0].get("$match")
            if match is not None:
                self.queries.append((command["aggregate"], match, []))
        elif name == "findAndModify":
            self.queries.append((command["findAndModify"], command.get("query", {}),
                                 list(command.get("sort", {}).items())))
        elif name in ("update", "delete"):
            for statement in command.get("updates" if name == "update" else "deletes", []):
                self.queries.append((command[name], statement.get("q", {}), []))

    def succeeded(self, event: monitoring.CommandSucceededEvent) -> None:
        pass

    def failed(self, event: monitoring.CommandFailedEvent) -> None:
        pass


@pytest.fixture
async def captured(mongo_uri: str, database_name: str) -> AsyncIterator[tuple[Store, Captured]]:
    listener = Captured(database_name)
    client = make_client(mongo_uri, event_listeners=[listener])
    store = Store(client, database_name)
    yield store, listener
    await client.drop_database(database_name)
    await client.close()


FILTER_OPERATORS = {"$gt", "$gte", "$lt", "$lte", "$not", "$ne", "$nin"}
"""Conditions that are not equalities: the index must hold their field after its sort."""


def conditions(query: dict[str, Any]) -> list[tuple[frozenset[str], frozenset[str]]]:
    """(equality fields, other filtered fields) of each way ``query`` can match (one per
    ``$or`` branch)."""
    ways: list[tuple[frozenset[str], frozenset[str]]] = [(frozenset(), frozenset())]
    for key, value in query.items():
        if key == "$and":
            parts = [conditions(clause) for clause in value]
        elif key == "$or":
            parts = [[branch for clause in value for branch in conditions(clause)]]
        elif key.startswith("$"):
            raise AssertionError(f"unexpected operator {key} in {query}")
        elif isinstance(value, dict) and any(op.startswith("$") for op in value):
            if set(value) <= {"$eq", "$in"}:
                parts = [[(frozenset({key}), frozenset())]]
            elif set(value) <= FILTER_OPERATORS:
                parts = [[(frozenset(), frozenset({key}))]]
            else:
                raise AssertionError(f"{key} is neither an equality nor a filter: {query}")
        else:
            parts = [[(frozenset({key}), frozenset())]]
        for options in parts:
            ways = [(equal | more_equal, ranges | more_ranges)
                    for equal, ranges in ways for more_equal, more_ranges in options]
    return ways


def served(equal: frozenset[str], sort: list[tuple[str, int]],
           indexes: Iterable[IndexModel], ranges: frozenset[str] = frozenset()) -> bool:
    """Equality fields first (all those the index leads with), then the sort keys, then
    any other filtered field (MongoDB's equality-sort-range rule); a range over a sort key
    is read in order."""
    sorted_by = {name for name, _ in sort}
    for index in indexes:
        keys = list(index.document["key"].items())
        lead = 0
        while lead < len(keys) and keys[lead][0] in equal and keys[lead][0] not in sorted_by:
            lead += 1
        if len(keys) < lead + len(sort):
            continue
        following = keys[lead:lead + len(sort)]
        if [name for name, _ in following] != [name for name, _ in sort]:
            continue
        leading = {name for name, _ in keys[:lead]}
        rest = (equal - leading) | (ranges - sorted_by)
        if not rest <= {name for name, _ in keys[lead + len(sort):]}:
            continue
        same = all(direction == wanted for (_, direction), (_, wanted) in zip(
            following, sort, strict=True))
        reversed_ = all(direction == -wanted for (_, direction), (_, wanted) in zip(
            following, sort, strict=True))
        if same or reversed_:
            return True
    return False


def unserved(queries: list[tuple[str, dict[str, Any], list[tuple[str, int]]]],
             indexes: dict[str, list[IndexModel]]) -> list[str]:
    missing = []
    for collection, query, sort in queries:
        declared = [*indexes[collection], ID_INDEX]
        for equal, ranges in conditions(query):
            if "_id" in equal:  # one document at most, by the unique _id index
                continue
            if not served(equal, sort, declared, ranges - equal):
                missing.append(f"{collection}: equal {sorted(equal)} sort {sort} "
                               f"range {sorted(ranges)} ({query})")
    return missing


def subsets(options: dict[str, Any]) -> Iterable[dict[str, Any]]:
    for size in range(len(options) + 1):
        for names in itertools.combinations(options, size):
            yield {name: options[name] for name in names}


RANGES = [{}, {"created_after": WHEN}, {"created_before": WHEN},
          {"created_after": WHEN, "created_before": datetime(2027, 1, 1, tzinfo=UTC)}]
INDEXES = {"jobs": jobs.INDEXES, "batches": batches.INDEXES,
           "documentation_jobs": documentation_jobs.INDEXES, "queues": queues.INDEXES,
           "workers": workers.INDEXES}
ID_INDEX = IndexModel([("_id", 1)], name="_id_")
"""Every collection's own."""


async def test_every_job_list_and_count_is_served_by_an_index(
        captured: tuple[Store, Captured]) -> None:
    # given
    store, listener = captured
    equalities = {"status": JobStatus.PENDING, "job_type": "pdf", "batch_id": "batch-1"}

    # when: every filter, caller and paging direction, as the API asks for them
    for caller in CALLERS.values():
        for equal, created in itertools.product(subsets(equalities), RANGES):
            job_filter = JobFilter(**equal, **created)
            for page in PAGES:
                await store.jobs.list(caller, job_filter, page)
            await store.jobs.count(caller, job_filter)
    await store.jobs.claim(CALLERS["worker"], ["pdf", "ocr"])
    await store.jobs.claim(CALLERS["worker"])

    # then
    assert len(listener.queries) > 4 * 8 * 4 * 5
    assert unserved(listener.queries, INDEXES) == []


JOB_CONDITIONS: dict[str, dict[str, Any]] = {
    "statuses": {"statuses": (JobStatus.COMPLETED, JobStatus.FAILED)},
    "status": {"status": JobStatus.FAILED},
    "job_types": {"job_types": ("pdf", "ocr")},
    "job_type": {"job_type": "pdf"},
    "batch": {"batch_id": "batch-1"},
    "in_batch": {"has_batch": True},
    "no_batch": {"has_batch": False},
    "owner": {"owner": "alice"},
    "claimed_by": {"claimed_by": "worker-1"},
    "error_code": {"error_code": "CANCELLED"},
    "created": {"created_after": WHEN, "created_before": WHEN + timedelta(days=9)},
    "updated": {"updated_after": WHEN},
    "finished": {"finished_before": WHEN},
    "priority": {"min_priority": -5, "max_priority": 5},
}


def job_filters() -> Iterable[JobFilter]:
    """No condition, each alone, each pair that may go together, and all at once."""
    yield JobFilter()
    names = list(JOB_CONDITIONS)
    for first, second in itertools.combinations_with_replacement(names, 2):
        combined = {**JOB_CONDITIONS[first], **JOB_CONDITIONS[second]}
        try:
            yield JobFilter(**combined).check()
        except Exception:  # a contradiction, refused before any query
            continue
    yield JobFilter(**{key: value for name, condition in JOB_CONDITIONS.items()
                       if name not in ("status", "job_type", "no_batch", "in_batch")
                       for key, value in condition.items()})


@pytest.mark.slow
async def test_every_job_filter_in_every_order_is_served_by_an_index(
        captured: tuple[Store, Captured]) -> None:
    # given every order, with a cursor of its own
    store, listener = captured
    orders = [job_order(by, descending) for by in JobOrderField for descending in (True, False)]
    filters = list(job_filters())

    # when: every caller pages and counts each filter in each order
    for caller in CALLERS.values():
        for job_filter in filters:
            await store.jobs.count(caller, job_filter)
            for order in orders:
                cursor = order.encode({"_id": "some-id", "created_at": WHEN,
                                       "updated_at": WHEN, "completed_at": WHEN, "priority": 3})
                for page in (PageRequest(first=5, after=cursor),
                             PageRequest(last=5, before=cursor)):
                    await store.jobs.list(caller, job_filter, page, order)
                if order.only:
                    await store.jobs.count(caller, job_filter, order)

    # then
    assert len(filters) > 90
    assert len(listener.queries) > 4 * 90 * 17
    assert unserved(listener.queries, INDEXES) == []


async def test_every_batch_and_documentation_job_list_is_served_by_an_index(
        captured: tuple[Store, Captured]) -> None:
    # given
    store, listener = captured
    documentation = {"status": DocumentationJobStatus.RUNNING, "repository_name": "repo"}

    # when
    for caller in CALLERS.values():
        for created in RANGES:
            for equal in subsets({"active": True}):
                batch_filter = BatchFilter(**equal, **created)
                for page in PAGES:
                    await store.batches.list(caller, batch_filter, page)
                await store.batches.count(caller, batch_filter)
            for equal in subsets(documentation):
                doc_filter = DocumentationJobFilter(**equal, **created)
                for page in PAGES:
                    await store.documentation_jobs.list(caller, doc_filter, page)
                await store.documentation_jobs.count(caller, doc_filter)

    # then
    assert {collection for collection, _, _ in listener.queries} == {
        "batches", "documentation_jobs"}
    assert unserved(listener.queries, INDEXES) == []


DOCUMENTATION_CONDITIONS: dict[str, dict[str, Any]] = {
    "status": {"status": DocumentationJobStatus.RUNNING},
    "statuses": {"statuses": (DocumentationJobStatus.COMPLETED, DocumentationJobStatus.FAILED)},
    "repository": {"repository_name": "repo"},
    "repositories": {"repository_names": ("repo", "other")},
    "created": {"created_after": WHEN},
    "started": {"started_after": WHEN, "started_before": WHEN + timedelta(days=1)},
    "ended": {"ended_before": WHEN},
}


async def test_every_documentation_job_filter_in_every_order_is_served_by_an_index(
        captured: tuple[Store, Captured]) -> None:
    # given
    store, listener = captured
    orders = [documentation_job_order(by, descending)
              for by in DocumentationJobOrderField for descending in (True, False)]
    filters = [DocumentationJobFilter()]
    for first, second in itertools.combinations_with_replacement(DOCUMENTATION_CONDITIONS, 2):
        try:
            filters.append(DocumentationJobFilter(**DOCUMENTATION_CONDITIONS[first],
                                                  **DOCUMENTATION_CONDITIONS[second]).check())
        except Exception:  # a contradiction (or the same field twice), refused
            continue

    # when
    for caller in CALLERS.values():
        for doc_filter in filters:
            await store.documentation_jobs.count(caller, doc_filter)
            for order in orders:
                cursor = order.encode({"_id": "x", "created_at": WHEN, "updated_at": WHEN,
                                       "started_at": WHEN, "ended_at": WHEN})
                await store.documentation_jobs.list(caller, doc_filter,
                                                    PageRequest(first=5, after=cursor), order)
                if order.only:
                    await store.documentation_jobs.count(caller, doc_filter, order)

    # then
    assert len(filters) > 15
    assert unserved(listener.queries, INDEXES) == []


async def test_every_statistic_is_served_by_an_index(
        captured: tuple[Store, Captured]) -> None:
    # given
    store, listener = captured
    window = StatsWindow(WHEN, WHEN + timedelta(hours=6), Bucket.HOUR)

    # when: each caller's statistics, over each job filter and documentation job filter
    for caller in CALLERS.values():
        for job_filter in job_filters():
            await job_stats(store.jobs.collection, caller, job_filter, window)
        for name in DOCUMENTATION_CONDITIONS:
            doc_filter = DocumentationJobFilter(**DOCUMENTATION_CONDITIONS[name])
            await documentation_job_stats(store.documentation_jobs.collection, caller,
                                          doc_filter)

    # then
    assert {collection for collection, _, _ in listener.queries} == {
        "jobs", "documentation_jobs"}
    assert len(listener.queries) > 4 * 90 * 5
    assert unserved(listener.queries, INDEXES) == []


async def test_documentation_job_claims_and_lease_sweeps_are_served_by_an_index(
        captured: tuple[Store, Captured]) -> None:
    # given
    store, listener = captured

    # when: a worker claims, and the reaper looks for lapsed leases
    await store.documentation_jobs.claim(CALLERS["worker"])
    await store.documentation_jobs.reap_expired_leases()

    # then
    assert len(listener.queries) == 2
    assert unserved(listener.queries, INDEXES) == []


def test_a_range_outside_the_index_is_noticed() -> None:
    # given the reaper's query, with only an index on the status
    query = {"status": "RUNNING", "lease_expires_at": {"$lt": WHEN}}
    by_status = [IndexModel([("status", 1), ("created_at", -1)], name="status_only")]

    # when / then
    assert unserved([("documentation_jobs", query, [])], {"documentation_jobs": by_status})
    assert unserved([("documentation_jobs", query, [])], INDEXES) == []


def test_a_missing_index_is_noticed() -> None:
    # given: the worker's read filter and a status, with only the reader's index declared
    query = {"status": "PENDING", "$or": [{"readers": {"$in": ["*", "w"]}},
                                          {"claimed_by": "w"}]}
    sort = [("created_at", -1), ("_id", -1)]
    only_readers = [index for index in jobs.INDEXES
                    if index.document["name"] == "readers_status_created"]

    # when
    missing = unserved([("jobs", query, sort)], {"jobs": only_readers})

    # then
    assert len(missing) == 1 and "claimed_by" in missing[0]


async def test_every_queue_claim_reaper_and_batch_operation_is_served_by_an_index(
        captured: tuple[Store, Captured]) -> None:
    # given paused and limited queues, due, delayed and held jobs, and a batch
    store, listener = captured
    await store.ensure_indexes()
    admin, worker, alice = CALLERS["admin"], CALLERS["worker"], CALLERS["user"]
    await store.queues.pause(admin, "paused")
    await store.queues.set_concurrency(admin, "limited", 1)
    for job_type in ("pdf", "limited", "limited", "paused"):
        await store.jobs.create(alice, job_type=job_type, priority=3, timeout_seconds=60)
    delayed = await store.jobs.create(alice, job_type="pdf",
                                      run_at=utcnow() + timedelta(days=30))
    batch = await store.batches.create(alice, batch_name="b", jobs=[JobSpec("pdf")] * 2)
    listener.queries.clear()

    # when: every claim shape, the reaper, and each new write and read
    await store.batches.set_active(alice, batch.batch_id, False)
    for job_types in (["limited"], ["pdf", "limited"], ["pdf", "paused"], None, None,
                      ["paused"]):
        await store.jobs.claim(worker, job_types)
    await store.jobs.collection.update_many({"status": "PROCESSING"},
                                            {"$set": {"timeout_at": utcnow()}})
    await store.jobs.reap_expired_leases()
    await store.jobs.set_priority(alice, delayed.job_id, 7)
    await store.jobs.cancel(alice, delayed.job_id, "not needed")
    await store.jobs.retry(alice, delayed.job_id, utcnow())
    await store.batches.set_active(alice, batch.batch_id, True)
    await store.batches.add_jobs(alice, batch.batch_id, [JobSpec("pdf")])
    await store.batches.cancel(alice, batch.batch_id, "stop")
    await store.batches.retry_failed(alice, batch.batch_id)
    await store.batches.delete(alice, batch.batch_id)
    await store.queues.list(admin)
    await store.queues.list(worker, ["pdf", "limited"])
    await store.workers.list(admin, seen_within=600)
    await store.workers.list(worker, seen_within=600, job_type="pdf")

    # then
    collections = {collection for collection, _, _ in listener.queries}
    assert {"jobs", "batches", "queues", "workers"} <= collections
    assert unserved(listener.queries, INDEXES) == []
