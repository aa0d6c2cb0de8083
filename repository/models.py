"""The seeds' job models: plain dataclasses with their rules, no I/O.

``SecretaryJob``/``BatchJob`` come from seed 000, ``DocumentationJob`` from seed 001.
Fields beyond the seeds (owner, batch_id, lease, attempts, ...) exist because
persistence and access control need them; every seed field keeps its seed name.
"""

from __future__ import annotations

import json
import uuid
from dataclasses import asdict, dataclass, field, fields
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any, Literal, get_args

from .errors import InvalidTransitionError, ValidationError
from .retry import RetryPolicy


def utcnow() -> datetime:
    """Now, truncated to milliseconds: BSON dates hold no more, so round trips stay equal."""
    now = datetime.now(UTC)
    return now.replace(microsecond=now.microsecond // 1000 * 1000)


def new_id() -> str:
    return str(uuid.uuid4())


class JobStatus(StrEnum):
    PENDING = "PENDING"
    PROCESSING = "PROCESSING"
    COMPLETED = "COMPLETED"
    FAILED = "FAILED"

    @property
    def finished(self) -> bool:
        return self in (JobStatus.COMPLETED, JobStatus.FAILED)


class AccessVisibility(StrEnum):
    PRIVATE = "PRIVATE"
    PUBLIC = "PUBLIC"


class DocumentationJobStatus(StrEnum):
    """Seed 001 calls this ``JobStatus``; renamed so it can live beside seed 000's."""

    PENDING = "PENDING"
    RUNNING = "RUNNING"
    COMPLETED = "COMPLETED"
    FAILED = "FAILED"


LogLevel = Literal["debug", "info", "warning", "error", "critical"]
LOG_LEVELS: tuple[str, ...] = get_args(LogLevel)


@dataclass
class JobProgress:
    step: str
    percent: int
    message: str | None = None

    def __post_init__(self) -> None:
        if isinstance(self.percent, bool) or not isinstance(self.percent, int):
            raise ValidationError("percent", "must be an integer")
        if not 0 <= self.percent <= 100:
            raise ValidationError("percent", f"must be between 0 and 100, got {self.percent}")


@dataclass
class LogEntry:
    timestamp: datetime
    level: LogLevel
    message: str
    seq: int = 0
    """Increases by one per job, so a reader can resume after the last entry it saw."""
    attempt: int = 1

    def __post_init__(self) -> None:
        check_log_level(self.level)


def check_log_level(level: str) -> None:
    if level not in LOG_LEVELS:
        raise ValidationError(
            "level", f"unknown log level {level!r}; expected one of {', '.join(LOG_LEVELS)}"
        )


MAX_ACCESS_LIST = 100
MAX_USER_ID_LENGTH = 200
PUBLIC_READER = "*"
"""Stands for everyone in the stored ``readers`` list, so it is never a user id."""


@dataclass
class AccessControl:
    visibility: AccessVisibility = AccessVisibility.PRIVATE
    read_access: list[str] = field(default_factory=list)
    write_access: list[str] = field(default_factory=list)
    admin_access: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.visibility = AccessVisibility(self.visibility)
        for name in ("read_access", "write_access", "admin_access"):
            users = getattr(self, name)
            if len(users) > MAX_ACCESS_LIST:
                raise ValidationError(name, f"holds more than {MAX_ACCESS_LIST} users")
            for user in users:
                if not isinstance(user, str) or not user.strip():
                    raise ValidationError(name, "user ids must be non-empty strings")
                if user == PUBLIC_READER:
                    raise ValidationError(name, f"{PUBLIC_READER!r} is not a user id; use "
                                          "visibility PUBLIC")
                if len(user) > MAX_USER_ID_LENGTH:
                    raise ValidationError(name, f"user ids are at most {MAX_USER_ID_LENGTH} chars")
            setattr(self, name, list(dict.fromkeys(users)))

    def with_admin(self, user_id: str | None) -> AccessControl:
        if user_id is None or user_id in self.admin_access:
            return self
        return AccessControl(
            self.visibility, self.read_access, self.write_access, [*self.admin_access, user_id]
        )

    def readers(self) -> list[str]:
        """Everyone who may read, with ``*`` standing for the public; stored for indexed reads."""
        public = [PUBLIC_READER] if self.visibility is AccessVisibility.PUBLIC else []
        return list(dict.fromkeys([*public, *self.read_access, *self.write_access,
                                   *self.admin_access]))

    def can_read(self, user_id: str | None) -> bool:
        return self.visibility is AccessVisibility.PUBLIC or (
            user_id is not None and user_id in self.readers()
        )

    def can_write(self, user_id: str | None) -> bool:
        return user_id is not None and (
            user_id in self.write_access or user_id in self.admin_access
        )

    def can_admin(self, user_id: str | None) -> bool:
        return user_id is not None and user_id in self.admin_access


@dataclass
class SecretaryJob:
    job_id: str
    job_type: str
    status: JobStatus = JobStatus.PENDING
    parameters: dict[str, Any] = field(default_factory=dict)
    created_at: datetime = field(default_factory=utcnow)
    updated_at: datetime = field(default_factory=utcnow)
    progress: JobProgress | None = None
    results: dict[str, Any] | None = None
    error: dict[str, Any] | None = None
    """``{code, message, details}`` of the last failure."""
    logs: list[LogEntry] = field(default_factory=list)
    access_control: AccessControl = field(default_factory=AccessControl)
    # Beyond the seed: persistence, leases and retries.
    batch_id: str | None = None
    owner: str | None = None
    processing_started_at: datetime | None = None
    completed_at: datetime | None = None
    claimed_by: str | None = None
    lease_expires_at: datetime | None = None
    attempts: int = 0
    max_attempts: int = 3
    retryable: bool = True
    log_seq: int = 0
    """Sequence number of the newest log entry ever appended (capping keeps counting)."""
    previous_errors: list[dict[str, Any]] = field(default_factory=list)
    former_workers: list[str] = field(default_factory=list)
    """Workers that lost their lease on this job; their late writes are CONFLICTs."""
    claim_token: str | None = None
    """Random per claim: undoing a claim whose answer never reached its caller matches
    this claim and no other (``repository.abandoned_claims``)."""
    version: int = 0
    """Incremented by every change; orders the states subscribers see."""
    schedule_id: str | None = None
    """The schedule that created the job, if one did."""
    scheduled_for: datetime | None = None
    """The schedule's fire time the job was created for."""
    logs_loaded: bool = field(default=True, repr=False, compare=False)
    """False when the job was read without its log (change events, subscriptions):
    ``logs`` is then empty, and entries are read with ``JobRepository.log_window``."""

    def logs_after(self, seq: int) -> LogSlice:
        """What a reader who saw entries up to ``seq`` reads next: the newer entries held,
        the range the capped log dropped before them, and where to resume."""
        return slice_after([entry for entry in self.logs if entry.seq > seq], seq, self.log_seq)


@dataclass(frozen=True)
class LogSlice:
    entries: list[LogEntry]
    gap: tuple[int, int] | None
    """First and last sequence number of entries dropped before the reader saw them."""
    last_seq: int


def slice_after(entries: list[LogEntry], seq: int, log_seq: int) -> LogSlice:
    """What a reader who saw entries up to ``seq`` reads next, from the held ``entries``
    after it (up to ``log_seq``): them, the range the capped log dropped before them, and
    where to resume."""
    first = entries[0].seq if entries else log_seq + 1
    gap = (seq + 1, first - 1) if first > seq + 1 else None
    return LogSlice(entries, gap, max(seq, log_seq))


@dataclass
class BatchCounts:
    """Jobs of a batch by status. Derived from the jobs themselves, never stored."""

    pending: int = 0
    processing: int = 0
    completed: int = 0
    failed: int = 0

    @property
    def total(self) -> int:
        return self.pending + self.processing + self.completed + self.failed

    def add(self, status: JobStatus, count: int) -> None:
        name = status.value.lower()
        setattr(self, name, getattr(self, name) + count)

    def status(self) -> JobStatus:
        """PENDING until a job starts, PROCESSING while any is unfinished, then the verdict."""
        if self.processing == 0 and self.completed == 0 and self.failed == 0:
            return JobStatus.PENDING
        if self.pending or self.processing:
            return JobStatus.PROCESSING
        return JobStatus.FAILED if self.failed else JobStatus.COMPLETED


@dataclass
class BatchJob:
    batch_id: str
    batch_name: str
    status: JobStatus = JobStatus.PENDING
    jobs: list[SecretaryJob] = field(default_factory=list)
    created_at: datetime = field(default_factory=utcnow)
    updated_at: datetime = field(default_factory=utcnow)
    active: bool = True
    access_control: AccessControl = field(default_factory=AccessControl)
    owner: str | None = None
    counts: BatchCounts | None = field(default_factory=BatchCounts)
    """None when loaded without its counts; ``status`` is derived from them."""
    version: int = 0


@dataclass
class GenerationOptions:
    create_branch: bool = False
    github_pages: bool = False
    no_cache: bool = False
    custom_output: str | None = None


@dataclass
class LLMConfig:
    main_model: str
    cluster_model: str
    base_url: str


@dataclass
class JobStatistics:
    total_files_analyzed: int = 0
    leaf_nodes: int = 0
    max_depth: int = 0
    total_tokens_used: int = 0

    def __post_init__(self) -> None:
        for f in fields(self):
            value = getattr(self, f.name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 0:
                raise ValidationError(f.name, "must be a non-negative integer")


def _iso_now() -> str:
    return utcnow().isoformat()


@dataclass
class DocumentationJob:
    repository_path: str
    repository_name: str
    output_directory: str
    job_id: str = field(default_factory=new_id)
    commit_hash: str | None = None
    branch_name: str | None = None
    timestamp_start: str | None = None
    timestamp_end: str | None = None
    status: DocumentationJobStatus = DocumentationJobStatus.PENDING
    error_message: str | None = None
    files_generated: list[str] = field(default_factory=list)
    module_count: int = 0
    generation_options: GenerationOptions = field(default_factory=GenerationOptions)
    llm_config: LLMConfig | None = None
    statistics: JobStatistics = field(default_factory=JobStatistics)
    # Beyond the seed: listing order and access control.
    created_at: datetime = field(default_factory=utcnow)
    updated_at: datetime = field(default_factory=utcnow)
    access_control: AccessControl = field(default_factory=AccessControl)
    owner: str | None = None
    version: int = 0
    # Beyond the seed: claims, leases and retries, as a SecretaryJob's.
    claimed_by: str | None = None
    claim_token: str | None = None
    lease_expires_at: datetime | None = None
    attempts: int = 0
    """How many times the job has been claimed."""
    retry_policy: RetryPolicy = field(default_factory=RetryPolicy)
    run_at: datetime | None = None
    """Not claimable before this instant: its creation, or the end of a retry's backoff."""
    retryable: bool = True
    error: dict[str, Any] | None = None
    """``{code, message, attempt, worker, failed_at}`` of the failure that ended the job."""
    previous_errors: list[dict[str, Any]] = field(default_factory=list)
    former_workers: list[str] = field(default_factory=list)
    """Workers that lost their claim on this job; their late writes are CONFLICTs."""

    def start(self) -> None:
        self._move("start")
        self.timestamp_start = _iso_now()

    def complete(self) -> None:
        self._move("complete")
        self.timestamp_end = _iso_now()

    def fail(self, error_message: str) -> None:
        self._move("fail")
        self.error_message = error_message
        self.timestamp_end = _iso_now()

    def _move(self, action: str) -> None:
        allowed, target = DOCUMENTATION_TRANSITIONS[action]
        if self.status not in allowed:
            raise InvalidTransitionError(
                f"cannot {action} a documentation job that is {self.status.value}"
            )
        self.status = target
        self.updated_at = utcnow()

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["status"] = self.status.value
        for name in _DOCUMENTATION_JOB_INSTANTS:
            value = getattr(self, name)
            data[name] = None if value is None else value.isoformat()
        data["access_control"]["visibility"] = self.access_control.visibility.value
        data["retry_policy"] = self.retry_policy.to_document()
        return data

    def to_json(self) -> str:
        return json.dumps(self.to_dict())

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> DocumentationJob:
        data = dict(data)
        data["status"] = DocumentationJobStatus(data.get("status", "PENDING"))
        data["generation_options"] = GenerationOptions(**(data.get("generation_options") or {}))
        if data.get("llm_config") is not None:
            data["llm_config"] = LLMConfig(**data["llm_config"])
        data["statistics"] = JobStatistics(**(data.get("statistics") or {}))
        data["access_control"] = AccessControl(**(data.get("access_control") or {}))
        data["retry_policy"] = RetryPolicy.from_document(data.get("retry_policy"), RetryPolicy())
        for name in _DOCUMENTATION_JOB_INSTANTS:
            if isinstance(data.get(name), str):
                data[name] = datetime.fromisoformat(data[name])
        known = {f.name for f in fields(cls)}
        return cls(**{key: value for key, value in data.items() if key in known})


_DOCUMENTATION_JOB_INSTANTS = ("created_at", "updated_at", "lease_expires_at", "run_at")
"""Its datetime fields (the seed's own timestamps are ISO strings)."""

DOCUMENTATION_TRANSITIONS: dict[str, tuple[set[DocumentationJobStatus], DocumentationJobStatus]] = {
    "start": ({DocumentationJobStatus.PENDING}, DocumentationJobStatus.RUNNING),
    "complete": ({DocumentationJobStatus.RUNNING}, DocumentationJobStatus.COMPLETED),
    "fail": (
        {DocumentationJobStatus.PENDING, DocumentationJobStatus.RUNNING},
        DocumentationJobStatus.FAILED,
    ),
}
"""The same rules as the methods above, in a form a conditional update can use."""

JOB_TRANSITIONS: dict[str, set[JobStatus]] = {
    "claim": {JobStatus.PENDING},
    "progress": {JobStatus.PROCESSING},
    "heartbeat": {JobStatus.PROCESSING},
    "log": {JobStatus.PENDING, JobStatus.PROCESSING},
    "complete": {JobStatus.PROCESSING},
    "fail": {JobStatus.PENDING, JobStatus.PROCESSING},
    "retry": {JobStatus.FAILED},
}
"""For each SecretaryJob action, the statuses it may start from."""
