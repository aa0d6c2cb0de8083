"""The seeds' model rules, without a database."""

from __future__ import annotations

import copy
import json
from datetime import UTC, datetime

import pytest

from repository.errors import InvalidTransitionError, ValidationError
from repository.models import (
    DOCUMENTATION_TRANSITIONS,
    LOG_LEVELS,
    MAX_ACCESS_LIST,
    MAX_USER_ID_LENGTH,
    AccessControl,
    AccessVisibility,
    BatchCounts,
    DocumentationJob,
    DocumentationJobStatus,
    GenerationOptions,
    JobProgress,
    JobStatistics,
    JobStatus,
    LLMConfig,
    LogEntry,
    SecretaryJob,
    utcnow,
)

SEED_LOG_LEVELS = ("debug", "info", "warning", "error", "critical")
ACCESS_LISTS = ("read_access", "write_access", "admin_access")


def full_documentation_job() -> DocumentationJob:
    return DocumentationJob(
        repository_path="/srv/repos/codewiki",
        repository_name="codewiki",
        output_directory="/srv/docs/codewiki",
        commit_hash="4f2a9c1",
        branch_name="docs/update",
        files_generated=["index.md", "modules/core.md"],
        module_count=2,
        generation_options=GenerationOptions(
            create_branch=True, github_pages=True, no_cache=True, custom_output="site"
        ),
        llm_config=LLMConfig(
            main_model="gpt-4", cluster_model="gpt-3.5-turbo", base_url="https://llm.example/v1"
        ),
        statistics=JobStatistics(
            total_files_analyzed=40, leaf_nodes=12, max_depth=5, total_tokens_used=90_000
        ),
        access_control=AccessControl(
            AccessVisibility.PUBLIC, read_access=["bob"], admin_access=["alice"]
        ),
        owner="alice",
    )


def documentation_job_in(status: DocumentationJobStatus) -> DocumentationJob:
    job = DocumentationJob(repository_path="/r", repository_name="r", output_directory="/o")
    job.status = status
    return job


def parse_iso(value: str | None) -> datetime:
    assert value is not None
    parsed = datetime.fromisoformat(value)
    assert parsed.tzinfo is not None
    return parsed


# -- utcnow -------------------------------------------------------------------


def test_utcnow_returns_aware_utc_truncated_to_milliseconds() -> None:
    # when
    now = utcnow()

    # then
    assert now.tzinfo is UTC
    assert now.microsecond % 1000 == 0


# -- JobProgress ----------------------------------------------------------------


@pytest.mark.parametrize("percent", [0, 1, 50, 99, 100])
def test_create_progress_within_bounds_keeps_percent(percent: int) -> None:
    # when
    progress = JobProgress(step="extracting_text", percent=percent, message="working")

    # then
    assert progress.percent == percent
    assert progress.step == "extracting_text"
    assert progress.message == "working"


@pytest.mark.parametrize("percent", [-1, 101, 1000, -100])
def test_create_progress_out_of_range_is_refused(percent: int) -> None:
    # when / then
    with pytest.raises(ValidationError) as caught:
        JobProgress(step="s", percent=percent)
    assert caught.value.field == "percent"
    assert str(percent) in caught.value.message


@pytest.mark.parametrize("percent", [50.0, 0.5, "50", None, True, False])
def test_create_progress_with_non_integer_percent_is_refused(percent: object) -> None:
    # when / then
    with pytest.raises(ValidationError) as caught:
        JobProgress(step="s", percent=percent)  # type: ignore[arg-type]
    assert caught.value.field == "percent"
    assert caught.value.code == "VALIDATION_ERROR"


# -- LogEntry -------------------------------------------------------------------


def test_log_levels_are_exactly_the_five_seed_levels() -> None:
    # then
    assert LOG_LEVELS == SEED_LOG_LEVELS


