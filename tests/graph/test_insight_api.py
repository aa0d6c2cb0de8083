"""Filters, orders and statistics of jobs and documentation jobs through the public API,
against a hand-counted fixture, for every kind of caller.

The fixture's jobs are stored directly (setup, not the thing under test), with known
instants, owners, readers, claims, errors and priorities. ``MATCH`` says by hand which
jobs each filter selects and ``VISIBLE`` which jobs each caller may read; a caller must
get exactly their intersection, in lists, counts and statistics.
"""

from __future__ import annotations

import asyncio
import base64
import json
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from repository.database import Store
from repository.documentation_jobs import documentation_job_to_document
from repository.jobs import job_to_document
from repository.models import (
    AccessControl,
    AccessVisibility,
    DocumentationJob,
    DocumentationJobStatus,
    JobStatistics,
    JobStatus,
    LLMConfig,
    SecretaryJob,
)
from tests.helpers.graphql import Api, Caller

T0 = datetime(2026, 1, 1, 12, 0, tzinfo=UTC)


def at(minutes: float) -> datetime:
    return T0 + timedelta(minutes=minutes)


CALLERS = {
    "admin": Caller("root", ("admin",)),
    "owner": Caller("alice"),
    "reader": Caller("rita"),
    "worker": Caller("worker-1", ("worker",)),
    "anonymous": Caller(),
}
PRIVATE, PUBLIC = AccessVisibility.PRIVATE, AccessVisibility.PUBLIC
P, R, C, F = JobStatus.PENDING, JobStatus.PROCESSING, JobStatus.COMPLETED, JobStatus.FAILED

# id: (type, status, owner, visibility, read_access, claimed_by, priority, batch, error code,
#      created, started, finished)  (minutes after T0)
JOBS: dict[str, tuple[Any, ...]] = {
    "j1": ("pdf", P, "alice", PRIVATE, [], None, 5, None, None, 0, None, None),
    "j2": ("pdf", R, "alice", PRIVATE, [], "worker-1", 0, None, None, 1, 2, None),
    "j3": ("pdf", C, "alice", PUBLIC, [], "worker-1", 0, None, None, 2, 3, 4),
    "j4": ("ocr", C, "alice", PRIVATE, ["rita"], "worker-2", 2, "b1", None, 3, 4, 6),
    "j5": ("ocr", F, "alice", PRIVATE, ["rita"], None, 0, "b1", "CANCELLED", 4, None, 5),
    "j6": ("ocr", F, "bob", PUBLIC, [], "worker-1", -3, None, "BOOM", 5, 6, 7),
    "j7": ("mail", P, "bob", PRIVATE, [], None, 10, None, None, 6, None, None),
    "j8": ("mail", C, "bob", PRIVATE, ["rita"], "worker-2", 0, None, None, 7, 8, 13),
}
VISIBLE = {
    "admin": set(JOBS),
    "owner": {"j1", "j2", "j3", "j4", "j5", "j6"},  # her own (admin of them), public j6
    "reader": {"j3", "j4", "j5", "j6", "j8"},  # public j3, j6; read access to j4, j5, j8
    "worker": {"j2", "j3", "j6"},  # public j3, j6; holds j2 (and j3, j6)
    "anonymous": {"j3", "j6"},
}
MATCH: list[tuple[dict[str, Any], set[str]]] = [
    ({}, set(JOBS)),
    ({"statuses": ["COMPLETED", "FAILED"]}, {"j3", "j4", "j5", "j6", "j8"}),
    ({"status": "PENDING"}, {"j1", "j7"}),
    ({"jobTypes": ["ocr", "mail"]}, {"j4", "j5", "j6", "j7", "j8"}),
    ({"owner": "bob"}, {"j6", "j7", "j8"}),
    ({"claimedBy": "worker-1"}, {"j2", "j3", "j6"}),
    ({"errorCode": "CANCELLED"}, {"j5"}),
    ({"hasBatch": True}, {"j4", "j5"}),
    ({"hasBatch": False, "statuses": ["COMPLETED"]}, {"j3", "j8"}),
    ({"minPriority": 1}, {"j1", "j4", "j7"}),
    ({"minPriority": -5, "maxPriority": 0}, {"j2", "j3", "j5", "j6", "j8"}),
    ({"finishedAfter": at(5).isoformat()}, {"j4", "j6", "j8"}),
    ({"finishedAfter": at(4).isoformat(), "finishedBefore": at(7).isoformat()},
     {"j4", "j5"}),
    ({"updatedBefore": at(4.5).isoformat()}, {"j1", "j2", "j3"}),
    ({"createdAfter": at(2).isoformat(), "jobTypes": ["ocr"], "owner": "alice"},
     {"j4", "j5"}),
]

