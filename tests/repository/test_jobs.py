"""The ``jobs`` collection: creation, reads, the lifecycle and access, on a real server."""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import AsyncIterator
from datetime import timedelta
from typing import Any

import pytest

from repository.access import Principal
from repository.database import Store
from repository.errors import (
    ConflictError,
    ForbiddenError,
    InvalidTransitionError,
    NotFoundError,
    ValidationError,
)
from repository.jobs import JobFilter, job_from_document, job_to_document
from repository.limits import Limits
from repository.models import (
    AccessControl,
    AccessVisibility,
    JobProgress,
    JobStatus,
    LogEntry,
    SecretaryJob,
    utcnow,
)
from repository.pagination import PageRequest

from .support import (
    ALICE,
    ANON,
    BOB,
    CAROL,
    OTHER_WORKER,
    ROOT,
    WORKER,
    at,
    connect,
    id_shape,
    insert_jobs,
    make_job,
    pooled,
    raw_job,
    seeded,
)

ALL = PageRequest(first=100)


async def claimed_job(store: Store, job_type: str = "pdf", **create: Any) -> SecretaryJob:
    """A job alice created and the worker ``w`` claimed."""
    job = await store.jobs.create(ALICE, job_type=job_type, **create)
    claimed = await store.jobs.claim(WORKER, [job_type])
    assert claimed is not None and claimed.job_id == job.job_id
    return claimed


@pytest.fixture
async def concurrent(store: Store, mongo_uri: str) -> AsyncIterator[Store]:
    """``store``'s database through a client with a small pool (see ``pooled``)."""
    async with pooled(store, mongo_uri) as shared:
        yield shared


def full_job() -> SecretaryJob:
    now = utcnow()
    return make_job(
        status=JobStatus.FAILED,
        parameters={"filename": "/path/to/file.pdf", "pages": [1, 2, 3], "opts": {"ocr": True}},
        progress=JobProgress(step="extracting_text", percent=50, message="half way"),
        results={"text": "hello"},
        error={"code": "E_PDF", "message": "broken", "details": {"page": 3}},
        logs=[LogEntry(now, "info", "started", 1, 1), LogEntry(now, "error", "broken", 2, 1)],
        access=AccessControl(AccessVisibility.PUBLIC, ["bob"], ["carol"], ["alice"]),
        batch_id="batch-1",
        processing_started_at=now,
        completed_at=now,
        claimed_by="w",
        lease_expires_at=now + timedelta(minutes=5),
        attempts=2,
        max_attempts=4,
        retryable=False,
        log_seq=2,
        previous_errors=[{"code": "E_OLD", "message": "old", "details": None}],
        former_workers=["w-before"],
        version=7,
    )


# -- BSON mapping ---------------------------------------------------------------


def test_job_document_round_trip_gives_equal_job() -> None:
    # given
    job = full_job()

    # when
    doc = job_to_document(job)
    restored = job_from_document(doc)

    # then
    assert restored == job
    assert doc["_id"] == job.job_id
    assert doc["status"] == "FAILED"
    assert doc["readers"] == ["*", "bob", "carol", "alice"]


async def test_job_document_stored_and_read_back_gives_equal_job(store: Store) -> None:
    # given
    job = full_job()
    minimal = make_job()

    # when
    await insert_jobs(store, [job, minimal])
    stored = await raw_job(store, job.job_id)
    stored_minimal = await raw_job(store, minimal.job_id)

    # then
    assert stored is not None and stored_minimal is not None
    assert job_from_document(stored) == job
    assert job_from_document(stored_minimal) == minimal


def test_job_from_document_ignores_storage_only_fields() -> None:
    # given
    job = make_job()
    doc = {**job_to_document(job), "idempotency_key": "k-1"}

    # when
    restored = job_from_document(doc)

    # then
    assert restored == job


# -- create / get -----------------------------------------------------------------


async def test_create_job_stores_pending_job_with_creator_as_admin(store: Store) -> None:
    # given
    before = utcnow()

    # when
    job = await store.jobs.create(ALICE, job_type="pdf", parameters={"filename": "a.pdf"})

    # then
    assert job.status is JobStatus.PENDING
    assert job.owner == "alice"
    assert job.access_control == AccessControl(admin_access=["alice"])
    assert before <= job.created_at == job.updated_at <= utcnow()
    assert (job.attempts, job.max_attempts, job.log_seq) == (0, 3, 0)
    assert await store.jobs.get(ALICE, job.job_id) == job
    doc = await raw_job(store, job.job_id)
    assert doc is not None
    assert doc["readers"] == ["alice"]
    assert doc["parameters"] == {"filename": "a.pdf"}


async def test_create_job_keeps_given_access_and_adds_creator_as_admin(store: Store) -> None:
    # given
    access = AccessControl(AccessVisibility.PUBLIC, ["bob"], ["carol"], ["dave"])

    # when
    job = await store.jobs.create(ALICE, job_type="pdf", access_control=access, max_attempts=7)

    # then
    assert job.access_control == AccessControl(
        AccessVisibility.PUBLIC, ["bob"], ["carol"], ["dave", "alice"])
    assert job.max_attempts == 7
    assert await store.jobs.get(ANON, job.job_id) == job