@pytest.mark.parametrize("level", SEED_LOG_LEVELS)
def test_create_log_entry_with_seed_level_keeps_it(level: str) -> None:
    # given
    now = utcnow()

    # when
    entry = LogEntry(timestamp=now, level=level, message="hello")  # type: ignore[arg-type]

    # then
    assert entry.level == level
    assert entry.timestamp == now
    assert (entry.seq, entry.attempt) == (0, 1)


@pytest.mark.parametrize("level", ["fatal", "INFO", "Warning", "trace", "", "warn"])
def test_create_log_entry_with_unknown_level_is_refused(level: str) -> None:
    # when / then
    with pytest.raises(ValidationError) as caught:
        LogEntry(timestamp=utcnow(), level=level, message="x")  # type: ignore[arg-type]
    assert caught.value.field == "level"
    for seed_level in SEED_LOG_LEVELS:
        assert seed_level in caught.value.message


# -- AccessControl --------------------------------------------------------------


def test_create_access_control_defaults_to_private_and_empty_lists() -> None:
    # when
    access = AccessControl()

    # then
    assert access.visibility is AccessVisibility.PRIVATE
    assert (access.read_access, access.write_access, access.admin_access) == ([], [], [])
    assert access.readers() == []


def test_create_access_control_from_visibility_string_gives_enum() -> None:
    # when
    access = AccessControl("PUBLIC")  # type: ignore[arg-type]

    # then
    assert access.visibility is AccessVisibility.PUBLIC


@pytest.mark.parametrize("name", ACCESS_LISTS)
@pytest.mark.parametrize("user", ["", "   ", "\t", None, 7])
def test_create_access_control_with_blank_or_non_string_user_is_refused(
    name: str, user: object
) -> None:
    # when / then
    with pytest.raises(ValidationError) as caught:
        AccessControl(**{name: ["alice", user]})  # type: ignore[arg-type]
    assert caught.value.field == name


@pytest.mark.parametrize("name", ACCESS_LISTS)
def test_create_access_control_with_the_public_marker_as_user_is_refused(name: str) -> None:
    # when / then: "*" stands for everyone in the stored readers, so it is no user id
    with pytest.raises(ValidationError) as caught:
        AccessControl(**{name: ["alice", "*"]})
    assert caught.value.field == name
    assert "PUBLIC" in caught.value.message


@pytest.mark.parametrize("name", ACCESS_LISTS)
def test_create_access_control_with_overlong_user_id_is_refused(name: str) -> None:
    # given
    longest = "u" * MAX_USER_ID_LENGTH

    # when
    accepted = AccessControl(**{name: [longest]})

    # then
    assert getattr(accepted, name) == [longest]
    with pytest.raises(ValidationError) as caught:
        AccessControl(**{name: [longest + "u"]})
    assert caught.value.field == name


@pytest.mark.parametrize("name", ACCESS_LISTS)
def test_create_access_control_with_too_many_users_is_refused(name: str) -> None:
    # given
    full = [f"user-{i}" for i in range(MAX_ACCESS_LIST)]

    # when
    accepted = AccessControl(**{name: full})

    # then
    assert getattr(accepted, name) == full
    with pytest.raises(ValidationError) as caught:
        AccessControl(**{name: [*full, "one-too-many"]})
    assert caught.value.field == name


@pytest.mark.parametrize("name", ACCESS_LISTS)
def test_create_access_control_removes_duplicates_keeping_first_order(name: str) -> None:
    # when
    access = AccessControl(**{name: ["carol", "alice", "carol", "bob", "alice"]})

    # then
    assert getattr(access, name) == ["carol", "alice", "bob"]


def test_with_admin_adds_user_once_and_leaves_original_unchanged() -> None:
    # given
    access = AccessControl(AccessVisibility.PUBLIC, ["bob"], ["carol"], ["dave"])
    before = copy.deepcopy(access)

    # when
    extended = access.with_admin("alice")

    # then
    assert extended.admin_access == ["dave", "alice"]
    assert (extended.visibility, extended.read_access, extended.write_access) == (
        AccessVisibility.PUBLIC, ["bob"], ["carol"])
    assert access == before
    assert extended.with_admin("alice") == extended
    assert access.with_admin(None) == before