LIST = """query List($filter: JobFilterInput, $orderBy: JobOrderInput, $first: Int,
                     $after: String) {
  jobs(filter: $filter, orderBy: $orderBy, first: $first, after: $after) {
    totalCount edges { node { jobId } } pageInfo { hasNextPage endCursor } } }"""
STATS = """query Stats($filter: JobFilterInput, $window: StatsWindowInput) {
  jobStats(filter: $filter, window: $window) {
    byStatus { key count } byJobType { key count }
    throughput { start created completed failed } durations { count p50 p95 } } }"""


def stored(job_id: str) -> dict[str, Any]:
    (job_type, status, owner, visibility, readers, claimed_by, priority, batch, code,
     created, started, finished) = JOBS[job_id]
    admins = [owner] if owner else []
    job = SecretaryJob(
        job_id=job_id, job_type=job_type, status=status, owner=owner, batch_id=batch,
        access_control=AccessControl(visibility=visibility, read_access=list(readers),
                                     admin_access=admins),
        claimed_by=claimed_by, priority=priority, created_at=at(created),
        updated_at=at(max(m for m in (created, started, finished) if m is not None)),
        processing_started_at=None if started is None else at(started),
        completed_at=None if finished is None else at(finished),
        error=None if code is None else {"code": code, "message": "x", "details": None})
    return job_to_document(job)


@pytest.fixture
async def seeded(store: Store) -> Store:
    await store.jobs.collection.insert_many([stored(job_id) for job_id in JOBS])
    return store


async def ids(api: Api, caller: Caller, job_filter: dict[str, Any],
              order: dict[str, str] | None = None) -> tuple[list[str], int]:
    data = await api.data(LIST, {"filter": job_filter, "orderBy": order, "first": 100},
                          as_=caller)
    page = data["jobs"]
    return [edge["node"]["jobId"] for edge in page["edges"]], page["totalCount"]


# -- filters ------------------------------------------------------------------------------


@pytest.mark.parametrize("caller", CALLERS)
async def test_each_filter_lists_and_counts_what_the_caller_may_read(
        api: Api, seeded: Store, caller: str) -> None:
    for job_filter, matching in MATCH:
        # when
        listed, total = await ids(api, CALLERS[caller], job_filter)

        # then
        expected = matching & VISIBLE[caller]
        assert set(listed) == expected, job_filter
        assert len(listed) == len(expected) == total, job_filter


@pytest.mark.parametrize(("job_filter", "field"), [
    ({"statuses": []}, "statuses"),
    ({"jobTypes": []}, "jobTypes"),
    ({"jobTypes": [f"t{i}" for i in range(51)]}, "jobTypes"),
    ({"status": "PENDING", "statuses": ["FAILED"]}, "statuses"),
    ({"jobType": "pdf", "jobTypes": ["ocr"]}, "jobTypes"),
    ({"batchId": "b1", "hasBatch": False}, "hasBatch"),
    ({"createdAfter": at(5).isoformat(), "createdBefore": at(1).isoformat()},
     "createdAfter"),
    ({"updatedAfter": at(5).isoformat(), "updatedBefore": at(5).isoformat()},
     "updatedAfter"),
    ({"finishedAfter": at(9).isoformat(), "finishedBefore": at(1).isoformat()},
     "finishedAfter"),
    ({"minPriority": 5, "maxPriority": 1}, "minPriority"),
    ({"maxPriority": 5000}, "maxPriority"),
    ({"owner": ""}, "owner"),
])
async def test_an_invalid_filter_is_a_validation_error_naming_its_field(
        api: Api, job_filter: dict[str, Any], field: str) -> None:
    for query in (LIST, STATS):
        # when
        error = await api.error(query, {"filter": job_filter})

        # then
        assert error["extensions"] == {"code": "VALIDATION_ERROR", "field": field}, query