async def test_create_job_by_anonymous_is_forbidden_and_stores_nothing(store: Store) -> None:
    # when / then
    with pytest.raises(ForbiddenError):
        await store.jobs.create(ANON, job_type="pdf")
    assert await store.jobs.collection.count_documents({}) == 0


@pytest.mark.parametrize(
    ("fields", "field"),
    [
        ({"job_type": ""}, "jobType"),
        ({"job_type": "   "}, "jobType"),
        ({"job_type": "x" * 1001}, "jobType"),
        ({"job_type": "a\x00b"}, "jobType"),
        ({"parameters": {"$set": {"status": "COMPLETED"}}}, "parameters"),
        ({"parameters": {"a.b": 1}}, "parameters"),
        ({"parameters": {"nested": [{"$where": "1"}]}}, "parameters.nested[0]"),
        ({"parameters": {"blob": "x" * 70_000}}, "parameters"),
        ({"parameters": ["not", "a", "mapping"]}, "parameters"),
        ({"max_attempts": 0}, "maxAttempts"),
        ({"max_attempts": 101}, "maxAttempts"),
    ],
)
async def test_create_job_with_invalid_input_is_refused_and_stores_nothing(
    store: Store, fields: dict[str, Any], field: str
) -> None:
    # given
    arguments = {"job_type": "pdf", **fields}

    # when / then
    with pytest.raises(ValidationError) as caught:
        await store.jobs.create(ALICE, **arguments)
    assert caught.value.field == field
    assert await store.jobs.collection.count_documents({}) == 0


async def test_get_missing_job_raises_not_found(store: Store) -> None:
    # when / then
    with pytest.raises(NotFoundError) as caught:
        await store.jobs.get(ROOT, "no-such-job")
    assert caught.value.message == "job 'no-such-job' not found"


async def test_get_many_returns_only_existing_readable_jobs(store: Store) -> None:
    # given
    mine = await store.jobs.create(ALICE, job_type="pdf")
    public = await store.jobs.create(
        CAROL, job_type="pdf", access_control=AccessControl(AccessVisibility.PUBLIC))
    hidden = await store.jobs.create(CAROL, job_type="pdf")

    # when
    found = await store.jobs.get_many(ALICE, [mine.job_id, public.job_id, hidden.job_id, "gone"])

    # then
    assert found == {mine.job_id: mine, public.job_id: public}


# -- list / count with filters ------------------------------------------------------


@pytest.fixture(scope="module")
async def catalogue_data(mongo_uri: str) -> AsyncIterator[tuple[str, list[SecretaryJob]]]:
    """24 jobs over every status, two types, two batches and 24 distinct instants, in a
    database of their own that the tests only read."""
    statuses = list(JobStatus)
    jobs = [
        make_job(
            job_type="pdf" if i % 2 else "session",
            status=statuses[i % 4],
            batch_id=("b1", "b2", None)[i % 3],
            created_at=at(i * 1000),
        )
        for i in range(24)
    ]
    async with seeded(mongo_uri, lambda store: insert_jobs(store, jobs)) as data:
        yield data


@pytest.fixture
async def catalogue(
    mongo_uri: str, catalogue_data: tuple[str, list[SecretaryJob]]
) -> AsyncIterator[tuple[Store, list[SecretaryJob]]]:
    name, jobs = catalogue_data
    async with connect(mongo_uri, name) as store:
        yield store, jobs


def newest_first(jobs: list[SecretaryJob]) -> list[str]:
    ordered = sorted(jobs, key=lambda job: (job.created_at, job.job_id), reverse=True)
    return [job.job_id for job in ordered]


@pytest.mark.parametrize(
    ("job_filter", "keep"),
    [
        (JobFilter(), lambda job: True),
        (JobFilter(status=JobStatus.PENDING), lambda job: job.status is JobStatus.PENDING),
        (JobFilter(status=JobStatus.FAILED), lambda job: job.status is JobStatus.FAILED),
        (JobFilter(job_type="pdf"), lambda job: job.job_type == "pdf"),
        (JobFilter(job_type="none"), lambda job: False),
        (JobFilter(batch_id="b2"), lambda job: job.batch_id == "b2"),
        (JobFilter(created_after=at(5000)), lambda job: job.created_at > at(5000)),
        (JobFilter(created_before=at(5000)), lambda job: job.created_at < at(5000)),
        (
            JobFilter(created_after=at(3000), created_before=at(15000)),
            lambda job: at(3000) < job.created_at < at(15000),
        ),
        (
            JobFilter(status=JobStatus.PROCESSING, job_type="pdf", batch_id="b1"),
            lambda job: (job.status, job.job_type, job.batch_id)
            == (JobStatus.PROCESSING, "pdf", "b1"),
        ),
    ],
    ids=["none", "pending", "failed", "type", "unknown-type", "batch", "after", "before",
         "range", "combined"],
)
async def test_list_jobs_with_filter_returns_matching_jobs_newest_first(
    catalogue: tuple[Store, list[SecretaryJob]], job_filter: JobFilter, keep: Any
) -> None:
    # given
    store, jobs = catalogue
    expected = newest_first([job for job in jobs if keep(job)])

    # when
    page = await store.jobs.list(ROOT, job_filter, ALL)
    total = await store.jobs.count(ROOT, job_filter)

    # then
    assert [job.job_id for job in page.items] == expected
    assert total == len(expected)
    assert page.has_next_page is False