def test_readers_of_public_access_include_everyone_marker_and_all_lists() -> None:
    # given
    access = AccessControl(AccessVisibility.PUBLIC, ["bob", "carol"], ["carol"], ["alice"])

    # when
    readers = access.readers()

    # then
    assert readers == ["*", "bob", "carol", "alice"]
    assert AccessControl(read_access=["bob"]).readers() == ["bob"]


@pytest.mark.parametrize(
    ("user", "read", "write", "admin"),
    [
        ("reader", True, False, False),
        ("writer", True, True, False),
        ("admin", True, True, True),
        ("stranger", False, False, False),
        (None, False, False, False),
    ],
)
def test_private_access_checks_follow_the_lists(
    user: str | None, read: bool, write: bool, admin: bool
) -> None:
    # given
    access = AccessControl(read_access=["reader"], write_access=["writer"], admin_access=["admin"])

    # when / then
    assert access.can_read(user) is read
    assert access.can_write(user) is write
    assert access.can_admin(user) is admin


@pytest.mark.parametrize("user", ["stranger", None])
def test_public_access_lets_anyone_read_but_not_write(user: str | None) -> None:
    # given
    access = AccessControl(AccessVisibility.PUBLIC, admin_access=["admin"])

    # when / then
    assert access.can_read(user) is True
    assert access.can_write(user) is False
    assert access.can_admin(user) is False


# -- JobStatus / BatchCounts ----------------------------------------------------


def test_job_status_finished_only_for_completed_and_failed() -> None:
    # then
    assert {status for status in JobStatus if status.finished} == {
        JobStatus.COMPLETED, JobStatus.FAILED}


@pytest.mark.parametrize(
    ("counts", "expected"),
    [
        (BatchCounts(), JobStatus.PENDING),
        (BatchCounts(pending=3), JobStatus.PENDING),
        (BatchCounts(pending=2, processing=1), JobStatus.PROCESSING),
        (BatchCounts(processing=4), JobStatus.PROCESSING),
        (BatchCounts(pending=2, completed=1), JobStatus.PROCESSING),
        (BatchCounts(pending=1, failed=1), JobStatus.PROCESSING),
        (BatchCounts(processing=1, completed=5, failed=2), JobStatus.PROCESSING),
        (BatchCounts(completed=3), JobStatus.COMPLETED),
        (BatchCounts(completed=2, failed=1), JobStatus.FAILED),
        (BatchCounts(failed=4), JobStatus.FAILED),
    ],
    ids=lambda value: repr(value) if isinstance(value, BatchCounts) else value.value,
)
def test_batch_status_follows_counts(counts: BatchCounts, expected: JobStatus) -> None:
    # when
    status = counts.status()

    # then
    assert status is expected


def test_batch_counts_add_accumulates_per_status_and_total() -> None:
    # given
    counts = BatchCounts()

    # when
    counts.add(JobStatus.PENDING, 2)
    counts.add(JobStatus.PROCESSING, 1)
    counts.add(JobStatus.COMPLETED, 4)
    counts.add(JobStatus.FAILED, 3)
    counts.add(JobStatus.PENDING, 1)

    # then
    assert counts == BatchCounts(pending=3, processing=1, completed=4, failed=3)
    assert counts.total == 11


# -- JobStatistics --------------------------------------------------------------


@pytest.mark.parametrize(
    "name", ["total_files_analyzed", "leaf_nodes", "max_depth", "total_tokens_used"]
)
@pytest.mark.parametrize("value", [-1, 1.5, "3", True, None])
def test_create_statistics_with_bad_value_is_refused(name: str, value: object) -> None:
    # when / then
    with pytest.raises(ValidationError) as caught:
        JobStatistics(**{name: value})  # type: ignore[arg-type]
    assert caught.value.field == name


# -- DocumentationJob lifecycle -------------------------------------------------


