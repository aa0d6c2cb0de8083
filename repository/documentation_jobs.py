"""The ``documentation_jobs`` collection: DocumentationJob persistence and lifecycle.

Transitions follow ``DOCUMENTATION_TRANSITIONS`` (the rules behind
``DocumentationJob.start/complete/fail``) as single conditional updates. Workers claim
documentation jobs as they claim jobs, with the same machinery (``claims``,
``abandoned_claims``, ``leases``): RUNNING plays PROCESSING's part, a lease bounds the
holder's writes, and a failed run is retried by the job's retry policy
(``documentation_failures``).
"""

from __future__ import annotations

import builtins
import re
from collections.abc import Mapping
from dataclasses import asdict, fields
from datetime import datetime, timedelta
from pathlib import PurePosixPath, PureWindowsPath
from typing import Any

from pymongo import ASCENDING, DESCENDING, IndexModel, ReturnDocument

from .abandoned_claims import AbandonedClaims
from .access import Principal, admin_filter, read_filter
from .claimable import DOCUMENTATION_JOBS
from .claims import DRIVE_FIELDS, read_to_write, write_job
from .documentation_failures import (
    FAILURE_FIELDS,
    expiry_update,
    failure_update,
    retry_update,
)
from .documentation_job_filters import (
    DOCUMENTATION_LIST_INDEXES,
    DocumentationJobFilter,
    backfill_dates,
    documentation_job_order,
)
from .documents import access_update, bump_version, rename_id, with_access
from .errors import ConflictError, ForbiddenError, NotFoundError, ValidationError
from .idempotency import INDEX as IDEMPOTENCY_INDEX
from .idempotency import find_existing, insert_once, stamp
from .jobs import require_user
from .leases import reap_lapsed
from .limits import Limits
from .models import (
    DOCUMENTATION_TRANSITIONS,
    AccessControl,
    DocumentationJob,
    DocumentationJobStatus,
    GenerationOptions,
    JobStatistics,
    LLMConfig,
    new_id,
    utcnow,
)
from .mongo_types import Collection
from .pagination import Page, PageRequest, SortOrder, fetch_page, keyset_indexes
from .refusals import refuse
from .retry import RetryPolicy
from .validation import check_text

KIND = DOCUMENTATION_JOBS.kind
PENDING, RUNNING = DocumentationJobStatus.PENDING.value, DocumentationJobStatus.RUNNING.value
UNFINISHED = [PENDING, RUNNING]
"""Where statistics, files and the module count may still change."""

COMMIT_HASH = re.compile(r"[0-9a-fA-F]{4,64}")
"""A git object name: git accepts abbreviations down to 4 hex digits; a full name has 40
(SHA-1) or 64 (SHA-256)."""

INDEXES = [
    IDEMPOTENCY_INDEX,
    IndexModel([("readers", ASCENDING), ("created_at", DESCENDING), ("_id", DESCENDING)],
               name="readers_created"),
    # a worker's own branch of the read filter: the documentation jobs it holds
    IndexModel([("claimed_by", ASCENDING), ("created_at", DESCENDING), ("_id", DESCENDING)],
               name="claimed_created"),
    IndexModel([("created_at", DESCENDING), ("_id", DESCENDING)], name="created"),
    IndexModel([("status", ASCENDING), ("created_at", DESCENDING), ("_id", DESCENDING)],
               name="status_created"),
    IndexModel([("repository_name", ASCENDING), ("created_at", DESCENDING),
                ("_id", DESCENDING)], name="repository_created"),
    # claim: the PENDING job due first
    IndexModel([("status", ASCENDING), ("run_at", ASCENDING), ("_id", ASCENDING)],
               name="claim"),
    IndexModel([("status", ASCENDING), ("lease_expires_at", ASCENDING)], name="lease"),
]
INDEXES += keyset_indexes({"status": "status", "repository_name": "repository"},
                          {"": "", "readers": "readers", "claimed_by": "claimed"}, INDEXES)
# orderBy, the other filters and the statistics (repository.documentation_job_filters)
INDEXES += DOCUMENTATION_LIST_INDEXES


def readable_documentation_jobs_query(principal: Principal, job_filter: DocumentationJobFilter
                                      ) -> dict[str, Any]:
    """The documentation jobs matching ``job_filter`` that ``principal`` may read."""
    return {**job_filter.query(), **read_filter(principal, claimable=True)}


