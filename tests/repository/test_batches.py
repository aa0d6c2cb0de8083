"""The ``batches`` collection: creation with jobs, derived counts and status, access."""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import AsyncIterator
from typing import Any

import pytest

from repository.access import Principal
from repository.batches import (
    BatchFilter,
    JobSpec,
    batch_from_document,
    batch_to_document,
)
from repository.database import Store
from repository.errors import ForbiddenError, NotFoundError, ValidationError
from repository.jobs import JobFilter
from repository.limits import Limits
from repository.models import (
    AccessControl,
    AccessVisibility,
    BatchCounts,
    BatchJob,
    JobStatus,
    SecretaryJob,
    utcnow,
)
from repository.pagination import PageRequest

from .support import (
    ALICE,
    ANON,
    BOB,
    CAROL,
    ROOT,
    WORKER,
    at,
    id_shape,
    pooled,
)

ALL = PageRequest(first=100)


async def batch_jobs(store: Store, batch_id: str) -> list[SecretaryJob]:
    page = await store.jobs.list(ROOT, JobFilter(batch_id=batch_id), ALL)
    return page.items


async def recount(store: Store, batch_id: str) -> BatchCounts:
    """The counts by reading every job of the batch, independently of the aggregation."""
    counts = BatchCounts()
    statuses = Counter([doc["status"] async for doc in store.jobs.collection.find(
        {"batch_id": batch_id}, projection={"status": 1})])
    for status, number in statuses.items():
        counts.add(JobStatus(status), number)
    return counts


# -- BSON mapping ---------------------------------------------------------------------


def test_batch_document_round_trip_gives_equal_batch() -> None:
    # given
    now = utcnow()
    batch = BatchJob(batch_id="b-1", batch_name="invoices", created_at=now, updated_at=now,
                     active=False, owner="alice", version=3, counts=BatchCounts(pending=2),
                     access_control=AccessControl(AccessVisibility.PUBLIC, ["bob"], [], ["alice"]))

    # when
    doc = batch_to_document(batch)
    restored = batch_from_document(doc, BatchCounts(pending=2))

    # then
    assert restored == batch
    assert "jobs" not in doc and "counts" not in doc and "status" not in doc
    assert doc["readers"] == ["*", "bob", "alice"]


def test_batch_from_document_takes_status_from_counts() -> None:
    # given
    batch = BatchJob(batch_id="b-1", batch_name="n")
    counts = BatchCounts(completed=2, failed=1)

    # when
    restored = batch_from_document(batch_to_document(batch), counts)

    # then
    assert restored.counts == counts
    assert restored.status is JobStatus.FAILED


# -- create -------------------------------------------------------------------------------


async def test_create_batch_stores_batch_and_pending_jobs(store: Store) -> None:
    # given
    specs = [JobSpec("pdf", {"file": "a.pdf"}), JobSpec("pdf", {"file": "b.pdf"}),
             JobSpec("session", max_attempts=5)]

    # when
    batch = await store.batches.create(ALICE, batch_name="march invoices", jobs=specs)

    # then
    assert batch.status is JobStatus.PENDING
    assert batch.counts == BatchCounts(pending=3)
    assert batch.owner == "alice" and batch.active is True
    assert batch.access_control == AccessControl(admin_access=["alice"])
    assert [(job.job_type, job.parameters, job.max_attempts) for job in batch.jobs] == [
        ("pdf", {"file": "a.pdf"}, 3), ("pdf", {"file": "b.pdf"}, 3), ("session", {}, 5)]
    assert all(job.batch_id == batch.batch_id for job in batch.jobs)
    stored = await batch_jobs(store, batch.batch_id)
    assert sorted(job.job_id for job in stored) == sorted(job.job_id for job in batch.jobs)
    assert {job.job_id: job for job in stored} == {job.job_id: job for job in batch.jobs}
    loaded = await store.batches.get(ALICE, batch.batch_id)
    assert loaded.counts == BatchCounts(pending=3)
    assert loaded.status is JobStatus.PENDING
    assert loaded.jobs == []  # jobs are not embedded; they are read by batch_id
    assert loaded == BatchJob(**{**vars(batch), "jobs": []})