async def test_list_jobs_returns_equal_models(
    catalogue: tuple[Store, list[SecretaryJob]],
) -> None:
    # given
    store, jobs = catalogue

    # when
    page = await store.jobs.list(ALICE, JobFilter(batch_id="b1"), ALL)

    # then
    by_id = {job.job_id: job for job in jobs}
    assert page.items
    assert all(job == by_id[job.job_id] for job in page.items)


# -- claim --------------------------------------------------------------------------


async def test_claim_takes_the_oldest_pending_job(store: Store) -> None:
    # given
    newer = make_job(created_at=at(2000))
    oldest = make_job(created_at=at(1000))
    oldest_done = make_job(created_at=at(0), status=JobStatus.COMPLETED)
    await insert_jobs(store, [newer, oldest, oldest_done])
    before = utcnow()

    # when
    claimed = await store.jobs.claim(WORKER)

    # then
    after = utcnow()
    assert claimed is not None
    assert claimed.job_id == oldest.job_id
    assert claimed.status is JobStatus.PROCESSING
    assert claimed.claimed_by == "w"
    assert claimed.attempts == 1
    assert claimed.processing_started_at is not None
    assert before <= claimed.processing_started_at <= after
    assert claimed.lease_expires_at == claimed.processing_started_at + timedelta(seconds=300)
    assert await store.jobs.get(ROOT, claimed.job_id) == claimed
    assert (await store.jobs.get(ROOT, newer.job_id)).status is JobStatus.PENDING


async def test_claim_breaks_created_at_tie_by_smallest_id(store: Store) -> None:
    # given
    jobs = [make_job(job_id=f"job-{letter}", created_at=at(0)) for letter in "dbca"]
    await insert_jobs(store, jobs)

    # when
    first = await store.jobs.claim(WORKER)
    second = await store.jobs.claim(WORKER)

    # then
    assert first is not None and second is not None
    assert (first.job_id, second.job_id) == ("job-a", "job-b")


async def test_claim_with_job_types_takes_only_those_types(store: Store) -> None:
    # given
    old_pdf = make_job(job_type="pdf", created_at=at(0))
    session = make_job(job_type="session", created_at=at(1))
    transformer = make_job(job_type="transformer", created_at=at(2))
    await insert_jobs(store, [old_pdf, session, transformer])

    # when
    first = await store.jobs.claim(WORKER, ["transformer", "session"])
    second = await store.jobs.claim(WORKER, ["transformer", "session"])
    third = await store.jobs.claim(WORKER, ["transformer", "session"])

    # then
    assert first is not None and second is not None
    assert (first.job_id, second.job_id) == (session.job_id, transformer.job_id)
    assert third is None
    assert (await store.jobs.get(ROOT, old_pdf.job_id)).status is JobStatus.PENDING


async def test_claim_with_nothing_pending_returns_none(store: Store) -> None:
    # given
    await insert_jobs(store, [make_job(status=JobStatus.PROCESSING),
                              make_job(status=JobStatus.FAILED)])

    # when
    claimed = await store.jobs.claim(WORKER)

    # then
    assert claimed is None


@pytest.mark.parametrize("principal", [ALICE, ANON, Principal("x", frozenset({"reader"}))])
async def test_claim_without_worker_or_admin_role_is_forbidden(
    store: Store, principal: Principal
) -> None:
    # given
    job = await store.jobs.create(ALICE, job_type="pdf")
    before = await raw_job(store, job.job_id)

    # when / then
    with pytest.raises(ForbiddenError):
        await store.jobs.claim(principal)
    assert await raw_job(store, job.job_id) == before


async def test_claim_by_admin_role_is_allowed(store: Store) -> None:
    # given
    job = await store.jobs.create(ALICE, job_type="pdf")

    # when
    claimed = await store.jobs.claim(ROOT)

    # then
    assert claimed is not None
    assert (claimed.job_id, claimed.claimed_by) == (job.job_id, "root")


@pytest.mark.slow
async def test_claim_by_50_concurrent_workers_takes_each_of_200_jobs_exactly_once(
    store: Store, concurrent: Store
) -> None:
    # given 200 jobs over 25 types, many sharing a created_at, and 50 workers that each
    # take two types, so every job is wanted by four workers at once (every worker asking
    # for every type gives the same guarantee but takes minutes on the embedded server,
    # whose findAndModify rescans all candidates once per contender)
    jobs = await insert_jobs(store, [
        make_job(job_type=f"t{i % 25}", created_at=at(i % 37)) for i in range(200)])
    workers = [Principal(f"w{i}", frozenset({"worker"})) for i in range(50)]
    wanted = [[f"t{i % 25}", f"t{(i + 12) % 25}"] for i in range(50)]

    async def drain(worker: Principal, job_types: list[str]) -> list[str]:
        taken: list[str] = []
        while (job := await concurrent.jobs.claim(worker, job_types)) is not None:
            assert job.claimed_by == worker.user_id
            assert job.job_type in job_types
            taken.append(job.job_id)
        return taken

    # when all 50 drain the queue at once
    results = await asyncio.gather(*(drain(w, types) for w, types in zip(
        workers, wanted, strict=True)))

    # then every job was claimed once, by the worker the database recorded
    claims = Counter(job_id for taken in results for job_id in taken)
    assert sum(claims.values()) == 200
    assert set(claims) == {job.job_id for job in jobs}
    assert max(claims.values()) == 1
    owners = {job_id: worker.user_id for worker, taken in zip(workers, results, strict=True)
              for job_id in taken}
    async for doc in store.jobs.collection.find({}):
        assert doc["status"] == "PROCESSING"
        assert doc["attempts"] == 1
        assert doc["claimed_by"] == owners[doc["_id"]]
    # and once exhausted, every further claim gets nothing, whatever it asks for
    extra = await asyncio.gather(*(store.jobs.claim(w, types) for w, types in zip(
        workers, [None] * 25 + wanted[25:], strict=True)))
    assert extra == [None] * 50