def documentation_job_to_document(job: DocumentationJob) -> dict[str, Any]:
    doc = asdict(job)
    doc["_id"] = doc.pop("job_id")
    doc["status"] = job.status.value
    doc["retry_policy"] = job.retry_policy.to_document()
    return with_access(doc, job.access_control)


FIELDS = frozenset(field.name for field in fields(DocumentationJob))


def documentation_job_from_document(doc: dict[str, Any]) -> DocumentationJob:
    """Fields a newer release added are left out, so a release reads what the next stores."""
    data = {key: value for key, value in rename_id(doc, "job_id").items() if key in FIELDS}
    data["status"] = DocumentationJobStatus(data["status"])
    data["generation_options"] = GenerationOptions(**data["generation_options"])
    if data.get("llm_config") is not None:
        data["llm_config"] = LLMConfig(**data["llm_config"])
    data["statistics"] = JobStatistics(**data["statistics"])
    data["access_control"] = AccessControl(**data["access_control"])
    data["retry_policy"] = RetryPolicy.from_document(data.get("retry_policy"), RetryPolicy())
    return DocumentationJob(**data)


def check_absolute_path(field: str, value: str) -> None:
    """POSIX (``/src/app``) or Windows (``C:\\src\\app``, ``\\\\host\\share\\app``)."""
    if not (PurePosixPath(value).is_absolute() or PureWindowsPath(value).is_absolute()):
        raise ValidationError(field, f"must be an absolute path, got {value!r}")


def check_commit_hash(value: str | None) -> str | None:
    """A hex object name, stored in lower case as git prints it."""
    if value is None:
        return None
    if not COMMIT_HASH.fullmatch(value):
        raise ValidationError("commitHash", "must be a git commit SHA: 4 to 64 hexadecimal "
                              "digits (a full SHA-1 has 40, a full SHA-256 64)")
    return value.lower()


STATISTICS = tuple(field.name for field in fields(JobStatistics))
MAX_STATISTIC = 2**31 - 1
"""What a statistic may reach: GraphQL's ``Int`` carries no more, and a job whose counter
passed it could no longer be read (an addition that would pass it is refused)."""


def statistics_changes(values: Mapping[str, int | None]) -> dict[str, int]:
    """The given (not None) statistics, checked: known names, non-negative integers, at
    least one."""
    given = {name: value for name, value in values.items() if value is not None}
    for name, value in given.items():
        if name not in STATISTICS:
            raise ValidationError(name, "is not a statistic")
        if isinstance(value, bool) or not isinstance(value, int) or value < 0:
            raise ValidationError(name, "must be a non-negative integer")
    if not given:
        raise ValidationError("statistics", "give at least one statistic")
    return given