async def test_create_batch_jobs_take_the_batch_access_unless_given_their_own(
    store: Store,
) -> None:
    # given
    batch_access = AccessControl(read_access=["bob"], write_access=["carol"])
    own = AccessControl(AccessVisibility.PUBLIC, admin_access=["dave"])

    # when
    batch = await store.batches.create(
        ALICE, batch_name="b", access_control=batch_access,
        jobs=[JobSpec("pdf"), JobSpec("pdf", access_control=own)])

    # then
    inherited, separate = batch.jobs
    expected_batch_access = AccessControl(read_access=["bob"], write_access=["carol"],
                                          admin_access=["alice"])
    assert batch.access_control == expected_batch_access
    assert inherited.access_control == expected_batch_access
    assert separate.access_control == AccessControl(AccessVisibility.PUBLIC,
                                                    admin_access=["dave", "alice"])
    assert await store.jobs.get(ANON, separate.job_id) == separate
    with pytest.raises(NotFoundError):
        await store.jobs.get(ANON, inherited.job_id)
    assert await store.jobs.get(BOB, inherited.job_id) == inherited


async def test_create_batch_by_anonymous_is_forbidden_and_stores_nothing(store: Store) -> None:
    # when / then
    with pytest.raises(ForbiddenError):
        await store.batches.create(ANON, batch_name="b", jobs=[JobSpec("pdf")])
    assert await store.batches.collection.count_documents({}) == 0
    assert await store.jobs.collection.count_documents({}) == 0


@pytest.mark.parametrize(
    ("arguments", "field"),
    [
        ({"batch_name": "", "jobs": [JobSpec("pdf")]}, "batchName"),
        ({"batch_name": "n" * 1001, "jobs": [JobSpec("pdf")]}, "batchName"),
        ({"batch_name": "b", "jobs": []}, "jobs"),
        ({"batch_name": "b", "jobs": [JobSpec("pdf")] * 4}, "jobs"),
        ({"batch_name": "b", "jobs": [JobSpec("pdf"), JobSpec("")]}, "jobType"),
        ({"batch_name": "b", "jobs": [JobSpec("pdf"), JobSpec("pdf", {"$x": 1})]}, "parameters"),
        ({"batch_name": "b", "jobs": [JobSpec("pdf"), JobSpec("pdf", max_attempts=0)]},
         "maxAttempts"),
    ],
    ids=["blank-name", "long-name", "no-jobs", "too-many-jobs", "blank-type", "unsafe-params",
         "bad-attempts"],
)
async def test_create_batch_with_invalid_input_stores_nothing(
    store: Store, arguments: dict[str, Any], field: str
) -> None:
    # given
    limited = Store(store.client, store.database_name, Limits(max_jobs_per_batch=3))

    # when / then
    with pytest.raises(ValidationError) as caught:
        await limited.batches.create(ALICE, **arguments)
    assert caught.value.field == field
    assert await store.batches.collection.count_documents({}) == 0
    assert await store.jobs.collection.count_documents({}) == 0


async def test_create_batch_whose_job_insert_fails_leaves_no_job_behind(store: Store) -> None:
    # given a job id that already exists, so the batch's insert_many fails part way
    first = await store.batches.create(ALICE, batch_name="first", jobs=[JobSpec("pdf")])
    taken = first.jobs[0].job_id
    ids = iter(["fresh-1", taken, "fresh-2"])
    original = store.jobs.new_job

    def new_job_with_fixed_ids(*args: Any, **kwargs: Any) -> SecretaryJob:
        job = original(*args, **kwargs)
        job.job_id = next(ids)
        return job

    store.jobs.new_job = new_job_with_fixed_ids  # type: ignore[method-assign]

    # when
    with pytest.raises(Exception, match="duplicate key"):
        await store.batches.create(ALICE, batch_name="second",
                                   jobs=[JobSpec("pdf"), JobSpec("pdf"), JobSpec("pdf")])

    # then
    assert await store.batches.collection.count_documents({}) == 1
    assert [doc["_id"] async for doc in store.jobs.collection.find({})] == [taken]


