"""The ``jobs`` collection: SecretaryJob persistence and its lifecycle.

Every transition is one conditional ``find_one_and_update`` whose filter holds the
expected status and the caller's write permission, so two workers can never claim
or finish the same job twice. When the update matches nothing, ``_refuse`` reads
the job once to say why (not found, forbidden, wrong state).
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import pymongo
from pymongo import ASCENDING, DESCENDING, IndexModel, ReturnDocument
from pymongo.asynchronous.collection import AsyncCollection
from pymongo.errors import PyMongoError

from .abandoned_claims import AbandonedClaims
from .access import Principal, admin_filter, read_filter, write_filter
from .claims import (
    DRIVE_FIELDS,
    LEASE_ACTIONS,
    lease_write_filter,
    may_write_job,
    refusal_filter,
    refuse_job_write,
)
from .current_states import CurrentStates
from .documents import access_update, bump_version
from .errors import ConflictError, ForbiddenError, NotFoundError, ValidationError
from .idempotency import INDEX as IDEMPOTENCY_INDEX
from .idempotency import find_existing, insert_once, stamp
from .job_documents import job_from_document, job_to_document, log_document, progress_document
from .job_logs import (
    OLDEST_ENTRY,
    LogWindows,
    first_shown,
    held_entries,
    log_push,
)
from .leases import reap_expired_leases
from .limits import Limits
from .models import (
    JOB_TRANSITIONS,
    AccessControl,
    JobProgress,
    JobStatus,
    LogEntry,
    LogSlice,
    SecretaryJob,
    check_log_level,
    new_id,
    slice_after,
    utcnow,
)
from .pagination import Page, PageRequest, fetch_page, filter_query, keyset_indexes
from .refusals import refuse
from .retention import ensure_retention
from .validation import check_document, check_text

INDEXES = [
    IDEMPOTENCY_INDEX,
    IndexModel([("readers", ASCENDING), ("created_at", DESCENDING), ("_id", DESCENDING)],
               name="readers_created"),
    # a worker's own branch of the read filter: the jobs it holds
    IndexModel([("claimed_by", ASCENDING), ("created_at", DESCENDING), ("_id", DESCENDING)],
               name="claimed_created"),
    IndexModel([("created_at", DESCENDING), ("_id", DESCENDING)], name="created"),
    IndexModel([("status", ASCENDING), ("created_at", DESCENDING), ("_id", DESCENDING)],
               name="status_created"),
    IndexModel([("job_type", ASCENDING), ("created_at", DESCENDING), ("_id", DESCENDING)],
               name="type_created"),
    IndexModel([("batch_id", ASCENDING), ("created_at", DESCENDING), ("_id", DESCENDING)],
               name="batch_created"),
    # claim: the oldest PENDING job of some types
    IndexModel([("status", ASCENDING), ("job_type", ASCENDING), ("created_at", ASCENDING),
                ("_id", ASCENDING)], name="claim"),
    # batch counts: one $group over (batch_id, status)
    IndexModel([("batch_id", ASCENDING), ("status", ASCENDING)], name="batch_status"),
    IndexModel([("status", ASCENDING), ("lease_expires_at", ASCENDING)], name="lease"),
]
# Every list filter combination (JobFilterInput, batch jobs, subscriptions' first page)
# for admins (no read filter), readers and workers (the two branches of the read filter).
INDEXES += keyset_indexes({"status": "status", "job_type": "type", "batch_id": "batch"},
                          {"": "", "readers": "readers", "claimed_by": "claimed"}, INDEXES)


@dataclass(frozen=True)
class JobFilter:
    status: JobStatus | None = None
    job_type: str | None = None
    batch_id: str | None = None
    created_after: datetime | None = None
    created_before: datetime | None = None

    def query(self) -> dict[str, Any]:
        return filter_query(
            {"status": self.status, "job_type": self.job_type, "batch_id": self.batch_id},
            self.created_after, self.created_before)

    def matches(self, document: dict[str, Any] | None) -> bool:
        """Whether a stored job document passes the status, type and batch conditions."""
        if document is None:
            return False
        return ((self.status is None or document.get("status") == self.status.value)
                and (self.job_type is None or document.get("job_type") == self.job_type)
                and (self.batch_id is None or document.get("batch_id") == self.batch_id))


class JobRepository:
    def __init__(self, collection: AsyncCollection, limits: Limits | None = None) -> None:
        self.collection = collection
        self.limits = limits or Limits()
        self.abandoned = AbandonedClaims(collection, self.limits)
        self.log_windows = LogWindows(collection)
        self.current_states = CurrentStates(collection)

    async def ensure_indexes(self) -> None:
        await self.collection.create_indexes(INDEXES)

    async def ensure_retention(self, ttl_seconds: int | None) -> int | None:
        """See ``repository.retention``: the optional TTL on finished jobs."""
        return await ensure_retention(self.collection, ttl_seconds)

    async def count_by_status(self, *, seconds: float | None = None) -> dict[JobStatus, int]:
        """Jobs per status over the whole collection (for metrics, so no access filter);
        every status is present. One aggregation, bounded to ``seconds``."""
        pipeline = [{"$sort": {"status": ASCENDING}},  # lets MongoDB walk an index
                    {"$group": {"_id": "$status", "count": {"$sum": 1}}}]
        with pymongo.timeout(seconds):
            rows = await (await self.collection.aggregate(pipeline)).to_list()
        counts = dict.fromkeys(JobStatus, 0)
        for row in rows:
            if row["_id"] in counts:  # a StrEnum: the stored string finds its member
                counts[JobStatus(row["_id"])] = row["count"]
        return counts

    # -- creation ---------------------------------------------------------

    def new_job(
        self,
        principal: Principal,
        *,
        job_type: str,
        parameters: dict[str, Any] | None = None,
        access_control: AccessControl | None = None,
        batch_id: str | None = None,
        max_attempts: int | None = None,
    ) -> SecretaryJob:
        """A validated, unsaved job; the creator becomes an admin of it."""
        require_user(principal)
        check_text("jobType", job_type, max_length=self.limits.max_text_length)
        check_document("parameters", parameters, max_bytes=self.limits.max_payload_bytes)
        attempts = self.limits.default_max_attempts if max_attempts is None else max_attempts
        if not 1 <= attempts <= 100:
            raise ValidationError("maxAttempts", "must be between 1 and 100")
        now = utcnow()
        return SecretaryJob(
            job_id=new_id(),
            job_type=job_type,
            parameters=dict(parameters or {}),
            created_at=now,
            updated_at=now,
            access_control=(access_control or AccessControl()).with_admin(principal.user_id),
            batch_id=batch_id,
            owner=principal.user_id,
            max_attempts=attempts,
        )

    async def create(
        self, principal: Principal, *, idempotency_key: str | None = None, **fields: Any
    ) -> SecretaryJob:
        """A new PENDING job; with ``idempotency_key``, repeats return the first one."""
        job = self.new_job(principal, **fields)
        request = {"kind": "job", **fields}
        existing = await find_existing(self.collection, principal, idempotency_key, request,
                                       kind="job", claimable=True)
        if existing is not None:
            return job_from_document(existing)
        doc = job_to_document(job)
        stamp(doc, idempotency_key, request)
        return job_from_document(await insert_once(self.collection, doc, principal,
                                                   kind="job", claimable=True))

    # -- reads ------------------------------------------------------------

    async def get(self, principal: Principal, job_id: str) -> SecretaryJob:
        query = {"_id": job_id, **read_filter(principal, claimable=True)}
        doc = await self.collection.find_one(query)
        if doc is None:
            raise NotFoundError(f"job {job_id!r} not found")
        return job_from_document(doc)

    async def get_many(self, principal: Principal, job_ids: list[str]) -> dict[str, SecretaryJob]:
        """Readable jobs among ``job_ids``, in one round trip (for DataLoaders)."""
        query = {"_id": {"$in": list(job_ids)}, **read_filter(principal, claimable=True)}
        return {doc["_id"]: job_from_document(doc) async for doc in self.collection.find(query)}

    def _list_query(self, principal: Principal, job_filter: JobFilter) -> dict[str, Any]:
        return {**job_filter.query(), **read_filter(principal, claimable=True)}

    async def list(
        self, principal: Principal, job_filter: JobFilter, page: PageRequest
    ) -> Page[SecretaryJob]:
        page = page.validated(self.limits.max_page_size)
        return await fetch_page(
            self.collection, self._list_query(principal, job_filter), page, job_from_document
        )

    async def count(self, principal: Principal, job_filter: JobFilter) -> int:
        return await self.collection.count_documents(self._list_query(principal, job_filter))

    # -- lifecycle --------------------------------------------------------

    async def claim(
        self, principal: Principal, job_types: list[str] | None = None
    ) -> SecretaryJob | None:
        """Atomically take the oldest PENDING job (of ``job_types``, when given).

        A claim whose answer cannot reach its caller is undone (``abandoned_claims``):
        when the caller is cancelled while the claim is in flight, or no answer comes.
        """
        if not (principal.is_worker or principal.is_admin):
            raise ForbiddenError("claiming jobs needs the worker role")
        query: dict[str, Any] = {"status": JobStatus.PENDING.value}
        if job_types:
            for job_type in job_types:
                check_text("jobTypes", job_type, max_length=self.limits.max_text_length)
            query["job_type"] = {"$in": list(job_types)}
        now = utcnow()
        token = new_id()
        attempt = asyncio.ensure_future(self.collection.find_one_and_update(
            query,
            {
                "$set": {
                    "status": JobStatus.PROCESSING.value,
                    "claimed_by": principal.user_id,
                    "claim_token": token,
                    "processing_started_at": now,
                    "lease_expires_at": now + timedelta(seconds=self.limits.lease_seconds),
                    "updated_at": now,
                },
                "$inc": {"attempts": 1, "version": 1},
            },
            sort=[("created_at", ASCENDING), ("_id", ASCENDING)],
            return_document=ReturnDocument.AFTER,
        ))
        try:
            doc = await asyncio.shield(attempt)
        except asyncio.CancelledError:
            self.abandoned.after_cancel(attempt, token, now)
            raise
        except PyMongoError:
            self.abandoned.after_error(token, now)
            raise
        return None if doc is None else job_from_document(doc)

    async def release_claim(self, job: SecretaryJob) -> bool:
        """Undo ``job``'s claim, whose answer could not reach its caller, if it still
        stands: the job is PENDING again with its attempt given back."""
        return job.claim_token is not None and await self.abandoned.release(job.claim_token)

    async def update_progress(
        self, principal: Principal, job_id: str, progress: JobProgress
    ) -> SecretaryJob:
        check_text("step", progress.step, max_length=self.limits.max_text_length)
        check_text("message", progress.message, max_length=self.limits.max_log_message_length,
                   required=False)
        now = utcnow()
        return await self._transition(principal, job_id, "progress", {
            "$set": {"progress": progress_document(progress), "updated_at": now,
                     **self._lease_extension(now)},
        })

    async def heartbeat(self, principal: Principal, job_id: str) -> SecretaryJob:
        now = utcnow()
        return await self._transition(principal, job_id, "heartbeat", {
            "$set": {"updated_at": now, **self._lease_extension(now)},
        })

    async def append_logs(
        self, principal: Principal, job_id: str, entries: list[tuple[str, str]]
    ) -> SecretaryJob:
        """Append ``(level, message)`` entries, numbered on from the job's ``log_seq``.

        The numbering needs the current ``log_seq``, which a plain update cannot
        read, so this is optimistic: read the counter, update on the condition
        that it is unchanged, and try again when another writer got there first.
        Each read also decides whether the caller may append at all, so a refusal
        (a lost lease, a job it may not write) costs that one read, not a retry loop.
        """
        if not entries:
            raise ValidationError("entries", "must hold at least one entry")
        if len(entries) > self.limits.max_logs_per_call:
            raise ValidationError("entries", f"holds more than {self.limits.max_logs_per_call}")
        for level, message in entries:
            check_log_level(level)
            check_text("message", message, max_length=self.limits.max_log_message_length)
        allowed = [status.value for status in JOB_TRANSITIONS["log"]]
        for _ in range(50):
            now = utcnow()
            current = await self.collection.find_one(
                {"_id": job_id, **refusal_filter(principal, "log")},
                projection={**DRIVE_FIELDS, **OLDEST_ENTRY})
            if not may_write_job(principal, current, action="log", allowed_statuses=allowed,
                                 now=now):
                refuse_job_write(principal, current, job_id, action="log",
                                 allowed_statuses=allowed, now=now)
            assert current is not None  # may_write_job said so
            seq, attempt = current.get("log_seq", 0), max(current.get("attempts", 0), 1)
            docs = [
                log_document(LogEntry(now, level, message, seq + offset, attempt))  # type: ignore[arg-type]
                for offset, (level, message) in enumerate(entries, start=1)
            ]
            update = {
                "$push": {"logs": log_push(docs, held_entries(current),
                                           self.limits.max_logs_per_job)},
                "$set": {"log_seq": seq + len(docs), "updated_at": now,
                         "log_first": first_shown(seq + len(docs), self.limits.max_logs_per_job),
                         **self._lease_extension(now)},
            }
            doc = await self.collection.find_one_and_update(
                {"_id": job_id, "status": {"$in": allowed}, "log_seq": seq,
                 **lease_write_filter(principal, now)},
                bump_version(update), return_document=ReturnDocument.AFTER)
            if doc is not None:
                return job_from_document(doc)
            # another append got there first, or the job changed: read again and decide
        raise ConflictError("the log is changing too fast to append to; try again")

    async def complete(
        self, principal: Principal, job_id: str, results: dict[str, Any] | None = None
    ) -> SecretaryJob:
        check_document("results", results, max_bytes=self.limits.max_payload_bytes)
        now = utcnow()
        return await self._transition(principal, job_id, "complete", {
            "$set": {"status": JobStatus.COMPLETED.value, "results": results, "updated_at": now,
                     "completed_at": now, "lease_expires_at": None},
        })

    async def fail(
        self,
        principal: Principal,
        job_id: str,
        *,
        code: str,
        message: str,
        details: dict[str, Any] | None = None,
        retryable: bool = True,
    ) -> SecretaryJob:
        error = self.error_document(code, message, details)
        now = utcnow()
        return await self._transition(principal, job_id, "fail", {
            "$set": {"status": JobStatus.FAILED.value, "error": error, "updated_at": now,
                     "completed_at": now, "lease_expires_at": None, "retryable": retryable},
        })

    def error_document(
        self, code: str, message: str, details: dict[str, Any] | None
    ) -> dict[str, Any]:
        check_text("error.code", code, max_length=100)
        check_text("error.message", message, max_length=self.limits.max_log_message_length)
        check_document("error.details", details, max_bytes=self.limits.max_payload_bytes)
        return {"code": code, "message": message, "details": details}

    async def retry(self, principal: Principal, job_id: str) -> SecretaryJob:
        """FAILED back to PENDING; the error moves to ``previous_errors``, nothing is lost.

        A job a worker failed as not retryable stays FAILED. Retrying is the job's
        writers' decision: a worker's claim gives no right to it (else a worker whose
        last lease lapsed could put the job back and claim it past ``max_attempts``).
        The worker that held it is remembered, so a late write from it is a CONFLICT.
        """
        now = utcnow()
        return await self._transition(principal, job_id, "retry", [
            {"$set": {
                "previous_errors": {"$concatArrays": [
                    {"$ifNull": ["$previous_errors", []]}, ["$error"]]},
                "former_workers": {"$setUnion": [
                    {"$ifNull": ["$former_workers", []]},
                    {"$cond": [{"$ifNull": ["$claimed_by", False]}, ["$claimed_by"], []]},
                ]},
            }},
            {"$set": {
                "status": JobStatus.PENDING.value, "error": None, "progress": None,
                "results": None, "claimed_by": None, "claim_token": None, "lease_expires_at": None,
                "processing_started_at": None, "completed_at": None, "updated_at": now,
                "retryable": True,
            }},
        ], extra={"retryable": {"$ne": False}})

    async def delete(self, principal: Principal, job_id: str) -> SecretaryJob:
        doc = await self.collection.find_one_and_delete({"_id": job_id, **admin_filter(principal)})
        if doc is None:
            await refuse(self.collection, principal, job_id, kind="job", action="delete",
                         need="admin", claimable=True)
        return job_from_document(doc)

    async def set_access(
        self, principal: Principal, job_id: str, access: AccessControl
    ) -> SecretaryJob:
        doc = await self.collection.find_one_and_update(
            {"_id": job_id, **admin_filter(principal)},
            bump_version({"$set": {**access_update(access), "updated_at": utcnow()}}),
            return_document=ReturnDocument.AFTER,
        )
        if doc is None:
            await refuse(self.collection, principal, job_id, kind="job",
                         action="change the access control of", need="admin", claimable=True)
        return job_from_document(doc)

    # -- logs, a few entries at a time (see repository.job_logs) -------------

    async def get_without_logs(self, principal: Principal, job_id: str) -> SecretaryJob:
        """What a subscription reads first: one read for a burst of subscribers of the
        job (``current_states.py``)."""
        return await self.current_states.get(principal, job_id)

    async def log_window(self, job: SecretaryJob, last: int | None = None) -> list[LogEntry]:
        """The newest ``last`` entries (all, when None) of ``job``'s log as of its state."""
        kept = self.limits.max_logs_per_job  # the document may hold a few more: log_push
        count = min(kept, job.log_seq if last is None else last)
        if job.logs_loaded:
            return job.logs[-count:] if count > 0 else []
        return await self.log_windows.window(job.job_id, newest=job.log_seq, count=count)

    async def logs_after(self, job: SecretaryJob, seq: int) -> LogSlice:
        """``job.logs_after(seq)``, for a job read with or without its log."""
        count = min(self.limits.max_logs_per_job, job.log_seq - seq)
        if job.logs_loaded:
            entries = job.logs[-count:] if count > 0 else []
        else:
            entries = await self.log_windows.window(job.job_id, newest=job.log_seq,
                                                    count=count)
        return slice_after(entries, seq, job.log_seq)

    # -- leases -------------------------------------------------------------

    async def reap_expired_leases(self, *, limit: int = 100) -> list[SecretaryJob]:
        """See ``repository.leases``: lapsed leases back to PENDING, or FAILED at the end.
        First, claims whose answer never reached their caller are undone."""
        await self.abandoned.sweep()
        return await reap_expired_leases(self.collection, self.limits, limit=limit)

    # -- internals ----------------------------------------------------------

    def _lease_extension(self, now: datetime) -> dict[str, Any]:
        return {"lease_expires_at": now + timedelta(seconds=self.limits.lease_seconds)}

    async def _transition(
        self,
        principal: Principal,
        job_id: str,
        action: str,
        update: dict[str, Any] | list[dict[str, Any]],
        *,
        extra: dict[str, Any] | None = None,
    ) -> SecretaryJob:
        allowed = [status.value for status in JOB_TRANSITIONS[action]]
        query = {"_id": job_id, "status": {"$in": allowed}, **(extra or {})}
        now = utcnow()
        # The holder may drive the job while its lease runs; retrying is for writers.
        if action in LEASE_ACTIONS:
            query.update(lease_write_filter(principal, now))
        else:
            query.update(write_filter(principal))
        doc = await self.collection.find_one_and_update(
            query, bump_version(update), return_document=ReturnDocument.AFTER
        )
        if doc is None:
            current = await self.collection.find_one(
                {"_id": job_id, **refusal_filter(principal, action)}, projection=DRIVE_FIELDS)
            refuse_job_write(principal, current, job_id, action=action,
                             allowed_statuses=allowed, now=now)
        return job_from_document(doc)


def require_user(principal: Principal) -> None:
    if principal.is_anonymous:
        raise ForbiddenError("sign in to create objects")