class DocumentationJobRepository:
    def __init__(self, collection: Collection, limits: Limits | None = None) -> None:
        self.collection = collection
        self.limits = limits or Limits()
        self.abandoned = AbandonedClaims(collection, self.limits, DOCUMENTATION_JOBS)

    @property
    def default_retry_policy(self) -> RetryPolicy:
        """The configured default (JOBGRAPH_DEFAULT_MAX_ATTEMPTS, JOBGRAPH_RETRY_*)."""
        return self.limits.retry_policy

    async def ensure_indexes(self) -> None:
        await self.collection.create_indexes(INDEXES)
        await backfill_dates(self.collection)

    async def create(
        self,
        principal: Principal,
        *,
        repository_path: str,
        repository_name: str,
        output_directory: str,
        commit_hash: str | None = None,
        branch_name: str | None = None,
        generation_options: GenerationOptions | None = None,
        llm_config: LLMConfig | None = None,
        access_control: AccessControl | None = None,
        retry_policy: RetryPolicy | None = None,
        idempotency_key: str | None = None,
    ) -> DocumentationJob:
        require_user(principal)
        limit = self.limits.max_text_length
        check_text("repositoryPath", repository_path, max_length=limit)
        check_absolute_path("repositoryPath", repository_path)
        check_text("repositoryName", repository_name, max_length=limit)
        check_text("outputDirectory", output_directory, max_length=limit)
        check_text("commitHash", commit_hash, max_length=limit, required=False)
        commit_hash = check_commit_hash(commit_hash)
        check_text("branchName", branch_name, max_length=limit, required=False)
        options = generation_options or GenerationOptions()
        check_text("customOutput", options.custom_output, max_length=limit, required=False)
        if llm_config is not None:
            for name in ("main_model", "cluster_model", "base_url"):
                check_text(name, getattr(llm_config, name), max_length=limit)
        now = utcnow()
        job = DocumentationJob(
            repository_path=repository_path,
            repository_name=repository_name,
            output_directory=output_directory,
            commit_hash=commit_hash,
            branch_name=branch_name,
            generation_options=options,
            llm_config=llm_config,
            created_at=now,
            updated_at=now,
            access_control=(access_control or AccessControl()).with_admin(principal.user_id),
            owner=principal.user_id,
            retry_policy=retry_policy or self.default_retry_policy,
            run_at=now,
        )
        request = {"kind": "documentation_job", **asdict(job), "job_id": None,
                   "created_at": None, "updated_at": None, "run_at": None}
        existing = await find_existing(self.collection, principal, idempotency_key, request,
                                       kind=KIND, claimable=True)
        if existing is not None:
            return documentation_job_from_document(existing)
        doc = documentation_job_to_document(job)
        stamp(doc, idempotency_key, request)
        return documentation_job_from_document(
            await insert_once(self.collection, doc, principal, kind=KIND, claimable=True))

    # -- reads: a worker also reads the documentation jobs it holds ---------------------

    async def get(self, principal: Principal, job_id: str) -> DocumentationJob:
        doc = await self.collection.find_one(
            {"_id": job_id, **read_filter(principal, claimable=True)})
        if doc is None:
            raise NotFoundError(f"documentation job {job_id!r} not found")
        return documentation_job_from_document(doc)

    async def get_many(self, principal: Principal, job_ids: list[str]
                       ) -> dict[str, DocumentationJob]:
        """Readable documentation jobs among ``job_ids``, in one round trip."""
        query = {"_id": {"$in": list(job_ids)}, **read_filter(principal, claimable=True)}
        return {doc["_id"]: documentation_job_from_document(doc)
                async for doc in self.collection.find(query)}

    def _list_query(self, principal: Principal,
                    job_filter: DocumentationJobFilter) -> dict[str, Any]:
        return readable_documentation_jobs_query(principal, job_filter)

    async def list(
        self, principal: Principal, job_filter: DocumentationJobFilter, page: PageRequest,
        order: SortOrder | None = None,
    ) -> Page[DocumentationJob]:
        order = order or documentation_job_order()
        query = self._list_query(principal, job_filter)
        page = page.validated(self.limits.max_page_size, order)
        return await fetch_page(self.collection, query, page, documentation_job_from_document,
                                order)

    async def count(self, principal: Principal, job_filter: DocumentationJobFilter,
                    order: SortOrder | None = None) -> int:
        """How many jobs ``list`` walks through (in ``order``: some hold only some jobs)."""
        query = self._list_query(principal, job_filter)
        if order is not None and order.only:
            query = {"$and": [query, order.only]}
        return await self.collection.count_documents(query)

    # -- claims and leases ----------------------------------------------------------------

    async def claim(self, principal: Principal) -> DocumentationJob | None:
        """Atomically take the PENDING job due first (``run_at``, the oldest due first) and
        start it: RUNNING, held by the caller under a lease, one more attempt counted.

        A claim whose answer cannot reach its caller is undone (``abandoned_claims``).
        Jobs stored before ``run_at`` existed have none, and count as due.
        """
        if not (principal.is_worker or principal.is_admin):
            raise ForbiddenError("claiming documentation jobs needs the worker role")
        now, token = utcnow(), new_id()
        doc = await self.abandoned.claim(
            {"status": PENDING, "run_at": {"$not": {"$gt": now}}},
            {"$set": {"status": RUNNING, "claimed_by": principal.user_id, "claim_token": token,
                      "timestamp_start": now.isoformat(), "started_at": now, "updated_at": now,
                      **self._lease_extension(now)},
             "$inc": {"attempts": 1, "version": 1}},
            sort=[("run_at", ASCENDING), ("_id", ASCENDING)], token=token, now=now)
        return None if doc is None else documentation_job_from_document(doc)

    async def release_claim(self, job: DocumentationJob) -> bool:
        """Undo ``job``'s claim, whose answer could not reach its caller, if it still stands."""
        return job.claim_token is not None and await self.abandoned.release(job.claim_token)

    async def heartbeat(self, principal: Principal, job_id: str) -> DocumentationJob:
        now = utcnow()
        return await self._write(principal, job_id, "heartbeat", [RUNNING], now, {
            "$set": {"updated_at": now, **self._lease_extension(now)}})

    async def reap_expired_leases(self, *, limit: int = 100) -> builtins.list[DocumentationJob]:
        """Jobs whose holder's lease lapsed: requeued after a backoff while attempts remain,
        else FAILED with LEASE_EXPIRED. First, abandoned claims are undone."""
        await self.abandoned.sweep()
        now, default = utcnow(), self.default_retry_policy
        reaped = await reap_lapsed(
            self.collection, {"status": RUNNING, "lease_expires_at": {"$lt": now}},
            projection=FAILURE_FIELDS,
            guard=("status", "lease_expires_at", "claimed_by", "claim_token"),
            update=lambda doc: bump_version(expiry_update(doc, now, default)), limit=limit)
        return [documentation_job_from_document(doc) for doc in reaped]

    # -- lifecycle --------------------------------------------------------------------------

    async def start(self, principal: Principal, job_id: str) -> DocumentationJob:
        """The seed's ``start()``: a writer runs the job itself, with no claim and no lease."""
        now = utcnow()
        return await self._transition(principal, job_id, "start",
                                      {"timestamp_start": now.isoformat(), "started_at": now})

    async def complete(self, principal: Principal, job_id: str) -> DocumentationJob:
        now = utcnow()
        return await self._transition(principal, job_id, "complete",
                                      {"timestamp_end": now.isoformat(), "ended_at": now,
                                       "lease_expires_at": None})

    async def fail(self, principal: Principal, job_id: str, error_message: str, *,
                   retryable: bool = True) -> DocumentationJob:
        """The run ends with this error: a claimed run with attempts left goes back to the
        queue when ``retryable``; otherwise (or when nobody claimed it) the job FAILS.

        The outcome depends on the job's attempts and retry policy, so the job is read,
        and the update made on condition that the same claim still holds it.
        """
        check_text("errorMessage", error_message, max_length=self.limits.max_log_message_length)
        allowed = [status.value for status in DOCUMENTATION_TRANSITIONS["fail"][0]]
        now = utcnow()
        current = await read_to_write(self.collection, principal, job_id, action="fail",
                                      allowed_statuses=allowed, now=now, kind=KIND,
                                      projection={**DRIVE_FIELDS, **FAILURE_FIELDS})
        update = failure_update(current, now, code=None, message=error_message,
                                retryable=retryable, default=self.default_retry_policy)
        return await self._write(principal, job_id, "fail", allowed, now, update, extra={
            "status": current["status"], "claim_token": current.get("claim_token")})

    async def retry(self, principal: Principal, job_id: str) -> DocumentationJob:
        """FAILED back to PENDING, claimable at once. A writer's decision (a worker's claim
        gives no right to it); a job failed as not retryable stays FAILED."""
        now = utcnow()
        return await self._write(principal, job_id, "retry", [DocumentationJobStatus.FAILED],
                                 now, retry_update(now), extra={"retryable": {"$ne": False}})

    # -- statistics and files: while the job is unfinished -------------------------------

    async def set_statistics(
        self, principal: Principal, job_id: str,
        statistics: JobStatistics | Mapping[str, int | None],
    ) -> DocumentationJob:
        """Set the given statistics (all of a ``JobStatistics``); the others keep theirs."""
        values = asdict(statistics) if isinstance(statistics, JobStatistics) else statistics
        given = statistics_changes(values)
        now = utcnow()
        return await self._write(principal, job_id, "set the statistics of", UNFINISHED, now, {
            "$set": {**{f"statistics.{name}": value for name, value in given.items()},
                     "updated_at": now, **self._lease_extension(now)}})

    async def add_statistics(
        self, principal: Principal, job_id: str, increments: Mapping[str, int | None]
    ) -> DocumentationJob:
        """Add to the counters; ``max_depth`` rises to the value given if that is deeper."""
        given = statistics_changes(increments)
        now = utcnow()
        update: dict[str, Any] = {"$set": {"updated_at": now, **self._lease_extension(now)}}
        deepest = given.pop("max_depth", None)
        if deepest is not None:
            update["$max"] = {"statistics.max_depth": deepest}
        if given:
            update["$inc"] = {f"statistics.{name}": value for name, value in given.items()}
        for name, value in given.items():
            if value > MAX_STATISTIC:
                raise ValidationError(name, f"the total would pass {MAX_STATISTIC}")
        room = {f"statistics.{name}": {"$not": {"$gt": MAX_STATISTIC - value}}
                for name, value in given.items()}
        try:
            return await self._write(principal, job_id, "add statistics to", UNFINISHED, now,
                                     update, extra=room)
        except ConflictError:  # matched nothing, yet the job may be written: no room left
            current = await self.collection.find_one({"_id": job_id}, {"statistics": 1})
            totals = (current or {}).get("statistics") or {}
            for name, value in given.items():
                if (totals.get(name) or 0) + value > MAX_STATISTIC:
                    raise ValidationError(
                        name, f"the total would pass {MAX_STATISTIC}: it is {totals[name]}"
                    ) from None
            raise

    async def add_generated_files(
        self, principal: Principal, job_id: str, files: builtins.list[str],
        module_count: int | None = None
    ) -> DocumentationJob:
        """Append files (duplicates ignored) and optionally set ``module_count``."""
        if not files and module_count is None:
            raise ValidationError("files", "give at least one file or a module count")
        if len(files) > self.limits.max_generated_files_per_call:
            raise ValidationError("files", f"at most {self.limits.max_generated_files_per_call}"
                                  " files per call")
        for path in files:
            check_text("files", path, max_length=self.limits.max_text_length)
        now = utcnow()
        changes: dict[str, Any] = {"updated_at": now, **self._lease_extension(now)}
        update: dict[str, Any] = {"$set": changes}
        if files:
            update["$addToSet"] = {"files_generated": {"$each": list(files)}}
        if module_count is not None:
            if module_count < 0:
                raise ValidationError("moduleCount", "must not be negative")
            changes["module_count"] = module_count
        return await self._write(principal, job_id, "add files to", UNFINISHED, now, update)

    # -- administration ---------------------------------------------------------------------

    async def delete(self, principal: Principal, job_id: str) -> DocumentationJob:
        doc = await self.collection.find_one_and_delete({"_id": job_id, **admin_filter(principal)})
        if doc is None:
            await refuse(self.collection, principal, job_id, kind=KIND, action="delete",
                         need="admin", claimable=True)
        return documentation_job_from_document(doc)

    async def set_access(
        self, principal: Principal, job_id: str, access: AccessControl
    ) -> DocumentationJob:
        doc = await self.collection.find_one_and_update(
            {"_id": job_id, **admin_filter(principal)},
            bump_version({"$set": {**access_update(access), "updated_at": utcnow()}}),
            return_document=ReturnDocument.AFTER)
        if doc is None:
            await refuse(self.collection, principal, job_id, kind=KIND,
                         action="change the access control of", need="admin", claimable=True)
        return documentation_job_from_document(doc)

    # -- internals ----------------------------------------------------------------------------

    def _lease_extension(self, now: datetime) -> dict[str, Any]:
        return {"lease_expires_at": now + timedelta(seconds=self.limits.lease_seconds)}

    async def _transition(self, principal: Principal, job_id: str, action: str,
                          changes: dict[str, Any]) -> DocumentationJob:
        allowed, target = DOCUMENTATION_TRANSITIONS[action]
        now = utcnow()
        return await self._write(principal, job_id, action, allowed, now, {
            "$set": {"status": target.value, "updated_at": now, **changes}})

    async def _write(self, principal: Principal, job_id: str, action: str,
                     allowed: Any, now: datetime,
                     update: dict[str, Any] | builtins.list[dict[str, Any]],
                     *, extra: dict[str, Any] | None = None) -> DocumentationJob:
        """See ``claims.write_job``: the holder writes while its lease runs, writers that
        never claimed the job write too, a worker that lost its claim never does."""
        statuses = [getattr(status, "value", status) for status in allowed]
        return documentation_job_from_document(await write_job(
            self.collection, principal, job_id, update, action=action,
            allowed_statuses=statuses, now=now, kind=KIND, extra=extra))
