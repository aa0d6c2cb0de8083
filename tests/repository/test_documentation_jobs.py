"""The ``documentation_jobs`` collection: persistence, lifecycle, statistics, files, access."""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

import pytest

from repository.access import Principal
from repository.database import Store
from repository.documentation_jobs import (
    DocumentationJobFilter,
    documentation_job_from_document,
    documentation_job_to_document,
)
from repository.errors import (
    ForbiddenError,
    InvalidTransitionError,
    NotFoundError,
    ValidationError,
)
from repository.limits import Limits
from repository.models import (
    DOCUMENTATION_TRANSITIONS,
    AccessControl,
    AccessVisibility,
    DocumentationJob,
    DocumentationJobStatus,
    GenerationOptions,
    JobStatistics,
    LLMConfig,
    utcnow,
)
from repository.pagination import PageRequest
from repository.retry import Backoff, RetryPolicy

from .support import (
    ALICE,
    ANON,
    BOB,
    CAROL,
    ROOT,
    WORKER,
    at,
    id_shape,
)

ALL = PageRequest(first=100)
LLM = LLMConfig(main_model="gpt-4", cluster_model="gpt-3.5-turbo",
                base_url="https://api.openai.com/v1")
OPTIONS = GenerationOptions(create_branch=True, github_pages=True, custom_output="site")


async def create(store: Store, principal: Principal = ALICE, **fields: Any) -> DocumentationJob:
    arguments = {"repository_path": "/srv/repo", "repository_name": "repo",
                 "output_directory": "/srv/docs", **fields}
    return await store.documentation_jobs.create(principal, **arguments)


async def raw(store: Store, job_id: str) -> dict[str, Any] | None:
    return await store.documentation_jobs.collection.find_one({"_id": job_id})


async def in_status(store: Store, status: DocumentationJobStatus) -> DocumentationJob:
    """A job alice created, moved to ``status`` through the repository."""
    job = await create(store)
    repo = store.documentation_jobs
    if status is DocumentationJobStatus.PENDING:
        return job
    if status is DocumentationJobStatus.FAILED:
        return await repo.fail(ALICE, job.job_id, "setup failure")
    job = await repo.start(ALICE, job.job_id)
    if status is DocumentationJobStatus.COMPLETED:
        job = await repo.complete(ALICE, job.job_id)
    return job


def iso(value: str | None) -> datetime:
    assert value is not None
    return datetime.fromisoformat(value)


# -- BSON mapping ------------------------------------------------------------------------


def test_documentation_job_document_round_trip_gives_equal_job() -> None:
    # given
    job = DocumentationJob(
        repository_path="/r", repository_name="r", output_directory="/o", commit_hash="abc",
        branch_name="main", status=DocumentationJobStatus.FAILED, error_message="boom",
        timestamp_start="2025-01-01T00:00:00+00:00", timestamp_end="2025-01-01T00:01:00+00:00",
        files_generated=["a.md"], module_count=1, generation_options=OPTIONS, llm_config=LLM,
        statistics=JobStatistics(1, 2, 3, 4), owner="alice", version=5,
        access_control=AccessControl(AccessVisibility.PUBLIC, ["bob"], [], ["alice"]))

    # when
    doc = documentation_job_to_document(job)
    restored = documentation_job_from_document(doc)

    # then
    assert restored == job
    assert doc["_id"] == job.job_id and "job_id" not in doc
    assert doc["status"] == "FAILED"
    assert doc["readers"] == ["*", "bob", "alice"]


async def test_a_job_without_a_retry_policy_takes_the_configured_default(
        store: Store) -> None:
    # given: a server configured as JOBGRAPH_DEFAULT_MAX_ATTEMPTS=4, JOBGRAPH_RETRY_*
    configured = Store(store.client, store.database_name, Limits(
        default_max_attempts=4, retry_backoff=Backoff.FIXED, retry_base_seconds=20.0,
        retry_cap_seconds=60.0))

    # when
    job = await create(configured)

    # then: the same default a job gets
    assert job.retry_policy == RetryPolicy(4, Backoff.FIXED, 20.0, 60.0)
    assert job.retry_policy == configured.limits.retry_policy
    assert (await raw(store, job.job_id) or {})["retry_policy"]["base_seconds"] == 20.0