def test_create_documentation_job_defaults_to_pending_without_timestamps() -> None:
    # when
    job = DocumentationJob(repository_path="/r", repository_name="r", output_directory="/o")

    # then
    assert job.status is DocumentationJobStatus.PENDING
    assert (job.timestamp_start, job.timestamp_end, job.error_message) == (None, None, None)
    assert job.job_id
    assert job.job_id != DocumentationJob("/r", "r", "/o").job_id


def test_start_pending_documentation_job_sets_running_and_start_timestamp() -> None:
    # given
    job = documentation_job_in(DocumentationJobStatus.PENDING)
    before = utcnow()

    # when
    job.start()

    # then
    after = utcnow()
    assert job.status is DocumentationJobStatus.RUNNING
    assert before <= parse_iso(job.timestamp_start) <= after
    assert before <= job.updated_at <= after
    assert job.timestamp_end is None
    assert job.error_message is None


def test_complete_running_documentation_job_sets_completed_and_end_timestamp() -> None:
    # given
    job = documentation_job_in(DocumentationJobStatus.PENDING)
    job.start()
    started = job.timestamp_start
    before = utcnow()

    # when
    job.complete()

    # then
    after = utcnow()
    assert job.status is DocumentationJobStatus.COMPLETED
    assert before <= parse_iso(job.timestamp_end) <= after
    assert job.timestamp_start == started
    assert job.error_message is None


@pytest.mark.parametrize(
    "status", [DocumentationJobStatus.PENDING, DocumentationJobStatus.RUNNING]
)
def test_fail_unfinished_documentation_job_sets_failed_message_and_end_timestamp(
    status: DocumentationJobStatus,
) -> None:
    # given
    job = documentation_job_in(status)
    before = utcnow()

    # when
    job.fail("clone failed: repository not found")

    # then
    after = utcnow()
    assert job.status is DocumentationJobStatus.FAILED
    assert job.error_message == "clone failed: repository not found"
    assert before <= parse_iso(job.timestamp_end) <= after
    assert before <= job.updated_at <= after


@pytest.mark.parametrize(
    ("status", "action"),
    [
        (DocumentationJobStatus.PENDING, "complete"),  # never started
        (DocumentationJobStatus.RUNNING, "start"),
        (DocumentationJobStatus.COMPLETED, "start"),  # finished
        (DocumentationJobStatus.FAILED, "start"),
        (DocumentationJobStatus.COMPLETED, "complete"),
        (DocumentationJobStatus.FAILED, "complete"),
        (DocumentationJobStatus.COMPLETED, "fail"),  # finished
        (DocumentationJobStatus.FAILED, "fail"),
    ],
)
def test_illegal_documentation_transition_is_refused_and_changes_nothing(
    status: DocumentationJobStatus, action: str
) -> None:
    # given
    job = documentation_job_in(status)
    job.timestamp_start = "2025-01-01T00:00:00+00:00"
    before = copy.deepcopy(job)
    call = getattr(job, action)
    args = ("boom",) if action == "fail" else ()

    # when / then
    with pytest.raises(InvalidTransitionError) as caught:
        call(*args)
    assert caught.value.code == "INVALID_TRANSITION"
    assert status.value in caught.value.message
    assert job == before


@pytest.mark.parametrize("status", list(DocumentationJobStatus))
@pytest.mark.parametrize("action", ["start", "complete", "fail"])
def test_documentation_transition_table_matches_the_methods(
    status: DocumentationJobStatus, action: str
) -> None:
    # given
    job = documentation_job_in(status)
    allowed, target = DOCUMENTATION_TRANSITIONS[action]
    args = ("boom",) if action == "fail" else ()

    # when
    try:
        getattr(job, action)(*args)
        moved = True
    except InvalidTransitionError:
        moved = False

    # then
    assert moved is (status in allowed)
    assert job.status is (target if moved else status)


# -- DocumentationJob serialisation ---------------------------------------------