# -- progress / heartbeat -------------------------------------------------------------


async def test_update_progress_by_claiming_worker_stores_progress_and_extends_lease(
    store: Store,
) -> None:
    # given
    job = await claimed_job(store)
    progress = JobProgress(step="extracting_text", percent=40, message="page 4 of 10")

    # when
    updated = await store.jobs.update_progress(WORKER, job.job_id, progress)

    # then
    assert updated.progress == progress
    assert updated.status is JobStatus.PROCESSING
    assert updated.updated_at >= job.updated_at
    assert updated.lease_expires_at == updated.updated_at + timedelta(seconds=300)
    assert await store.jobs.get(ALICE, job.job_id) == updated


@pytest.mark.parametrize(
    ("progress", "field"),
    [
        (JobProgress(step="", percent=1), "step"),
        (JobProgress(step="s" * 1001, percent=1), "step"),
        (JobProgress(step="s", percent=1, message="m" * 4097), "message"),
    ],
)
async def test_update_progress_with_invalid_text_is_refused_and_changes_nothing(
    store: Store, progress: JobProgress, field: str
) -> None:
    # given
    job = await claimed_job(store)
    before = await raw_job(store, job.job_id)

    # when / then
    with pytest.raises(ValidationError) as caught:
        await store.jobs.update_progress(WORKER, job.job_id, progress)
    assert caught.value.field == field
    assert await raw_job(store, job.job_id) == before


async def test_heartbeat_extends_the_lease_of_a_processing_job(store: Store) -> None:
    # given
    job = await claimed_job(store)
    soon = utcnow() + timedelta(seconds=30)
    await store.jobs.collection.update_one(
        {"_id": job.job_id}, {"$set": {"lease_expires_at": soon}})

    # when
    beaten = await store.jobs.heartbeat(WORKER, job.job_id)

    # then
    assert beaten.lease_expires_at is not None
    assert beaten.lease_expires_at == beaten.updated_at + timedelta(seconds=300)
    assert beaten.lease_expires_at > utcnow()
    assert (await store.jobs.get(ROOT, job.job_id)).lease_expires_at == beaten.lease_expires_at


async def test_heartbeat_after_the_lease_lapsed_is_a_conflict(store: Store) -> None:
    # given a lease that ran out before any reaper came round
    job = await claimed_job(store)
    await store.jobs.collection.update_one(
        {"_id": job.job_id}, {"$set": {"lease_expires_at": at(0)}})
    before = await store.jobs.collection.find_one({"_id": job.job_id})

    # when / then
    with pytest.raises(ConflictError, match="expired"):
        await store.jobs.heartbeat(WORKER, job.job_id)
    assert await store.jobs.collection.find_one({"_id": job.job_id}) == before


# -- logs ---------------------------------------------------------------------------------


async def test_append_logs_numbers_entries_from_one(store: Store) -> None:
    # given
    job = await store.jobs.create(ALICE, job_type="pdf")

    # when
    first = await store.jobs.append_logs(ALICE, job.job_id, [("info", "queued")])
    second = await store.jobs.append_logs(
        ALICE, job.job_id, [("debug", "a"), ("warning", "b"), ("critical", "c")])

    # then
    assert [entry.seq for entry in first.logs] == [1]
    assert [(e.seq, e.level, e.message) for e in second.logs] == [
        (1, "info", "queued"), (2, "debug", "a"), (3, "warning", "b"), (4, "critical", "c")]
    assert second.log_seq == 4
    assert all(entry.attempt == 1 for entry in second.logs)
    assert await store.jobs.get(ALICE, job.job_id) == second


async def test_append_logs_records_the_current_attempt(store: Store) -> None:
    # given (one attempt, so the worker's failure is final and a writer retries it)
    job = await claimed_job(store, max_attempts=1)
    await store.jobs.fail(WORKER, job.job_id, code="E", message="first try")
    await store.jobs.retry(ALICE, job.job_id)
    again = await store.jobs.claim(WORKER)
    assert again is not None and again.attempts == 2

    # when
    logged = await store.jobs.append_logs(WORKER, job.job_id, [("error", "second try")])

    # then
    assert [(entry.seq, entry.attempt) for entry in logged.logs] == [(1, 2)]