def claimed_job() -> DocumentationJob:
    """A job on its second attempt, its first lost to a lapsed lease, under its own policy."""
    return DocumentationJob(
        repository_path="/r", repository_name="r", output_directory="/o",
        status=DocumentationJobStatus.RUNNING, claimed_by="worker-1", claim_token="t",
        lease_expires_at=at(300_000), attempts=2, run_at=at(0), former_workers=["worker-0"],
        retry_policy=RetryPolicy(5, Backoff.FIXED, 1.5, 10.0),
        previous_errors=[{"code": "LEASE_EXPIRED", "message": "m", "attempt": 1,
                          "worker": "worker-0", "failed_at": at(5).isoformat()}])


def test_claimed_documentation_job_round_trips_through_bson_and_json() -> None:
    job = claimed_job()

    assert documentation_job_from_document(documentation_job_to_document(job)) == job
    assert DocumentationJob.from_dict(json.loads(job.to_json())) == job
    assert documentation_job_to_document(job)["retry_policy"] == {
        "max_attempts": 5, "backoff": "FIXED", "base_seconds": 1.5, "cap_seconds": 10.0}


def test_documentation_job_document_with_fields_of_a_newer_release_still_reads() -> None:
    """So that a release reads what the next one stores (a rolling upgrade)."""
    job = claimed_job()

    assert documentation_job_from_document(
        {**documentation_job_to_document(job), "priority": 7}) == job


async def test_documentation_job_stored_and_read_back_gives_equal_job(store: Store) -> None:
    # given
    job = DocumentationJob(repository_path="/r", repository_name="r", output_directory="/o",
                           created_at=at(0), updated_at=at(5), llm_config=LLM,
                           access_control=AccessControl(admin_access=["alice"]))

    # when
    await store.documentation_jobs.collection.insert_one(documentation_job_to_document(job))
    stored = await raw(store, job.job_id)

    # then
    assert stored is not None
    assert documentation_job_from_document(stored) == job
    assert await store.documentation_jobs.get(ALICE, job.job_id) == job


# -- create / get --------------------------------------------------------------------------


async def test_create_documentation_job_stores_it_with_creator_as_admin(store: Store) -> None:
    # when
    job = await create(store, commit_hash="4f2a9c1", branch_name="docs", llm_config=LLM,
                       generation_options=OPTIONS,
                       access_control=AccessControl(read_access=["bob"]))

    # then
    assert job.status is DocumentationJobStatus.PENDING
    assert job.owner == "alice"
    assert job.access_control == AccessControl(read_access=["bob"], admin_access=["alice"])
    assert (job.llm_config, job.generation_options) == (LLM, OPTIONS)
    assert (job.timestamp_start, job.timestamp_end, job.error_message) == (None, None, None)
    assert await store.documentation_jobs.get(ALICE, job.job_id) == job
    assert await store.documentation_jobs.get(BOB, job.job_id) == job


async def test_create_documentation_job_by_anonymous_is_forbidden(store: Store) -> None:
    # when / then
    with pytest.raises(ForbiddenError):
        await create(store, ANON)
    assert await store.documentation_jobs.collection.count_documents({}) == 0


@pytest.mark.parametrize(
    ("fields", "field"),
    [
        ({"repository_path": ""}, "repositoryPath"),
        ({"repository_name": " "}, "repositoryName"),
        ({"output_directory": "o" * 1001}, "outputDirectory"),
        ({"commit_hash": "c" * 1001}, "commitHash"),
        ({"branch_name": "a\x00b"}, "branchName"),
        ({"generation_options": GenerationOptions(custom_output="x" * 1001)}, "customOutput"),
        ({"llm_config": LLMConfig(main_model="", cluster_model="m", base_url="u")},
         "main_model"),
    ],
)
async def test_create_documentation_job_with_invalid_input_stores_nothing(
    store: Store, fields: dict[str, Any], field: str
) -> None:
    # when / then
    with pytest.raises(ValidationError) as caught:
        await create(store, **fields)
    assert caught.value.field == field
    assert await store.documentation_jobs.collection.count_documents({}) == 0


async def test_get_missing_documentation_job_raises_not_found(store: Store) -> None:
    # when / then
    with pytest.raises(NotFoundError) as caught:
        await store.documentation_jobs.get(ROOT, "nope")
    assert caught.value.message == "documentation job 'nope' not found"


# -- list / count ------------------------------------------------------------------------------