@pytest.mark.parametrize("lifecycle", ["pending", "running", "completed", "failed"])
def test_documentation_job_dict_round_trip_gives_equal_job(lifecycle: str) -> None:
    # given
    job = full_documentation_job()
    if lifecycle != "pending":
        job.start()
    if lifecycle == "completed":
        job.complete()
    if lifecycle == "failed":
        job.fail("out of tokens")

    # when
    restored = DocumentationJob.from_dict(job.to_dict())

    # then
    assert restored == job
    assert restored is not job


def test_documentation_job_json_round_trip_gives_equal_job() -> None:
    # given
    job = full_documentation_job()
    job.start()

    # when
    text = job.to_json()
    restored = DocumentationJob.from_dict(json.loads(text))

    # then
    assert isinstance(text, str)
    assert restored == job
    assert isinstance(restored.created_at, datetime)
    assert restored.llm_config == job.llm_config
    assert restored.access_control.visibility is AccessVisibility.PUBLIC


def test_documentation_job_json_round_trip_without_llm_config_gives_equal_job() -> None:
    # given
    job = DocumentationJob(repository_path="/r", repository_name="r", output_directory="/o")

    # when
    restored = DocumentationJob.from_dict(json.loads(job.to_json()))

    # then
    assert restored == job
    assert restored.llm_config is None


def test_documentation_job_to_dict_uses_plain_seed_values() -> None:
    # given
    job = full_documentation_job()

    # when
    data = json.loads(job.to_json())

    # then
    assert data["status"] == "PENDING"
    assert data["job_id"] == job.job_id
    assert data["generation_options"] == {
        "create_branch": True, "github_pages": True, "no_cache": True, "custom_output": "site"}
    assert data["statistics"]["total_tokens_used"] == 90_000
    assert data["access_control"]["visibility"] == "PUBLIC"
    assert datetime.fromisoformat(data["created_at"]) == job.created_at


def test_documentation_job_from_seed_shaped_dict_fills_defaults_and_ignores_unknown_keys() -> None:
    # given
    data = {
        "job_id": "job-123",
        "repository_path": "/path/to/repo",
        "repository_name": "my-repo",
        "output_directory": "/output/docs",
        "status": "RUNNING",
        "timestamp_start": "2025-01-01T10:00:00+00:00",
        "from_a_newer_version": True,
    }

    # when
    job = DocumentationJob.from_dict(data)

    # then
    assert job.job_id == "job-123"
    assert job.status is DocumentationJobStatus.RUNNING
    assert job.generation_options == GenerationOptions()
    assert job.statistics == JobStatistics()
    assert job.access_control == AccessControl()
    assert job.llm_config is None
    assert "from_a_newer_version" in data


def _job_with_log(seqs: list[int], log_seq: int) -> SecretaryJob:
    logs = [LogEntry(timestamp=utcnow(), level="info", message=str(seq), seq=seq)
            for seq in seqs]
    return SecretaryJob(job_id="j", job_type="t", logs=logs, log_seq=log_seq)


def test_logs_after_gives_newer_entries_and_where_to_resume() -> None:
    logs = _job_with_log([3, 4, 5], 5).logs_after(3)
    assert [entry.seq for entry in logs.entries] == [4, 5]
    assert logs.gap is None and logs.last_seq == 5


def test_logs_after_reports_what_the_capped_log_dropped() -> None:
    logs = _job_with_log([8, 9], 9).logs_after(2)
    assert [entry.seq for entry in logs.entries] == [8, 9]
    assert logs.gap == (3, 7) and logs.last_seq == 9


def test_logs_after_the_newest_entry_is_empty_without_a_gap() -> None:
    logs = _job_with_log([8, 9], 9).logs_after(9)
    assert logs.entries == [] and logs.gap is None and logs.last_seq == 9


def test_logs_after_with_everything_dropped_reports_the_whole_gap() -> None:
    logs = _job_with_log([], 4).logs_after(1)
    assert logs.entries == [] and logs.gap == (2, 4) and logs.last_seq == 4
