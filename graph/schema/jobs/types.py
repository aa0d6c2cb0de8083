"""GraphQL types of seed 000's jobs. Resolvers receive repository models directly:
fields named like the model's attributes need no code."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import TYPE_CHECKING, Annotated, Any, overload

import strawberry
from strawberry.scalars import JSON

from graph.engine.sharing import caller_independent
from graph.schema.core.access import AccessControl, AccessControlInput, access_or_none
from graph.schema.core.connections import Connection
from graph.schema.core.context import Context, Info
from graph.schema.core.enums import described_enum
from graph.schema.core.node import Node, global_id
from graph.schema.core.ordering import OrderDirection
from graph.schema.core.retry import RetryPolicy, RetryPolicyInput
from repository.access import rights
from repository.job_filters import JobFilter, JobOrderField, job_order
from repository.models import JOB_TRANSITIONS, JobStatus
from repository.models import JobProgress as JobProgressModel
from repository.models import SecretaryJob as SecretaryJobModel
from repository.pagination import SortOrder
from repository.retry import RetryPolicy as RetryPolicyModel

from .history import JobHistoryEntry, job_history

if TYPE_CHECKING:
    from graph.schema.batches.types import BatchJob

described_enum(JobStatus, "Where a job is in its lifecycle.", {
    "PENDING": "Waiting for a worker to claim it.",
    "PROCESSING": "Claimed by a worker, which holds a lease on it.",
    "COMPLETED": "Finished successfully; `results` holds what it produced.",
    "FAILED": "Finished without success; `error` says why (`retryJob` may run it again).",
})

described_enum(JobOrderField, "The key a jobs list is ordered by (then `jobId`, to break "
               "ties).", {
    "CREATED": "Creation time.",
    "UPDATED": "Last change (of status, progress, log, priority, access ...). A job that "
               "changes while you page moves, so it may be seen twice or not at all.",
    "FINISHED": "When it COMPLETED or FAILED. The list then holds finished jobs only.",
    "PRIORITY": "Priority, then creation time.",
})

JobIdArg = Annotated[strawberry.ID, strawberry.argument(description="The job's `jobId`.")]

@strawberry.type(description="Someone asked for the job to be cancelled while it was running: "
                 "its worker should stop and acknowledge with `failJob`.")
class CancelRequest:
    by: str = strawberry.field(description="Who asked.")
    at: datetime = strawberry.field(description="When.")
    reason: str | None = strawberry.field(description="Why, if they said.")


class LogLevel(StrEnum):
    DEBUG = "debug"
    INFO = "info"
    WARNING = "warning"
    ERROR = "error"
    CRITICAL = "critical"


described_enum(LogLevel, "Severity of a log entry (the seed's five levels).", {
    "DEBUG": "Detail for whoever debugs the worker.",
    "INFO": "A step of normal progress.",
    "WARNING": "Something unexpected that the job survived.",
    "ERROR": "Something failed; the job may still go on.",
    "CRITICAL": "The job cannot go on.",
})


@strawberry.type(description="How far a job has got.")
class JobProgress:
    step: str = strawberry.field(description="The processing step under way.")
    percent: int = strawberry.field(description="Completion, 0 to 100.")
    message: str | None = strawberry.field(description="A human-readable note on the step.")


@strawberry.type(description="One line of a job's log.")
class LogEntry:
    timestamp: datetime = strawberry.field(description="When the entry was written.")
    level: LogLevel = strawberry.field(description="Severity.")
    message: str = strawberry.field(description="The text.")
    seq: int = strawberry.field(
        description="Sequence number, increasing by one per job; resume log streams after it.")
    attempt: int = strawberry.field(description="The attempt (claim) the entry was written in.")


@strawberry.type(description="Why a job failed.")
class JobError:
    code: str = strawberry.field(description="Machine-readable error code set by the worker.")
    message: str = strawberry.field(description="Human-readable explanation.")
    details: JSON | None = strawberry.field(description="Anything else the worker recorded.")

    @overload
    @classmethod
    def from_dict(cls, value: dict[str, Any]) -> JobError: ...
    @overload
    @classmethod
    def from_dict(cls, value: dict[str, Any] | None) -> JobError | None: ...
    @classmethod
    def from_dict(cls, value: dict[str, Any] | None) -> JobError | None:
        if value is None:
            return None
        return cls(code=value.get("code", ""), message=value.get("message", ""),
                   details=value.get("details"))


@strawberry.type(description="An asynchronous job (pdf, session, transformer, ...).")
class SecretaryJob(Node):
    job_id: strawberry.ID = strawberry.field(description="Unique job identifier.")

    @strawberry.field(description="Global id (Relay's Node); `jobId` stays the job's own id.")  # type: ignore[misc]  # Node's id field, here a resolver
    @staticmethod
    @caller_independent
    def id(root: SecretaryJobModel) -> strawberry.ID:
        return global_id("SecretaryJob", root.job_id)

    @classmethod
    def is_type_of(cls, obj: Any, _info: Any) -> bool:
        return isinstance(obj, SecretaryJobModel | cls)

    job_type: str = strawberry.field(description='Kind of job, e.g. "pdf" or "transformer".')
    status: JobStatus = strawberry.field(description="Current lifecycle status.")
    parameters: JSON = strawberry.field(description="Input the worker needs.")
    created_at: datetime = strawberry.field(description="When the job was created.")
    updated_at: datetime = strawberry.field(description="When the job last changed.")
    progress: JobProgress | None = strawberry.field(description="Latest progress report.")
    results: JSON | None = strawberry.field(description="What the job produced, once completed.")
    access_control: AccessControl = strawberry.field(description="Who may see and change it.")
    batch_id: strawberry.ID | None = strawberry.field(description="Batch it belongs to, if any.")
    owner: str | None = strawberry.field(description="User who created the job.")
    processing_started_at: datetime | None = strawberry.field(
        description="When a worker last claimed it.")
    completed_at: datetime | None = strawberry.field(description="When it last finished.")
    claimed_by: str | None = strawberry.field(description="Worker holding the job.")
    lease_expires_at: datetime | None = strawberry.field(
        description="When the worker's claim lapses unless renewed by progress, logs or heartbeat.")
    attempts: int = strawberry.field(description="How many times the job has been claimed.")
    max_attempts: int = strawberry.field(
        description="Claims allowed before a failure (a retryable failJob, an expired lease, "
        "a timeout) is final.")
    retryable: bool = strawberry.field(description="False when a worker failed it for good.")
    log_seq: int = strawberry.field(description="Sequence number of the newest log entry.")
    version: int = strawberry.field(
        description="Incremented by every change; a newer state has a higher version.")
    schedule_id: strawberry.ID | None = strawberry.field(
        description="The schedule that created the job, if one did.")
    scheduled_for: datetime | None = strawberry.field(
        description="The schedule's fire time the job was created for.")
    priority: int = strawberry.field(
        description="Claimed before jobs of lower priority; the oldest first within one.")
    run_at: datetime | None = strawberry.field(
        description="Not claimed before this instant (a delayed job, or a retry's backoff); "
        "null: as soon as a worker asks.")
    timeout_seconds: float | None = strawberry.field(
        description="Run time allowed per claim; past it the attempt ends TIMED_OUT "
        "(retried while attempts remain), however its worker renews the lease.")
    timeout_at: datetime | None = strawberry.field(
        description="While PROCESSING: when this claim ends unless finished (its timeout, or "
        "one lease after a cancel request).")
    cancel_requested: CancelRequest | None = strawberry.field(
        description="Set once someone cancelled the job: a PROCESSING job with it must stop "
        "(completeJob is refused with CANCEL_REQUESTED); acknowledge with failJob.")

    @strawberry.field(description="How failed attempts are retried.")
    @staticmethod
    def retry_policy(root: SecretaryJobModel, info: Info) -> RetryPolicy:
        policy = root.retry_policy
        if policy is None:  # stored before policies existed: the configured default
            default = info.context.store.limits.retry_policy
            policy = RetryPolicyModel(root.max_attempts, default.backoff, default.base_seconds,
                                      default.cap_seconds)
        return policy

    @strawberry.field(description="Error of the last failure: code, message, details.")
    @staticmethod
    @caller_independent
    def error(root: SecretaryJobModel) -> JobError | None:
        return JobError.from_dict(root.error)

    @strawberry.field(description="Errors of earlier failed attempts, oldest first.")
    @staticmethod
    @caller_independent
    def previous_errors(root: SecretaryJobModel) -> list[JobError]:
        return [JobError.from_dict(error) for error in root.previous_errors if error]

    @strawberry.field(
        description="Log entries, oldest first; the log keeps only the newest entries.")
    @staticmethod
    @caller_independent  # the job's own entries: anyone who may read the job reads them
    async def logs(
        root: SecretaryJobModel,
        info: Info,
        last: Annotated[int | None, strawberry.argument(
            description="Only the newest `last` entries (0 or more).")] = None,
    ) -> list[LogEntry]:
        # a job of a subscription's event comes without its log: just these are read
        return await info.context.store.jobs.log_window(root, last)

    @strawberry.field(description="Whether you are one of its writers (`writeAccess`, "
                      "`adminAccess` or the admin role), who may retry it once it failed. A "
                      "worker's claim does not count: it lets the worker drive the job only.")
    @staticmethod
    def viewer_can_write(root: SecretaryJobModel, info: Info) -> bool:
        return rights(info.context.principal, root.access_control).write

    @strawberry.field(description="Whether you may delete it and change its access control "
                      "(`adminAccess` or the admin role).")
    @staticmethod
    def viewer_can_admin(root: SecretaryJobModel, info: Info) -> bool:
        return rights(info.context.principal, root.access_control).admin

    @strawberry.field(description="Whether `retryJob` would be accepted now: you may write it, "
                      "it is FAILED, and it was not failed for good.")
    @staticmethod
    def viewer_can_retry(root: SecretaryJobModel, info: Info) -> bool:
        return rights(info.context.principal, root.access_control).retry(
            failed=root.status is JobStatus.FAILED, retryable=root.retryable)

    @strawberry.field(description="Whether `cancelJob` would change something now: you may "
                      "write it, it is PENDING or PROCESSING, and no cancel was asked yet.")
    @staticmethod
    def viewer_can_cancel(root: SecretaryJobModel, info: Info) -> bool:
        return rights(info.context.principal, root.access_control).cancel(
            waiting_or_running=root.status in JOB_TRANSITIONS["cancel"],
            cancel_requested=root.cancel_requested is not None)

    @strawberry.field(description="Whether `setJobPriority` would be accepted now: you may "
                      "write it and it is PENDING.")
    @staticmethod
    def viewer_can_set_priority(root: SecretaryJobModel, info: Info) -> bool:
        return rights(info.context.principal, root.access_control).reprioritize(
            pending=root.status is JobStatus.PENDING)

    @strawberry.field(description="Whether `deleteJob` would be accepted: as `viewerCanAdmin`.")
    @staticmethod
    def viewer_can_delete(root: SecretaryJobModel, info: Info) -> bool:
        return rights(info.context.principal, root.access_control).admin

    @strawberry.field(description="Every change of the job (who, when, what), newest first, "
                      "kept `JOBGRAPH_HISTORY_DAYS`; null unless you may administer the job "
                      "(`viewerCanAdmin`).")
    @staticmethod
    async def history(
        root: SecretaryJobModel, info: Info,
        first: Annotated[int | None, strawberry.argument(
            description="Page size (default 20, at most the maximum page size).")] = None,
        after: Annotated[str | None, strawberry.argument(
            description="Cursor to continue after.")] = None,
    ) -> Connection[JobHistoryEntry] | None:
        return await job_history(root, info, first, after)

    @strawberry.field(description="The batch, or null when there is none or you may not read it.")
    @staticmethod
    async def batch(
        root: SecretaryJobModel, info: Info
    ) -> Annotated[BatchJob, strawberry.lazy("..batches.types")] | None:
        if root.batch_id is None:
            return None
        return await info.context.loaders.batch.load(root.batch_id)


@strawberry.input(description="A progress report.")
class JobProgressInput:
    step: str = strawberry.field(description="The processing step under way.")
    percent: int = strawberry.field(description="Completion, 0 to 100.")
    message: str | None = strawberry.field(default=None, description="A note on the step.")

    def to_model(self) -> JobProgressModel:
        return JobProgressModel(self.step, self.percent, self.message)


@strawberry.input(description="A log entry to append.")
class LogEntryInput:
    level: LogLevel = strawberry.field(description="Severity.")
    message: str = strawberry.field(description="The text.")


@strawberry.input(description="Why a job failed.")
class JobErrorInput:
    code: str = strawberry.field(description="Machine-readable error code.")
    message: str = strawberry.field(description="Human-readable explanation.")
    details: JSON | None = strawberry.field(default=None, description="Anything else to keep.")


@strawberry.input(description="Which jobs to list, count or summarise; all given conditions "
                  "must hold. Ranges exclude their ends. A contradiction (e.g. `status` with "
                  "`statuses`, an empty list, a range whose start is not before its end) is a "
                  "VALIDATION_ERROR naming the field. Every combination, in every `orderBy`, "
                  "is read from an index.")
class JobFilterInput:
    status: JobStatus | None = strawberry.field(default=None, description="Only this status.")
    job_type: str | None = strawberry.field(default=None, description="Only this job type.")
    batch_id: strawberry.ID | None = strawberry.field(default=None, description="Only this batch.")
    created_after: datetime | None = strawberry.field(
        default=None, description="Created strictly after this instant.")
    created_before: datetime | None = strawberry.field(
        default=None, description="Created strictly before this instant.")
    statuses: list[JobStatus] | None = strawberry.field(
        default=None, description="Only these statuses (1 to 50 values; not with `status`).")
    job_types: list[str] | None = strawberry.field(
        default=None, description="Only these job types (1 to 50; not with `jobType`).")
    has_batch: bool | None = strawberry.field(
        default=None, description="true: only jobs in a batch; false: only jobs in none.")
    owner: str | None = strawberry.field(
        default=None, description="Only jobs created by this user id.")
    claimed_by: str | None = strawberry.field(
        default=None, description="Only jobs last claimed by this worker id (held now, or "
        "finished by it).")
    error_code: str | None = strawberry.field(
        default=None, description="Only jobs whose current error has this code (e.g. "
        "CANCELLED, TIMED_OUT, or a worker's own).")
    updated_after: datetime | None = strawberry.field(
        default=None, description="Last changed strictly after this instant.")
    updated_before: datetime | None = strawberry.field(
        default=None, description="Last changed strictly before this instant.")
    finished_after: datetime | None = strawberry.field(
        default=None, description="COMPLETED or FAILED strictly after this instant.")
    finished_before: datetime | None = strawberry.field(
        default=None, description="COMPLETED or FAILED strictly before this instant.")
    min_priority: int | None = strawberry.field(
        default=None, description="Priority at least this (-1000 to 1000).")
    max_priority: int | None = strawberry.field(
        default=None, description="Priority at most this (-1000 to 1000).")

    def to_filter(self) -> JobFilter:
        return JobFilter(**{name: getattr(self, name) for name in FILTER_FIELDS})


FILTER_FIELDS = ("status", "job_type", "batch_id", "created_after", "created_before",
                 "statuses", "job_types", "has_batch", "owner", "claimed_by", "error_code",
                 "updated_after", "updated_before", "finished_after", "finished_before",
                 "min_priority", "max_priority")


@strawberry.input(description="How a jobs list is ordered; every order pages with its own "
                  "cursors (a cursor from another order is a VALIDATION_ERROR).")
class JobOrderInput:
    field: JobOrderField = strawberry.field(
        default=JobOrderField.CREATED, description="The key (default CREATED).")
    direction: OrderDirection = strawberry.field(
        default=OrderDirection.DESC, description="The direction (default DESC).")

    def to_order(self) -> SortOrder:
        return job_order(self.field, self.direction is OrderDirection.DESC)


@strawberry.input(description="A new job.")
class CreateJobInput:
    job_type: str = strawberry.field(description='Kind of job, e.g. "pdf".')
    parameters: JSON | None = strawberry.field(default=None, description="Input for the worker.")
    access_control: AccessControlInput | None = strawberry.field(
        default=None, description="Who may see and change it; you are added as an admin.")
    max_attempts: int | None = strawberry.field(
        default=None, description="Claims allowed before a failure is final (the same as "
        "`retryPolicy.maxAttempts`).")
    priority: int | None = strawberry.field(
        default=None, description="-1000 to 1000, default 0: claimed before lower priorities.")
    run_at: datetime | None = strawberry.field(
        default=None, description="Not claimed before this instant (at most a year ahead).")
    timeout_seconds: float | None = strawberry.field(
        default=None, description="Run time allowed per claim (up to 604800 s); none by "
        "default.")
    retry_policy: RetryPolicyInput | None = strawberry.field(
        default=None, description="How failed attempts are retried (defaults from the "
        "server's configuration).")
    idempotency_key: str | None = strawberry.field(
        default=None, description="Repeating a call with the same key returns the first "
        "result instead of creating a duplicate (per user; reusing it with other input is a "
        "CONFLICT).")

    def fields(self) -> dict[str, Any]:
        """The repository's arguments for this job (all but the idempotency key)."""
        return {"job_type": self.job_type, "parameters": self.parameters,
                "access_control": access_or_none(self.access_control),
                "max_attempts": self.max_attempts, "priority": self.priority,
                "run_at": self.run_at, "timeout_seconds": self.timeout_seconds,
                "retry_policy": None if self.retry_policy is None
                else self.retry_policy.to_dict()}


async def fetch_jobs(context: Context, job_ids: list[str]) -> dict[str, SecretaryJobModel]:
    """``node(id:)`` for jobs: the readable ones among ``job_ids``."""
    return await context.store.jobs.get_many(context.principal, job_ids)