# -- get / get_many / counts -----------------------------------------------------------


async def test_get_missing_batch_raises_not_found(store: Store) -> None:
    # when / then
    with pytest.raises(NotFoundError) as caught:
        await store.batches.get(ROOT, "nope")
    assert caught.value.message == "batch 'nope' not found"


async def test_get_many_returns_readable_batches_with_their_counts(store: Store) -> None:
    # given
    mine = await store.batches.create(ALICE, batch_name="mine", jobs=[JobSpec("a")] * 2)
    public = await store.batches.create(
        CAROL, batch_name="public", jobs=[JobSpec("a")],
        access_control=AccessControl(AccessVisibility.PUBLIC))
    hidden = await store.batches.create(CAROL, batch_name="hidden", jobs=[JobSpec("a")])
    claimed = await store.jobs.claim(WORKER)
    assert claimed is not None

    # when
    found = await store.batches.get_many(
        ALICE, [mine.batch_id, public.batch_id, hidden.batch_id, "missing"])

    # then
    assert set(found) == {mine.batch_id, public.batch_id}
    for batch_id, batch in found.items():
        assert batch.counts == await recount(store, batch_id)
        assert batch.status is batch.counts.status()
    assert await store.batches.get_many(ALICE, []) == {}
    assert await store.batches.get_many(ALICE, ["missing"]) == {}


async def test_counts_of_batches_without_jobs_are_zero(store: Store) -> None:
    # given
    batch = await store.batches.create(ALICE, batch_name="b", jobs=[JobSpec("a")] * 3)

    # when
    counts = await store.batches.counts([batch.batch_id, "no-such-batch"])

    # then
    assert counts == {batch.batch_id: BatchCounts(pending=3), "no-such-batch": BatchCounts()}


# -- list / count ----------------------------------------------------------------------------


async def test_list_batches_filters_by_active_and_created_range(store: Store) -> None:
    # given five batches at known instants, the odd ones deactivated
    batches = []
    for i in range(5):
        batch = await store.batches.create(ALICE, batch_name=f"b{i}", jobs=[JobSpec("a")])
        await store.batches.collection.update_one(
            {"_id": batch.batch_id}, {"$set": {"created_at": at(i * 1000)}})
        if i % 2:
            await store.batches.set_active(ALICE, batch.batch_id, False)
        batches.append(batch.batch_id)
    cases = [
        (BatchFilter(), [4, 3, 2, 1, 0]),
        (BatchFilter(active=True), [4, 2, 0]),
        (BatchFilter(active=False), [3, 1]),
        (BatchFilter(created_after=at(1000)), [4, 3, 2]),
        (BatchFilter(created_before=at(3000)), [2, 1, 0]),
        (BatchFilter(active=True, created_after=at(0), created_before=at(4000)), [2]),
    ]

    for batch_filter, expected in cases:
        # when
        page = await store.batches.list(ALICE, batch_filter, ALL)
        total = await store.batches.count(ALICE, batch_filter)

        # then
        assert [b.batch_id for b in page.items] == [batches[i] for i in expected], batch_filter
        assert total == len(expected)
        assert all(b.counts == BatchCounts(pending=1) for b in page.items)
        assert all(b.status is JobStatus.PENDING for b in page.items)