async def test_list_documentation_jobs_filters_by_status_repository_and_created_range(
    store: Store,
) -> None:
    # given six jobs at known instants over two repositories and three statuses
    statuses = [DocumentationJobStatus.PENDING, DocumentationJobStatus.RUNNING,
                DocumentationJobStatus.FAILED]
    jobs = [DocumentationJob(repository_path=f"/r{i}", repository_name=("alpha", "beta")[i % 2],
                             output_directory="/o", status=statuses[i % 3], created_at=at(i),
                             updated_at=at(i), access_control=AccessControl(admin_access=["alice"]))
            for i in range(6)]
    await store.documentation_jobs.collection.insert_many(
        [documentation_job_to_document(job) for job in jobs])
    cases = [
        (DocumentationJobFilter(), [5, 4, 3, 2, 1, 0]),
        (DocumentationJobFilter(status=DocumentationJobStatus.RUNNING), [4, 1]),
        (DocumentationJobFilter(status=DocumentationJobStatus.COMPLETED), []),
        (DocumentationJobFilter(repository_name="alpha"), [4, 2, 0]),
        (DocumentationJobFilter(repository_name="gamma"), []),
        (DocumentationJobFilter(created_after=at(1), created_before=at(5)), [4, 3, 2]),
        (DocumentationJobFilter(status=DocumentationJobStatus.PENDING, repository_name="beta"),
         [3]),
    ]

    for job_filter, expected in cases:
        # when
        page = await store.documentation_jobs.list(ALICE, job_filter, ALL)
        total = await store.documentation_jobs.count(ALICE, job_filter)

        # then
        assert page.items == [jobs[i] for i in expected], job_filter
        assert total == len(expected)


# -- lifecycle ------------------------------------------------------------------------------------


async def test_start_pending_job_sets_running_and_start_timestamp(store: Store) -> None:
    # given
    job = await create(store)
    before = utcnow()

    # when
    started = await store.documentation_jobs.start(ALICE, job.job_id)

    # then
    assert started.status is DocumentationJobStatus.RUNNING
    assert before <= iso(started.timestamp_start) <= utcnow()
    assert started.timestamp_end is None
    assert started.updated_at >= before
    assert await store.documentation_jobs.get(ALICE, job.job_id) == started


async def test_complete_running_job_sets_completed_and_end_timestamp(store: Store) -> None:
    # given
    job = await in_status(store, DocumentationJobStatus.RUNNING)
    before = utcnow()

    # when
    done = await store.documentation_jobs.complete(ALICE, job.job_id)

    # then
    assert done.status is DocumentationJobStatus.COMPLETED
    assert before <= iso(done.timestamp_end) <= utcnow()
    assert done.timestamp_start == job.timestamp_start
    assert done.error_message is None
    assert await store.documentation_jobs.get(ALICE, job.job_id) == done


@pytest.mark.parametrize(
    "status", [DocumentationJobStatus.PENDING, DocumentationJobStatus.RUNNING])
async def test_fail_unfinished_job_sets_failed_error_message_and_end_timestamp(
    store: Store, status: DocumentationJobStatus
) -> None:
    # given
    job = await in_status(store, status)
    before = utcnow()

    # when
    failed = await store.documentation_jobs.fail(ALICE, job.job_id, "LLM quota exceeded")

    # then
    assert failed.status is DocumentationJobStatus.FAILED
    assert failed.error_message == "LLM quota exceeded"
    assert before <= iso(failed.timestamp_end) <= utcnow()
    assert await store.documentation_jobs.get(ALICE, job.job_id) == failed


@pytest.mark.parametrize("message", ["", "m" * 4097])
async def test_fail_with_invalid_message_is_refused_and_changes_nothing(
    store: Store, message: str
) -> None:
    # given
    job = await in_status(store, DocumentationJobStatus.RUNNING)
    before = await raw(store, job.job_id)

    # when / then
    with pytest.raises(ValidationError) as caught:
        await store.documentation_jobs.fail(ALICE, job.job_id, message)
    assert caught.value.field == "errorMessage"
    assert await raw(store, job.job_id) == before