async def test_finished_order_with_only_unfinished_statuses_is_refused(api: Api) -> None:
    error = await api.error(LIST, {"filter": {"statuses": ["PENDING", "PROCESSING"]},
                                   "orderBy": {"field": "FINISHED"}})
    assert error["extensions"] == {"code": "VALIDATION_ERROR", "field": "orderBy"}


# -- orders -------------------------------------------------------------------------------

ORDERS = {
    "CREATED": lambda row: (row[9],),
    "UPDATED": lambda row: (max(m for m in (row[9], row[10], row[11]) if m is not None),),
    "FINISHED": lambda row: (row[11],),
    "PRIORITY": lambda row: (row[6], row[9]),
}


def expected_order(caller: str, field: str, direction: str) -> list[str]:
    rows = [(job_id, JOBS[job_id]) for job_id in VISIBLE[caller]
            if field != "FINISHED" or JOBS[job_id][11] is not None]
    rows.sort(key=lambda item: (*ORDERS[field](item[1]), item[0]), reverse=direction == "DESC")
    return [job_id for job_id, _ in rows]


@pytest.mark.parametrize("caller", CALLERS)
async def test_every_order_lists_the_visible_jobs_in_that_order(
        api: Api, seeded: Store, caller: str) -> None:
    for field in ORDERS:
        for direction in ("ASC", "DESC"):
            # when
            listed, total = await ids(api, CALLERS[caller], {},
                                      {"field": field, "direction": direction})

            # then
            assert listed == expected_order(caller, field, direction), (field, direction)
            assert total == len(listed), (field, direction)


async def test_ties_are_broken_by_job_id_across_pages(api: Api, store: Store) -> None:
    # given: ten jobs with the same priority and creation instant
    docs = []
    for number in range(10):
        job = SecretaryJob(job_id=f"tie-{number:02}", job_type="pdf", owner="alice",
                           access_control=AccessControl(admin_access=["alice"]),
                           created_at=T0, updated_at=T0)
        docs.append(job_to_document(job))
    await store.jobs.collection.insert_many(docs)

    # when: paged three at a time by priority, ascending
    seen, after = [], None
    while True:
        page = (await api.data(LIST, {"orderBy": {"field": "PRIORITY", "direction": "ASC"},
                                      "first": 3, "after": after}))["jobs"]
        seen += [edge["node"]["jobId"] for edge in page["edges"]]
        if not page["pageInfo"]["hasNextPage"]:
            break
        after = page["pageInfo"]["endCursor"]

    # then
    assert seen == [f"tie-{number:02}" for number in range(10)]


async def test_a_cursor_from_one_order_is_refused_under_another(
        api: Api, seeded: Store) -> None:
    # given a cursor of each order
    cursors = {}
    for field in ORDERS:
        for direction in ("ASC", "DESC"):
            page = (await api.data(LIST, {"orderBy": {"field": field, "direction": direction},
                                          "first": 1}, as_=CALLERS["admin"]))["jobs"]
            cursors[field, direction] = page["pageInfo"]["endCursor"]

    # when / then: each is accepted by its own order only
    for (field, direction), cursor in cursors.items():
        for other in cursors:
            variables = {"orderBy": {"field": other[0], "direction": other[1]}, "first": 1,
                         "after": cursor}
            if other == (field, direction):
                await api.data(LIST, variables, as_=CALLERS["admin"])
                continue
            error = await api.error(LIST, variables, as_=CALLERS["admin"])
            assert error["extensions"] == {"code": "VALIDATION_ERROR", "field": "after"}


async def test_a_forged_cursor_is_a_validation_error(api: Api) -> None:
    forged = base64.urlsafe_b64encode(json.dumps(["priority_desc", "x", 1, "id"]).encode())
    error = await api.error(LIST, {"orderBy": {"field": "PRIORITY"}, "after": forged.decode()})
    assert error["extensions"] == {"code": "VALIDATION_ERROR", "field": "after"}


WALKER = Caller("walker")