async def test_list_batches_loads_each_batch_counts(store: Store) -> None:
    # given
    busy = await store.batches.create(ALICE, batch_name="busy", jobs=[JobSpec("busy")] * 3)
    idle = await store.batches.create(ALICE, batch_name="idle", jobs=[JobSpec("idle")] * 2)
    job = await store.jobs.claim(WORKER, ["busy"])
    assert job is not None
    await store.jobs.complete(WORKER, job.job_id)

    # when
    page = await store.batches.list(ALICE, BatchFilter(), ALL)

    # then
    by_id = {batch.batch_id: batch for batch in page.items}
    assert by_id[busy.batch_id].counts == BatchCounts(pending=2, completed=1)
    assert by_id[busy.batch_id].status is JobStatus.PROCESSING
    assert by_id[idle.batch_id].counts == BatchCounts(pending=2)
    assert by_id[idle.batch_id].status is JobStatus.PENDING


# -- status through the lifecycle ----------------------------------------------------------


async def test_batch_status_follows_its_jobs_through_the_lifecycle(store: Store) -> None:
    # given
    batch = await store.batches.create(ALICE, batch_name="b", jobs=[JobSpec("a")] * 2)

    async def status() -> tuple[JobStatus, BatchCounts]:
        loaded = await store.batches.get(ALICE, batch.batch_id)
        return loaded.status, loaded.counts

    # when / then
    assert await status() == (JobStatus.PENDING, BatchCounts(pending=2))
    first = await store.jobs.claim(WORKER)
    assert first is not None
    (second,) = [job for job in batch.jobs if job.job_id != first.job_id]
    assert await status() == (JobStatus.PROCESSING, BatchCounts(pending=1, processing=1))
    await store.jobs.complete(WORKER, first.job_id)
    assert await status() == (JobStatus.PROCESSING, BatchCounts(pending=1, completed=1))
    await store.jobs.fail(ALICE, second.job_id, code="E", message="bad input")
    assert await status() == (JobStatus.FAILED, BatchCounts(completed=1, failed=1))
    await store.jobs.retry(ALICE, second.job_id)
    assert await status() == (JobStatus.PROCESSING, BatchCounts(pending=1, completed=1))
    await store.jobs.claim(WORKER)
    await store.jobs.complete(WORKER, second.job_id)
    assert await status() == (JobStatus.COMPLETED, BatchCounts(completed=2))
    await store.jobs.delete(ALICE, second.job_id)
    assert await status() == (JobStatus.COMPLETED, BatchCounts(completed=1))


@pytest.fixture
async def concurrent(store: Store, mongo_uri: str) -> AsyncIterator[Store]:
    """``store``'s database through a client with a small pool (see ``pooled``)."""
    async with pooled(store, mongo_uri) as shared:
        yield shared