@pytest.mark.parametrize("action", ["start", "complete", "fail"])
async def test_transitions_follow_the_model_rules_and_refusals_change_nothing(
    store: Store, action: str
) -> None:
    # given one job in every status
    jobs = {status: await in_status(store, status) for status in DocumentationJobStatus}
    allowed, target = DOCUMENTATION_TRANSITIONS[action]

    for status, job in jobs.items():
        before = await raw(store, job.job_id)
        model = DocumentationJob.from_dict(job.to_dict())
        args = ("boom",) if action == "fail" else ()

        # when
        try:
            moved = await getattr(store.documentation_jobs, action)(ALICE, job.job_id, *args)
        except InvalidTransitionError as refused:
            # then the model refuses it too, and the stored job is untouched
            with pytest.raises(InvalidTransitionError):
                getattr(model, action)(*args)
            assert status not in allowed
            assert status.value in refused.message
            assert await raw(store, job.job_id) == before
        else:
            getattr(model, action)(*args)
            assert status in allowed
            assert moved.status is target is model.status
            assert moved.error_message == model.error_message


async def test_complete_job_never_started_is_refused_and_changes_nothing(store: Store) -> None:
    # given
    job = await create(store)
    before = await raw(store, job.job_id)

    # when / then
    with pytest.raises(InvalidTransitionError) as caught:
        await store.documentation_jobs.complete(ALICE, job.job_id)
    assert caught.value.message == (
        f"cannot complete documentation job {job.job_id!r}: it is PENDING")
    assert await raw(store, job.job_id) == before


# -- statistics and generated files ------------------------------------------------------------


async def test_set_statistics_stores_them(store: Store) -> None:
    # given
    job = await in_status(store, DocumentationJobStatus.RUNNING)
    statistics = JobStatistics(total_files_analyzed=120, leaf_nodes=40, max_depth=6,
                               total_tokens_used=250_000)

    # when
    updated = await store.documentation_jobs.set_statistics(ALICE, job.job_id, statistics)

    # then
    assert updated.statistics == statistics
    assert updated.status is DocumentationJobStatus.RUNNING
    assert (await store.documentation_jobs.get(ALICE, job.job_id)).statistics == statistics


async def test_add_generated_files_appends_without_duplicates_and_sets_module_count(
    store: Store,
) -> None:
    # given
    job = await in_status(store, DocumentationJobStatus.RUNNING)

    # when
    first = await store.documentation_jobs.add_generated_files(
        ALICE, job.job_id, ["index.md", "core.md"])
    second = await store.documentation_jobs.add_generated_files(
        ALICE, job.job_id, ["core.md", "api.md", "api.md"], module_count=3)
    third = await store.documentation_jobs.add_generated_files(
        ALICE, job.job_id, [], module_count=4)

    # then
    assert first.files_generated == ["index.md", "core.md"]
    assert first.module_count == 0
    assert second.files_generated == ["index.md", "core.md", "api.md"]
    assert second.module_count == 3
    assert third.files_generated == second.files_generated
    assert third.module_count == 4
    assert await store.documentation_jobs.get(ALICE, job.job_id) == third


@pytest.mark.parametrize(
    ("files", "module_count", "field"),
    [
        ([], None, "files"),
        (["a.md", "b.md", "c.md"], None, "files"),
        (["a.md", ""], None, "files"),
        (["f" * 1001], None, "files"),
        (["a.md"], -1, "moduleCount"),
    ],
    ids=["nothing", "too-many", "blank", "too-long", "negative-count"],
)
async def test_add_generated_files_with_invalid_input_changes_nothing(
    store: Store, files: list[str], module_count: int | None, field: str
) -> None:
    # given
    limited = Store(store.client, store.database_name, Limits(max_generated_files_per_call=2))
    job = await create(limited)
    before = await raw(store, job.job_id)

    # when / then
    with pytest.raises(ValidationError) as caught:
        await limited.documentation_jobs.add_generated_files(ALICE, job.job_id, files,
                                                             module_count)
    assert caught.value.field == field
    assert await raw(store, job.job_id) == before


# -- delete / set_access / access rules ---------------------------------------------------------


async def test_delete_documentation_job_by_admin_removes_it(store: Store) -> None:
    # given
    job = await create(store)

    # when
    deleted = await store.documentation_jobs.delete(ALICE, job.job_id)

    # then
    assert deleted == job
    assert await raw(store, job.job_id) is None
    with pytest.raises(NotFoundError):
        await store.documentation_jobs.get(ALICE, job.job_id)


async def test_set_access_by_admin_replaces_access_and_readers(store: Store) -> None:
    # given
    job = await create(store)
    access = AccessControl(AccessVisibility.PUBLIC, admin_access=["alice"])

    # when
    changed = await store.documentation_jobs.set_access(ALICE, job.job_id, access)

    # then
    assert changed.access_control == access
    assert await store.documentation_jobs.get(ANON, job.job_id) == changed
    doc = await raw(store, job.job_id)
    assert doc is not None and doc["readers"] == ["*", "alice"]