@pytest.mark.parametrize("field", ORDERS)
@pytest.mark.parametrize("direction", ["ASC", "DESC"])
async def test_a_paged_walk_visits_every_visible_job_once_while_jobs_are_inserted(
        api: Api, store: Store, field: str, direction: str) -> None:
    # given: 24 jobs the walker may read (some finished), 6 it may not
    docs = []
    for number in range(30):
        visible = number % 5 != 0
        finished = None if number % 3 == 0 else at(number + 1)
        job = SecretaryJob(
            job_id=f"w{number:02}", job_type="pdf", owner="alice",
            status=C if finished else P, priority=number % 4, created_at=at(number // 2),
            updated_at=finished or at(number // 2), completed_at=finished,
            access_control=AccessControl(read_access=["walker"] if visible else [],
                                         admin_access=["alice"]))
        docs.append(job_to_document(job))
    await store.jobs.collection.insert_many(docs)
    before = {doc["_id"] for doc in docs if "walker" in doc["access_control"]["read_access"]
              and (field != "FINISHED" or doc["completed_at"] is not None)}

    async def insert(number: int) -> None:
        await api.data("""mutation($p: Int) { createJob(input: {jobType: "pdf", priority: $p,
            accessControl: {readAccess: ["walker"]}}) { jobId } }""", {"p": number % 4 - 1})

    # when: paged four at a time, two jobs created before each page
    seen: list[str] = []
    after, pages = None, 0
    while True:
        await asyncio.gather(insert(pages), insert(pages + 1))
        page = (await api.data(LIST, {"orderBy": {"field": field, "direction": direction},
                                      "first": 4, "after": after}, as_=WALKER))["jobs"]
        seen += [edge["node"]["jobId"] for edge in page["edges"]]
        pages += 1
        if not page["pageInfo"]["hasNextPage"]:
            break
        after = page["pageInfo"]["endCursor"]
        assert pages < 40

    # then: every job there at the start once; none twice; none hidden
    assert len(seen) == len(set(seen))
    assert before <= set(seen)
    assert not {f"w{number:02}" for number in range(0, 30, 5)} & set(seen)


# -- statistics ---------------------------------------------------------------------------

WINDOW = {"since": at(0).isoformat(), "until": at(15).isoformat(), "bucket": "MINUTE"}
DURATIONS = {"j3": 60.0, "j4": 120.0, "j8": 300.0}


def percentile(values: list[float], share: float) -> float | None:
    """Nearest rank."""
    if not values:
        return None
    ordered = sorted(values)
    rank = max(1, -(-len(ordered) * share // 1))
    return ordered[int(rank) - 1]


@pytest.mark.parametrize("caller", CALLERS)
async def test_job_stats_count_what_the_caller_may_read(
        api: Api, seeded: Store, caller: str) -> None:
    # when
    stats = (await api.data(STATS, {"window": WINDOW}, as_=CALLERS[caller]))["jobStats"]

    # then: by status and by type
    visible = VISIBLE[caller]
    assert {row["key"]: row["count"] for row in stats["byStatus"]} == {
        status.value: sum(JOBS[job_id][1] is status for job_id in visible)
        for status in JobStatus}
    types: dict[str, int] = {}
    for job_id in visible:
        types[JOBS[job_id][0]] = types.get(JOBS[job_id][0], 0) + 1
    assert {row["key"]: row["count"] for row in stats["byJobType"]} == types
    counts = [row["count"] for row in stats["byJobType"]]
    assert counts == sorted(counts, reverse=True)
    # throughput: one bucket a minute, each job counted where it was created and ended
    assert [row["start"] for row in stats["throughput"]] == [
        at(minute).isoformat() for minute in range(15)]
    for minute, row in enumerate(stats["throughput"]):
        assert row["created"] == sum(JOBS[j][9] == minute for j in visible), minute
        assert row["completed"] == sum(JOBS[j][11] == minute and JOBS[j][1] is C
                                       for j in visible), minute
        assert row["failed"] == sum(JOBS[j][11] == minute and JOBS[j][1] is F
                                    for j in visible), minute
    # durations of the completed jobs
    measured = [DURATIONS[job_id] for job_id in DURATIONS if job_id in visible]
    assert stats["durations"] == {"count": len(measured), "p50": percentile(measured, 0.5),
                                  "p95": percentile(measured, 0.95)}


async def test_job_stats_hand_counted_for_the_reader(api: Api, seeded: Store) -> None:
    # when: the reader's failed or completed ocr and mail jobs
    stats = (await api.data(STATS, {"window": WINDOW, "filter": {
        "jobTypes": ["ocr", "mail"]}}, as_=CALLERS["reader"]))["jobStats"]

    # then: j4 (COMPLETED, 120 s), j5 (FAILED), j6 (FAILED), j8 (COMPLETED, 300 s)
    assert {row["key"]: row["count"] for row in stats["byStatus"]} == {
        "PENDING": 0, "PROCESSING": 0, "COMPLETED": 2, "FAILED": 2}
    assert stats["byJobType"] == [{"key": "ocr", "count": 3}, {"key": "mail", "count": 1}]
    assert stats["durations"] == {"count": 2, "p50": 120.0, "p95": 300.0}
    assert sum(row["created"] for row in stats["throughput"]) == 4
    assert [row["failed"] for row in stats["throughput"]][5:8] == [1, 0, 1]


async def test_job_stats_window_is_checked(api: Api) -> None:
    too_long = {"since": at(0).isoformat(), "until": at(60 * 25).isoformat(),
                "bucket": "MINUTE"}
    error = await api.error(STATS, {"window": too_long})
    assert error["extensions"] == {"code": "VALIDATION_ERROR", "field": "window"}
    reversed_ = {"since": at(5).isoformat(), "until": at(1).isoformat()}
    error = await api.error(STATS, {"window": reversed_})
    assert error["extensions"] == {"code": "VALIDATION_ERROR", "field": "window.since"}
    hours = (await api.data(STATS, {"window": {"since": at(0).isoformat(),
                                               "until": at(180).isoformat()}}))["jobStats"]
    assert len(hours["throughput"]) == 3


@pytest.mark.parametrize("window", [
    pytest.param({"until": "0001-01-01T00:30:00Z", "bucket": "MINUTE"}, id="until-year-1"),
    pytest.param({"since": "9999-12-31T23:00:00Z", "until": "9999-12-31T23:59:59.999Z",
                  "bucket": "MINUTE"}, id="last-hour-of-9999"),
    pytest.param({"since": "9999-12-31T00:00:00Z", "until": "9999-12-31T23:59:59.999Z"},
                 id="last-day-of-9999-by-hour"),
])
async def test_job_stats_window_at_the_ends_of_time_is_answered(
        api: Api, window: dict[str, str]) -> None:
    """Instants the scalar accepts must not overflow the window's own arithmetic (a 24 h
    default before year 1, a bucket after the last one of year 9999)."""
    stats = (await api.data(STATS, {"window": window}))["jobStats"]
    starts = [row["start"] for row in stats["throughput"]]
    assert starts and starts == sorted(starts)
    assert all(row["created"] == 0 for row in stats["throughput"])


# -- documentation jobs -------------------------------------------------------------------

# id: (repository, status, owner, visibility, readers, model, tokens, started, ended)
DOCS: dict[str, tuple[Any, ...]] = {
    "d1": ("alpha", DocumentationJobStatus.COMPLETED, "alice", PRIVATE, [], "gpt", 100, 1, 5),
    "d2": ("alpha", DocumentationJobStatus.RUNNING, "alice", PUBLIC, [], "claude", 40, 2,
           None),
    "d3": ("beta", DocumentationJobStatus.FAILED, "bob", PRIVATE, ["rita"], "gpt", 7, 3, 4),
    "d4": ("beta", DocumentationJobStatus.PENDING, "bob", PRIVATE, [], None, 0, None, None),
}
DOCS_VISIBLE = {"admin": set(DOCS), "owner": {"d1", "d2"}, "reader": {"d2", "d3"},
                "worker": {"d2"}, "anonymous": {"d2"}}
DOC_STATS = """query($filter: DocumentationJobFilterInput) {
  documentationJobStats(filter: $filter) { byStatus { key count }
  tokensByRepository { key jobs tokens } tokensByModel { key jobs tokens } } }"""
DOC_LIST = """query($filter: DocumentationJobFilterInput, $orderBy: DocumentationJobOrderInput) {
  documentationJobs(filter: $filter, orderBy: $orderBy) { totalCount edges { node { jobId } } }
}"""


@pytest.fixture
async def documented(store: Store) -> Store:
    docs = []
    for job_id, (repo, status, owner, visibility, readers, model, tokens, started,
                 ended) in DOCS.items():
        job = DocumentationJob(
            repository_path=f"/src/{repo}", repository_name=repo, output_directory="/out",
            job_id=job_id, status=status, owner=owner,
            llm_config=None if model is None else LLMConfig(model, model, "http://llm"),
            statistics=JobStatistics(total_tokens_used=tokens), created_at=at(0),
            updated_at=at(0), access_control=AccessControl(
                visibility=visibility, read_access=list(readers), admin_access=[owner]),
            timestamp_start=None if started is None else at(started).isoformat(),
            timestamp_end=None if ended is None else at(ended).isoformat())
        docs.append(documentation_job_to_document(job))  # as stored before started_at existed
    await store.documentation_jobs.collection.insert_many(docs)
    await store.documentation_jobs.ensure_indexes()  # start-up: the dates are backfilled
    return store


@pytest.mark.parametrize("caller", CALLERS)
async def test_documentation_job_stats_count_tokens_the_caller_may_read(
        api: Api, documented: Store, caller: str) -> None:
    # when
    stats = (await api.data(DOC_STATS, as_=CALLERS[caller]))["documentationJobStats"]

    # then
    visible = DOCS_VISIBLE[caller]
    assert {row["key"]: row["count"] for row in stats["byStatus"]} == {
        status.value: sum(DOCS[d][1] is status for d in visible)
        for status in DocumentationJobStatus}
    for name, column in (("tokensByRepository", 0), ("tokensByModel", 5)):
        expected: dict[Any, dict[str, int]] = {}
        for d in visible:
            row = expected.setdefault(DOCS[d][column], {"jobs": 0, "tokens": 0})
            row["jobs"] += 1
            row["tokens"] += DOCS[d][6]
        assert {row["key"]: {"jobs": row["jobs"], "tokens": row["tokens"]}
                for row in stats[name]} == expected, name


async def test_documentation_job_stats_hand_counted_for_the_admin(
        api: Api, documented: Store) -> None:
    stats = (await api.data(DOC_STATS, as_=CALLERS["admin"]))["documentationJobStats"]
    assert stats["tokensByRepository"] == [{"key": "alpha", "jobs": 2, "tokens": 140},
                                           {"key": "beta", "jobs": 2, "tokens": 7}]
    assert stats["tokensByModel"] == [{"key": "gpt", "jobs": 2, "tokens": 107},
                                      {"key": "claude", "jobs": 1, "tokens": 40},
                                      {"key": None, "jobs": 1, "tokens": 0}]


@pytest.mark.parametrize("caller", CALLERS)
async def test_documentation_job_filters_and_orders_use_the_backfilled_dates(
        api: Api, documented: Store, caller: str) -> None:
    cases = [
        ({"repositoryName": "beta"}, None, {"d3", "d4"}),
        ({"statuses": ["COMPLETED", "FAILED"]}, None, {"d1", "d3"}),
        ({"startedAfter": at(1).isoformat()}, None, {"d2", "d3"}),
        ({"endedBefore": at(5).isoformat()}, None, {"d3"}),
        ({}, {"field": "STARTED", "direction": "ASC"}, ["d1", "d2", "d3"]),
        ({}, {"field": "ENDED", "direction": "DESC"}, ["d1", "d3"]),
    ]
    for doc_filter, order, expected in cases:
        data = await api.data(DOC_LIST, {"filter": doc_filter, "orderBy": order},
                              as_=CALLERS[caller])
        listed = [edge["node"]["jobId"] for edge in data["documentationJobs"]["edges"]]
        if isinstance(expected, list):
            assert listed == [d for d in expected if d in DOCS_VISIBLE[caller]], order
        else:
            assert set(listed) == expected & DOCS_VISIBLE[caller], doc_filter
        assert data["documentationJobs"]["totalCount"] == len(listed)


async def test_a_documentation_job_run_stores_its_dates(api: Api, store: Store) -> None:
    # given a job started and completed through the API
    job_id = (await api.data("""mutation { createDocumentationJob(input: {
        repositoryPath: "/src/a", repositoryName: "a", outputDirectory: "/out"}) { jobId } }"""
                             ))["createDocumentationJob"]["jobId"]
    await api.data("mutation($id: ID!) { startDocumentationJob(jobId: $id) { jobId } }",
                   {"id": job_id})
    await api.data("mutation($id: ID!) { completeDocumentationJob(jobId: $id) { jobId } }",
                   {"id": job_id})

    # then: the dates beside the seed's strings are the same instants
    doc = await store.documentation_jobs.collection.find_one({"_id": job_id})
    assert doc["started_at"] == datetime.fromisoformat(doc["timestamp_start"])
    assert doc["ended_at"] == datetime.fromisoformat(doc["timestamp_end"])