async def test_batch_counts_stay_right_through_concurrent_transitions(
    concurrent: Store,
) -> None:
    # given a batch of 40 jobs of one attempt each; job n fails when n % 4 == 0 (for good),
    # else it completes (all through one client with a small pool, see ``pooled``)
    store = concurrent
    batch = await store.batches.create(
        ALICE, batch_name="mixed",
        jobs=[JobSpec("mix", {"n": n}, max_attempts=1) for n in range(40)])
    workers = [Principal(f"w{i}", WORKER.roles) for i in range(8)]
    other = await store.batches.create(ALICE, batch_name="other", jobs=[JobSpec("other")] * 4)

    async def settle(job: SecretaryJob) -> SecretaryJob:
        worker = Principal(job.claimed_by, WORKER.roles)
        if job.parameters["n"] % 4 == 0:
            return await store.jobs.fail(worker, job.job_id, code="E", message="odd input")
        return await store.jobs.complete(worker, job.job_id, {"n": job.parameters["n"]})

    async def check(expected: BatchCounts) -> None:
        loaded = await store.batches.get(ALICE, batch.batch_id)
        assert loaded.counts == expected
        assert loaded.counts == await recount(store, batch.batch_id)
        assert loaded.status is expected.status()
        assert (await store.batches.get(ALICE, other.batch_id)).counts == BatchCounts(pending=4)

    # when 16 jobs are claimed at once
    first = await asyncio.gather(*(store.jobs.claim(w, ["mix"]) for w in workers * 2))
    first_jobs = [job for job in first if job is not None]
    assert len(first_jobs) == 16

    # then
    await check(BatchCounts(pending=24, processing=16))

    # when those settle while the rest are claimed, then counted, concurrently
    settled, claimed, counted = await asyncio.gather(
        asyncio.gather(*(settle(job) for job in first_jobs)),
        asyncio.gather(*(store.jobs.claim(w, ["mix"]) for w in workers * 3)),
        asyncio.gather(*(store.batches.get(ALICE, batch.batch_id) for _ in range(5))),
    )
    rest = [job for job in claimed if job is not None]
    assert len(rest) == 24

    # then every snapshot taken meanwhile was a possible state of the batch
    for snapshot in counted:
        assert snapshot.counts.total == 40
        assert snapshot.status is JobStatus.PROCESSING
    failed_first = sum(1 for job in settled if job.status is JobStatus.FAILED)
    await check(BatchCounts(processing=24, completed=16 - failed_first, failed=failed_first))

    # when everything settles at once
    await asyncio.gather(*(settle(job) for job in rest))

    # then
    await check(BatchCounts(completed=30, failed=10))
    assert (await store.batches.get(ALICE, batch.batch_id)).status is JobStatus.FAILED

    # when the failures are retried and completed concurrently
    failed = (await store.jobs.list(ALICE, JobFilter(batch_id=batch.batch_id,
                                                     status=JobStatus.FAILED), ALL)).items
    await asyncio.gather(*(store.jobs.retry(ALICE, job.job_id) for job in failed))
    await check(BatchCounts(pending=10, completed=30))
    again = await asyncio.gather(*(store.jobs.claim(w, ["mix"]) for w in workers * 2))
    await asyncio.gather(*(store.jobs.complete(Principal(job.claimed_by, WORKER.roles),
                                               job.job_id) for job in again if job is not None))

    # then
    await check(BatchCounts(completed=40))
    assert (await store.batches.get(ALICE, batch.batch_id)).status is JobStatus.COMPLETED


# -- set_active / set_access / access ------------------------------------------------------


async def test_set_active_by_writer_changes_the_flag(store: Store) -> None:
    # given
    batch = await store.batches.create(ALICE, batch_name="b", jobs=[JobSpec("a")],
                                       access_control=AccessControl(write_access=["bob"]))

    # when
    inactive = await store.batches.set_active(BOB, batch.batch_id, False)

    # then
    assert inactive.active is False
    assert inactive.counts == BatchCounts(pending=1)
    assert inactive.updated_at >= batch.updated_at
    assert (await store.batches.get(ALICE, batch.batch_id)).active is False
    assert (await store.batches.set_active(ALICE, batch.batch_id, True)).active is True


async def test_set_access_by_admin_replaces_access_and_readers(store: Store) -> None:
    # given
    batch = await store.batches.create(ALICE, batch_name="b", jobs=[JobSpec("a")])
    with pytest.raises(NotFoundError):
        await store.batches.get(ANON, batch.batch_id)
    access = AccessControl(AccessVisibility.PUBLIC, admin_access=["alice"])

    # when
    changed = await store.batches.set_access(ALICE, batch.batch_id, access)

    # then
    assert changed.access_control == access
    assert (await store.batches.get(ANON, batch.batch_id)).access_control == access
    doc = await store.batches.collection.find_one({"_id": batch.batch_id})
    assert doc is not None and doc["readers"] == ["*", "alice"]


GRANTS = {
    "public": AccessControl(AccessVisibility.PUBLIC),
    "private": AccessControl(),
    "read": AccessControl(read_access=["bob"]),
    "write": AccessControl(write_access=["bob"]),
    "admin": AccessControl(admin_access=["bob"]),
}