@pytest.mark.parametrize(
    ("entries", "field"),
    [
        ([], "entries"),
        ([("info", "ok")] * 101, "entries"),
        ([("info", "ok"), ("fatal", "no such level")], "level"),
        ([("info", "")], "message"),
        ([("info", "m" * 4097)], "message"),
    ],
    ids=["empty", "too-many", "bad-level", "blank-message", "long-message"],
)
async def test_append_logs_with_invalid_entries_is_refused_and_changes_nothing(
    store: Store, entries: list[tuple[str, str]], field: str
) -> None:
    # given
    job = await store.jobs.create(ALICE, job_type="pdf")
    before = await raw_job(store, job.job_id)

    # when / then
    with pytest.raises(ValidationError) as caught:
        await store.jobs.append_logs(ALICE, job.job_id, entries)
    assert caught.value.field == field
    assert await raw_job(store, job.job_id) == before


async def test_append_logs_to_missing_job_raises_not_found(store: Store) -> None:
    # when / then
    with pytest.raises(NotFoundError) as caught:
        await store.jobs.append_logs(ROOT, "gone", [("info", "x")])
    assert caught.value.message == "job 'gone' not found"


@pytest.mark.parametrize("per_call", [1, 4, 12])
async def test_append_logs_beyond_the_cap_keeps_the_newest_entries(
    store: Store, per_call: int
) -> None:
    # given
    capped = Store(store.client, store.database_name, Limits(max_logs_per_job=5))
    job = await capped.jobs.create(ALICE, job_type="pdf")
    messages = [f"line {n}" for n in range(1, 13)]

    # when
    for start in range(0, 12, per_call):
        chunk = messages[start:start + per_call]
        latest = await capped.jobs.append_logs(ALICE, job.job_id, [("info", m) for m in chunk])

    # then
    stored = await capped.jobs.get(ALICE, job.job_id)
    assert stored == latest
    assert stored.log_seq == 12
    assert [entry.seq for entry in stored.logs] == [8, 9, 10, 11, 12]
    assert [entry.message for entry in stored.logs] == messages[7:]
    more = await capped.jobs.append_logs(ALICE, job.job_id, [("info", "line 13")])
    assert [entry.seq for entry in more.logs] == [9, 10, 11, 12, 13]
    assert more.log_seq == 13


async def test_append_logs_concurrently_gives_unique_gap_free_seq_numbers(
    store: Store, concurrent: Store
) -> None:
    # given
    job = await claimed_job(store)
    calls = [[("info", f"writer {w} line {n}") for n in range(1 + w % 3)] for w in range(24)]
    total = sum(len(call) for call in calls)

    # when
    await asyncio.gather(*(concurrent.jobs.append_logs(WORKER, job.job_id, call)
                           for call in calls))

    # then
    stored = await store.jobs.get(ROOT, job.job_id)
    assert stored.log_seq == total
    assert [entry.seq for entry in stored.logs] == list(range(1, total + 1))
    seq_of = {entry.message: entry.seq for entry in stored.logs}
    assert len(seq_of) == total
    for call in calls:  # each call's entries stay together and in order
        seqs = [seq_of[message] for _, message in call]
        assert seqs == list(range(seqs[0], seqs[0] + len(seqs)))


# -- complete / fail / retry -------------------------------------------------------------


async def test_complete_processing_job_stores_results_and_ends_the_lease(store: Store) -> None:
    # given
    job = await claimed_job(store)
    before = utcnow()

    # when
    done = await store.jobs.complete(WORKER, job.job_id, {"pages": 10, "text": ["a", "b"]})

    # then
    assert done.status is JobStatus.COMPLETED
    assert done.results == {"pages": 10, "text": ["a", "b"]}
    assert done.completed_at is not None and before <= done.completed_at <= utcnow()
    assert done.lease_expires_at is None
    assert await store.jobs.get(ALICE, job.job_id) == done


async def test_complete_with_unsafe_results_is_refused_and_changes_nothing(store: Store) -> None:
    # given
    job = await claimed_job(store)
    before = await raw_job(store, job.job_id)

    # when / then
    with pytest.raises(ValidationError) as caught:
        await store.jobs.complete(WORKER, job.job_id, {"$inc": {"attempts": 1}})
    assert caught.value.field == "results"
    assert await raw_job(store, job.job_id) == before


@pytest.mark.parametrize("status", [JobStatus.PENDING, JobStatus.PROCESSING])
async def test_fail_unfinished_job_stores_the_error(store: Store, status: JobStatus) -> None:
    # given
    job = await store.jobs.create(ALICE, job_type="pdf")
    if status is JobStatus.PROCESSING:
        await store.jobs.claim(WORKER)

    # when
    failed = await store.jobs.fail(ALICE, job.job_id, code="E_PDF", message="broken file",
                                   details={"page": 3}, retryable=False)

    # then
    assert failed.status is JobStatus.FAILED
    assert failed.error == {"code": "E_PDF", "message": "broken file", "details": {"page": 3}}
    assert failed.retryable is False
    assert failed.completed_at is not None
    assert failed.lease_expires_at is None
    assert await store.jobs.get(ALICE, job.job_id) == failed