GRANTS = {
    "public": AccessControl(AccessVisibility.PUBLIC),
    "private": AccessControl(),
    "read": AccessControl(read_access=["bob"]),
    "write": AccessControl(write_access=["bob"]),
    "admin": AccessControl(admin_access=["bob"]),
}


async def share(store: Store) -> dict[str, DocumentationJob]:
    return {name: await create(store, access_control=access) for name, access in GRANTS.items()}




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
async def test_read_filter_shows_exactly_the_readable_documentation_jobs(
    readable: tuple[Store, dict[str, DocumentationJob]], principal: Principal,
    visible: set[str],
) -> None:
    # given
    store, jobs = readable
    expected = {jobs[name].job_id for name in visible}

    # when
    page = await store.documentation_jobs.list(principal, DocumentationJobFilter(), ALL)
    total = await store.documentation_jobs.count(principal, DocumentationJobFilter())

    # then
    assert {job.job_id for job in page.items} == expected
    assert total == len(expected)
    for name, job in jobs.items():
        if name in visible:
            assert await store.documentation_jobs.get(principal, job.job_id) == job
        else:
            with pytest.raises(NotFoundError) as caught:
                await store.documentation_jobs.get(principal, job.job_id)
            assert caught.value.message == f"documentation job {job.job_id!r} not found"


async def call(store: Store, action: str, principal: Principal, job_id: str) -> Any:
    repo = store.documentation_jobs
    if action == "get":
        return await repo.get(principal, job_id)
    if action in ("start", "complete", "delete"):
        return await getattr(repo, action)(principal, job_id)
    if action == "fail":
        return await repo.fail(principal, job_id, "boom")
    if action == "set_statistics":
        return await repo.set_statistics(principal, job_id, JobStatistics(1, 1, 1, 1))
    if action == "add_generated_files":
        return await repo.add_generated_files(principal, job_id, ["x.md"])
    assert action == "set_access"
    return await repo.set_access(principal, job_id, AccessControl())


@pytest.mark.parametrize("action", ["get", "start", "complete", "fail", "set_statistics",
                                    "add_generated_files", "delete", "set_access"])
async def test_unreadable_documentation_job_is_reported_exactly_like_a_missing_one(
    module_store: Store, shared: dict[str, DocumentationJob], action: str
) -> None:
    # given
    store = module_store
    hidden = shared["private"].job_id
    missing = "c0ffee00-0000-4000-8000-000000000000"
    before = await raw(store, hidden)

    # when
    with pytest.raises(NotFoundError) as for_hidden:
        await call(store, action, CAROL, hidden)
    with pytest.raises(NotFoundError) as for_missing:
        await call(store, action, CAROL, missing)

    # then
    assert id_shape(for_hidden.value.message, hidden) == id_shape(for_missing.value.message,
                                                                  missing)
    assert await raw(store, hidden) == before


@pytest.mark.parametrize(
    ("principal", "grant", "action"),
    [
        (BOB, "read", "start"),
        (BOB, "read", "fail"),
        (BOB, "read", "set_statistics"),
        (BOB, "read", "add_generated_files"),
        (BOB, "read", "delete"),
        (BOB, "write", "delete"),
        (BOB, "write", "set_access"),
        (CAROL, "public", "start"),
        (ANON, "public", "start"),
        (WORKER, "public", "add_generated_files"),
    ],
)
async def test_readable_but_not_writable_documentation_job_is_forbidden_and_unchanged(
    module_store: Store, shared: dict[str, DocumentationJob], principal: Principal, grant: str,
    action: str,
) -> None:
    # given
    store = module_store
    job = shared[grant]
    before = await raw(store, job.job_id)

    # when / then
    with pytest.raises(ForbiddenError):
        await call(store, action, principal, job.job_id)
    assert await raw(store, job.job_id) == before


@pytest.mark.parametrize("action", ["start", "set_statistics", "add_generated_files"])
async def test_shared_writer_may_drive_the_documentation_job(
    module_store: Store, shared: dict[str, DocumentationJob], action: str
) -> None:
    # given
    store = module_store
    job = shared["write"]
    before = await raw(store, job.job_id)

    # when
    changed = await call(store, action, BOB, job.job_id)

    # then
    assert await raw(store, job.job_id) != before
    assert await store.documentation_jobs.get(ALICE, job.job_id) == changed