async def share(store: Store) -> dict[str, str]:
    """Batch ids by how alice shared them with bob."""
    ids = {}
    for name, access in GRANTS.items():
        batch = await store.batches.create(ALICE, batch_name=name, jobs=[JobSpec("a")],
                                           access_control=access)
        ids[name] = batch.batch_id
    return ids




@pytest.mark.parametrize(
    ("principal", "visible"),
    [
        (ALICE, {"public", "private", "read", "write", "admin"}),
        (BOB, {"public", "read", "write", "admin"}),
        (CAROL, {"public"}),
        (ANON, {"public"}),
        (ROOT, {"public", "private", "read", "write", "admin"}),
        (WORKER, {"public"}),
    ],
    ids=["creator", "shared", "stranger", "anonymous", "admin-role", "worker"],
)
async def test_read_filter_shows_exactly_the_readable_batches(
    readable: tuple[Store, dict[str, str]], principal: Principal, visible: set[str]
) -> None:
    # given
    store, ids = readable
    expected = {ids[name] for name in visible}

    # when
    page = await store.batches.list(principal, BatchFilter(), ALL)
    total = await store.batches.count(principal, BatchFilter())
    found = await store.batches.get_many(principal, list(ids.values()))

    # then
    assert {batch.batch_id for batch in page.items} == expected
    assert total == len(expected)
    assert set(found) == expected
    for name, batch_id in ids.items():
        if name in visible:
            assert (await store.batches.get(principal, batch_id)).batch_id == batch_id
        else:
            with pytest.raises(NotFoundError) as caught:
                await store.batches.get(principal, batch_id)
            assert caught.value.message == f"batch {batch_id!r} not found"


@pytest.mark.parametrize("action", ["get", "set_active", "set_access"])
async def test_unreadable_batch_is_reported_exactly_like_a_missing_one(
    module_store: Store, shared: dict[str, str], action: str
) -> None:
    # given
    store = module_store
    hidden = shared["private"]
    missing = "9f1c0000-0000-4000-8000-000000000000"

    async def attempt(batch_id: str) -> NotFoundError:
        with pytest.raises(NotFoundError) as caught:
            if action == "get":
                await store.batches.get(CAROL, batch_id)
            elif action == "set_active":
                await store.batches.set_active(CAROL, batch_id, False)
            else:
                await store.batches.set_access(CAROL, batch_id, AccessControl())
        return caught.value

    before = await store.batches.collection.find_one({"_id": hidden})

    # when
    for_hidden = await attempt(hidden)
    for_missing = await attempt(missing)

    # then
    assert id_shape(for_hidden.message, hidden) == id_shape(for_missing.message, missing)
    assert await store.batches.collection.find_one({"_id": hidden}) == before


@pytest.mark.parametrize(
    ("principal", "grant", "action"),
    [
        (BOB, "read", "set_active"),
        (BOB, "read", "set_access"),
        (BOB, "write", "set_access"),
        (CAROL, "public", "set_active"),
        (ANON, "public", "set_active"),
    ],
)
async def test_readable_but_not_writable_batch_is_forbidden_and_unchanged(
    module_store: Store, shared: dict[str, str], principal: Any, grant: str, action: str
) -> None:
    # given
    store = module_store
    batch_id = shared[grant]
    before = await store.batches.collection.find_one({"_id": batch_id})

    # when / then
    with pytest.raises(ForbiddenError):
        if action == "set_active":
            await store.batches.set_active(principal, batch_id, False)
        else:
            await store.batches.set_access(principal, batch_id, AccessControl())
    assert await store.batches.collection.find_one({"_id": batch_id}) == before


async def test_shared_admin_may_change_batch_access(
    module_store: Store, shared: dict[str, str]
) -> None:
    # given
    store = module_store

    # when
    changed = await store.batches.set_access(BOB, shared["admin"],
                                             AccessControl(admin_access=["bob"]))

    # then
    assert changed.access_control == AccessControl(admin_access=["bob"])
    with pytest.raises(NotFoundError):
        await store.batches.get(ALICE, shared["admin"])