@pytest.mark.parametrize(
    ("error", "field"),
    [
        ({"code": "", "message": "m"}, "error.code"),
        ({"code": "c" * 101, "message": "m"}, "error.code"),
        ({"code": "E", "message": ""}, "error.message"),
        ({"code": "E", "message": "m", "details": {"a.b": 1}}, "error.details"),
    ],
)
async def test_fail_with_invalid_error_is_refused_and_changes_nothing(
    store: Store, error: dict[str, Any], field: str
) -> None:
    # given
    job = await claimed_job(store)
    before = await raw_job(store, job.job_id)

    # when / then
    with pytest.raises(ValidationError) as caught:
        await store.jobs.fail(WORKER, job.job_id, **error)
    assert caught.value.field == field
    assert await raw_job(store, job.job_id) == before


async def test_retry_failed_job_makes_it_pending_and_keeps_every_error(store: Store) -> None:
    # given (one attempt, so the worker's failure is final and a writer retries it)
    job = await claimed_job(store, max_attempts=1)
    await store.jobs.update_progress(WORKER, job.job_id, JobProgress(step="s", percent=30))
    await store.jobs.fail(WORKER, job.job_id, code="E1", message="first")

    # when
    retried = await store.jobs.retry(ALICE, job.job_id)
    again = await store.jobs.claim(WORKER)
    assert again is not None and again.job_id == job.job_id
    await store.jobs.fail(WORKER, job.job_id, code="E2", message="second", details={"n": 2})
    twice = await store.jobs.retry(ALICE, job.job_id)

    # then
    assert retried.status is JobStatus.PENDING
    assert (retried.error, retried.progress, retried.results) == (None, None, None)
    assert (retried.claimed_by, retried.lease_expires_at) == (None, None)
    assert (retried.processing_started_at, retried.completed_at) == (None, None)
    assert retried.retryable is True
    assert retried.attempts == 1
    assert retried.previous_errors == [{"code": "E1", "message": "first", "details": None}]
    assert again.attempts == 2
    assert twice.previous_errors == [
        {"code": "E1", "message": "first", "details": None},
        {"code": "E2", "message": "second", "details": {"n": 2}},
    ]
    assert await store.jobs.get(ALICE, job.job_id) == twice


# -- transitions from the wrong state ------------------------------------------------------

ALLOWED_FROM = {
    "update_progress": {JobStatus.PROCESSING},
    "heartbeat": {JobStatus.PROCESSING},
    "append_logs": {JobStatus.PENDING, JobStatus.PROCESSING},
    "complete": {JobStatus.PROCESSING},
    "fail": {JobStatus.PENDING, JobStatus.PROCESSING},
    "retry": {JobStatus.FAILED},
}


async def perform(store: Store, action: str, principal: Principal, job_id: str) -> SecretaryJob:
    jobs = store.jobs
    if action == "update_progress":
        return await jobs.update_progress(principal, job_id, JobProgress(step="s", percent=5))
    if action == "heartbeat":
        return await jobs.heartbeat(principal, job_id)
    if action == "append_logs":
        return await jobs.append_logs(principal, job_id, [("info", "hello")])
    if action == "complete":
        return await jobs.complete(principal, job_id, {"ok": True})
    if action == "fail":
        return await jobs.fail(principal, job_id, code="E", message="boom")
    assert action == "retry"
    return await jobs.retry(principal, job_id)


@pytest.mark.parametrize("action", sorted(ALLOWED_FROM))
async def test_transition_from_the_wrong_state_is_refused_and_changes_nothing(
    store: Store, action: str
) -> None:
    # given one job in every status, alice (their admin) acting
    jobs = {
        status: make_job(status=status, error={"code": "E", "message": "m", "details": None}
                         if status is JobStatus.FAILED else None)
        for status in JobStatus
    }
    await insert_jobs(store, list(jobs.values()))

    for status, job in jobs.items():
        before = await raw_job(store, job.job_id)

        # when
        try:
            result = await perform(store, action, ALICE, job.job_id)
        except InvalidTransitionError as refused:
            # then: refused exactly where the rules forbid it, and nothing changed
            assert status not in ALLOWED_FROM[action], f"{action} from {status} refused"
            assert status.value in refused.message
            assert await raw_job(store, job.job_id) == before
        else:
            assert status in ALLOWED_FROM[action], f"{action} from {status} allowed"
            assert await raw_job(store, job.job_id) != before
            assert result.updated_at >= job.updated_at


async def test_complete_job_never_claimed_is_refused_and_changes_nothing(store: Store) -> None:
    # given
    job = await store.jobs.create(ALICE, job_type="pdf")
    before = await raw_job(store, job.job_id)

    # when / then
    with pytest.raises(InvalidTransitionError) as caught:
        await store.jobs.complete(ALICE, job.job_id, {"ok": True})
    assert caught.value.message == f"cannot complete job {job.job_id!r}: it is PENDING"
    assert await raw_job(store, job.job_id) == before


async def test_complete_job_twice_is_refused_the_second_time(store: Store) -> None:
    # given
    job = await claimed_job(store)
    done = await store.jobs.complete(WORKER, job.job_id, {"n": 1})
    before = await raw_job(store, job.job_id)

    # when
    outcomes = await asyncio.gather(
        store.jobs.complete(WORKER, job.job_id, {"n": 2}),
        store.jobs.fail(WORKER, job.job_id, code="E", message="late"),
        return_exceptions=True,
    )

    # then
    assert all(isinstance(outcome, InvalidTransitionError) for outcome in outcomes)
    assert await raw_job(store, job.job_id) == before
    assert (await store.jobs.get(ALICE, job.job_id)) == done


async def test_complete_and_fail_racing_on_one_job_let_exactly_one_win(
    store: Store, concurrent: Store
) -> None:
    # given (one attempt each, so a failure is final)
    jobs = [await claimed_job(store, max_attempts=1) for _ in range(10)]

    # when
    outcomes = await asyncio.gather(*(
        call
        for job in jobs
        for call in (concurrent.jobs.complete(WORKER, job.job_id, {"ok": True}),
                     concurrent.jobs.fail(WORKER, job.job_id, code="E", message="m"))
    ), return_exceptions=True)

    # then
    for index, job in enumerate(jobs):
        pair = outcomes[2 * index:2 * index + 2]
        winners = [outcome for outcome in pair if isinstance(outcome, SecretaryJob)]
        losers = [outcome for outcome in pair if isinstance(outcome, InvalidTransitionError)]
        assert (len(winners), len(losers)) == (1, 1)
        assert await store.jobs.get(ROOT, job.job_id) == winners[0]


# -- delete / set_access -----------------------------------------------------------------


async def test_delete_job_by_its_admin_removes_it(store: Store) -> None:
    # given
    job = await store.jobs.create(ALICE, job_type="pdf")

    # when
    deleted = await store.jobs.delete(ALICE, job.job_id)

    # then
    assert deleted == job
    assert await raw_job(store, job.job_id) is None
    with pytest.raises(NotFoundError):
        await store.jobs.get(ALICE, job.job_id)
    with pytest.raises(NotFoundError):
        await store.jobs.delete(ALICE, job.job_id)


async def test_delete_job_by_admin_role_removes_it(store: Store) -> None:
    # given
    job = await store.jobs.create(ALICE, job_type="pdf")

    # when
    await store.jobs.delete(ROOT, job.job_id)

    # then
    assert await raw_job(store, job.job_id) is None


async def test_set_access_by_admin_replaces_lists_and_readers(store: Store) -> None:
    # given
    job = await store.jobs.create(ALICE, job_type="pdf",
                                  access_control=AccessControl(read_access=["bob"]))
    assert (await store.jobs.get(BOB, job.job_id)).job_id == job.job_id
    new_access = AccessControl(AccessVisibility.PUBLIC, [], ["carol"], ["alice"])

    # when
    changed = await store.jobs.set_access(ALICE, job.job_id, new_access)

    # then
    assert changed.access_control == new_access
    assert changed.updated_at >= job.updated_at
    doc = await raw_job(store, job.job_id)
    assert doc is not None and doc["readers"] == ["*", "carol", "alice"]
    assert await store.jobs.get(ANON, job.job_id) == changed
    private_again = await store.jobs.set_access(
        ALICE, job.job_id, AccessControl(admin_access=["alice"]))
    assert private_again.access_control.visibility is AccessVisibility.PRIVATE
    with pytest.raises(NotFoundError):
        await store.jobs.get(BOB, job.job_id)
    with pytest.raises(NotFoundError):
        await store.jobs.get(ANON, job.job_id)


# -- access rules ---------------------------------------------------------------------------


GRANTS = {
    "public": AccessControl(AccessVisibility.PUBLIC),
    "private": AccessControl(),
    "read": AccessControl(read_access=["bob"]),
    "write": AccessControl(write_access=["bob"]),
    "admin": AccessControl(admin_access=["bob"]),
}


async def share(store: Store) -> dict[str, SecretaryJob]:
    """Jobs alice created, shared with bob in each way, plus a public one (one insert)."""
    jobs = {name: store.jobs.new_job(ALICE, job_type="pdf", access_control=access)
            for name, access in GRANTS.items()}
    await insert_jobs(store, list(jobs.values()))
    return jobs


async def share_and_hold(store: Store) -> dict[str, SecretaryJob]:
    """``share``'s jobs plus a private one the worker ``w`` holds."""
    jobs = await share(store)
    await insert_jobs(store, [store.jobs.new_job(ALICE, job_type="held")])
    held = await store.jobs.claim(WORKER, ["held"])
    assert held is not None
    return {**jobs, "held": held}


seed_readable = share_and_hold
"""What ``readable`` (tests/repository/conftest.py) seeds for this module."""


@pytest.mark.parametrize(
    ("principal", "visible"),
    [
        (ALICE, {"public", "private", "read", "write", "admin", "held"}),
        (BOB, {"public", "read", "write", "admin"}),
        (CAROL, {"public"}),
        (ANON, {"public"}),
        (ROOT, {"public", "private", "read", "write", "admin", "held"}),
        (WORKER, {"public", "held"}),
        (OTHER_WORKER, {"public"}),
    ],
    ids=["creator", "shared", "stranger", "anonymous", "admin-role", "holding-worker",
         "other-worker"],
)
async def test_read_filter_shows_exactly_the_readable_jobs(
    readable: tuple[Store, dict[str, SecretaryJob]], principal: Principal, visible: set[str]
) -> None:
    # given
    store, jobs = readable
    expected = {jobs[name].job_id for name in visible}

    # when
    page = await store.jobs.list(principal, JobFilter(), ALL)
    total = await store.jobs.count(principal, JobFilter())
    found = await store.jobs.get_many(principal, [job.job_id for job in jobs.values()])

    # then
    assert {job.job_id for job in page.items} == expected
    assert total == len(expected)
    assert set(found) == expected
    for name, job in jobs.items():
        if name in visible:
            assert await store.jobs.get(principal, job.job_id) == job
        else:
            with pytest.raises(NotFoundError) as caught:
                await store.jobs.get(principal, job.job_id)
            assert caught.value.message == f"job {job.job_id!r} not found"


@pytest.mark.parametrize(
    "action", ["get", "update_progress", "append_logs", "complete", "fail", "retry", "delete",
               "set_access"])
async def test_unreadable_job_is_reported_exactly_like_a_missing_one(
    module_store: Store, shared: dict[str, SecretaryJob], action: str
) -> None:
    # given
    store = module_store
    hidden = shared["private"].job_id

    async def attempt(job_id: str) -> NotFoundError:
        with pytest.raises(NotFoundError) as caught:
            if action == "get":
                await store.jobs.get(CAROL, job_id)
            elif action == "delete":
                await store.jobs.delete(CAROL, job_id)
            elif action == "set_access":
                await store.jobs.set_access(CAROL, job_id, AccessControl())
            else:
                await perform(store, action, CAROL, job_id)
        return caught.value

    before = await raw_job(store, hidden)

    # when
    for_hidden = await attempt(hidden)
    for_missing = await attempt("0d5b3c1e-0000-4000-8000-000000000000")

    # then
    assert id_shape(for_hidden.message, hidden) == id_shape(
        for_missing.message, "0d5b3c1e-0000-4000-8000-000000000000")
    assert type(for_hidden) is type(for_missing)
    assert for_hidden.code == for_missing.code == "NOT_FOUND"
    assert await raw_job(store, hidden) == before


@pytest.mark.parametrize(
    ("principal", "grant", "action"),
    [
        (BOB, "read", "append_logs"),
        (BOB, "read", "fail"),
        (BOB, "read", "delete"),
        (BOB, "read", "set_access"),
        (BOB, "write", "delete"),
        (BOB, "write", "set_access"),
        (CAROL, "public", "fail"),
        (CAROL, "public", "append_logs"),
        (ANON, "public", "fail"),
        (ANON, "public", "delete"),
        (WORKER, "public", "fail"),
    ],
)
async def test_readable_but_not_writable_job_is_forbidden_and_unchanged(
    module_store: Store, shared: dict[str, SecretaryJob], principal: Principal, grant: str,
    action: str,
) -> None:
    # given
    store = module_store
    job = shared[grant]
    before = await raw_job(store, job.job_id)
    assert await store.jobs.get(principal, job.job_id) == job

    # when / then
    with pytest.raises(ForbiddenError) as caught:
        if action == "delete":
            await store.jobs.delete(principal, job.job_id)
        elif action == "set_access":
            await store.jobs.set_access(principal, job.job_id, AccessControl())
        else:
            await perform(store, action, principal, job.job_id)
    assert caught.value.code == "FORBIDDEN"
    assert await raw_job(store, job.job_id) == before


@pytest.mark.parametrize(("grant", "action"), [
    ("write", "append_logs"), ("write", "fail"), ("admin", "fail"), ("admin", "set_access"),
    ("admin", "delete")])
async def test_shared_writer_or_admin_may_change_the_job(
    module_store: Store, shared: dict[str, SecretaryJob], grant: str, action: str
) -> None:
    # given
    store = module_store
    job = shared[grant]

    # when
    if action == "delete":
        await store.jobs.delete(BOB, job.job_id)
    elif action == "set_access":
        await store.jobs.set_access(BOB, job.job_id, AccessControl(admin_access=["bob"]))
    else:
        await perform(store, action, BOB, job.job_id)

    # then
    assert await raw_job(store, job.job_id) != job_to_document(job)


async def test_claiming_worker_may_drive_a_job_it_cannot_otherwise_read(store: Store) -> None:
    # given
    job = await store.jobs.create(ALICE, job_type="pdf")
    with pytest.raises(NotFoundError):
        await store.jobs.get(WORKER, job.job_id)

    # when
    claimed = await store.jobs.claim(WORKER)
    assert claimed is not None
    await store.jobs.update_progress(WORKER, job.job_id, JobProgress(step="s", percent=90))
    done = await store.jobs.complete(WORKER, job.job_id, {"ok": True})

    # then
    assert done.status is JobStatus.COMPLETED
    assert (await store.jobs.get(ALICE, job.job_id)).progress == JobProgress(step="s", percent=90)


async def test_other_worker_may_not_drive_a_job_claimed_by_someone_else(store: Store) -> None:
    # given
    job = await claimed_job(store)
    public = await store.jobs.create(ALICE, job_type="pub",
                                     access_control=AccessControl(AccessVisibility.PUBLIC))
    assert await store.jobs.claim(WORKER, ["pub"]) is not None
    before = await raw_job(store, job.job_id)
    before_public = await raw_job(store, public.job_id)

    # when / then
    with pytest.raises(NotFoundError):
        await store.jobs.complete(OTHER_WORKER, job.job_id, {"stolen": True})
    with pytest.raises(ForbiddenError):
        await store.jobs.complete(OTHER_WORKER, public.job_id, {"stolen": True})
    assert await raw_job(store, job.job_id) == before
    assert await raw_job(store, public.job_id) == before_public
