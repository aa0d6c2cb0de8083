"""The ``jobs`` collection: SecretaryJob persistence and its lifecycle.

Every transition is one conditional ``find_one_and_update`` whose filter holds the
expected status and the caller's write permission, so two workers can never claim
or finish the same job twice. When the update matches nothing, ``_refuse`` reads
the job once to say why (not found, forbidden, wrong state).
"""

from __future__ import annotations

import builtins
from datetime import UTC, datetime, timedelta
from typing import Any

import pymongo
from pymongo import ASCENDING, DESCENDING, IndexModel, ReturnDocument

from .abandoned_claims import AbandonedClaims
from .access import Principal, admin_filter, read_filter, write_filter
from .cancellation import MAX_REASON_LENGTH, cancel_update
from .claims import (
    DRIVE_FIELDS,
    LEASE_ACTIONS,
    lease_write_filter,
    may_write_job,
    read_to_write,
    refusal_filter,
    refuse_job_write,
)
from .current_states import CurrentStates
from .documents import access_update, bump_version
from .errors import (
    CancelRequestedError,
    ConflictError,
    ForbiddenError,
    NotFoundError,
    ValidationError,
)
from .idempotency import INDEX as IDEMPOTENCY_INDEX
from .idempotency import find_existing, insert_once, stamp
from .job_documents import job_from_document, job_to_document, log_document, progress_document
from .job_filters import LIST_INDEXES, JobFilter, check_order, job_order
from .job_history import actor_stamp, delete_stamp, stamped
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
    CancelRequest,
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
from .mongo_types import Collection
from .pagination import Page, PageRequest, SortOrder, fetch_page, keyset_indexes
from .queues import QueueRepository, QueueRules, claimable_query
from .refusals import refuse
from .requeue import END_FIELDS, Ending, end_claim
from .retention import ensure_retention
from .retry import MAX_ATTEMPTS, Backoff, RetryPolicy
from .validation import check_document, check_text
from .workers import WorkerRepository

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
    # claims: the highest priority, then the oldest, PENDING job (of some types, or of
    # any type but the paused ones); what makes a job due is read from the index too
    IndexModel([("status", ASCENDING), ("job_type", ASCENDING), ("priority", DESCENDING),
                ("created_at", ASCENDING), ("_id", ASCENDING), ("run_at", ASCENDING),
                ("batch_active", ASCENDING)], name="claim_queue"),
    IndexModel([("status", ASCENDING), ("priority", DESCENDING), ("created_at", ASCENDING),
                ("_id", ASCENDING), ("job_type", ASCENDING), ("run_at", ASCENDING),
                ("batch_active", ASCENDING)], name="claim_any"),
    # the reaper: claims past their deadline (timeout, or a cancel's grace)
    IndexModel([("status", ASCENDING), ("timeout_at", ASCENDING)], name="deadline"),
    # a batch's jobs to cancel (no request yet) or to retry (retryable, not cancelled)
    IndexModel([("batch_id", ASCENDING), ("status", ASCENDING), ("cancel_requested", ASCENDING),
                ("retryable", ASCENDING), ("error.code", ASCENDING)], name="batch_settle"),
]
# Every list filter combination (JobFilterInput, batch jobs, subscriptions' first page)
# for admins (no read filter), readers and workers (the two branches of the read filter).
INDEXES += keyset_indexes({"status": "status", "job_type": "type", "batch_id": "batch"},
                          {"": "", "readers": "readers", "claimed_by": "claimed"}, INDEXES)
# orderBy and the other filters (repository.job_filters); jobStats' aggregations use them too
INDEXES += LIST_INDEXES

CLAIM_ORDER = [("priority", DESCENDING), ("created_at", ASCENDING), ("_id", ASCENDING)]
MIN_PRIORITY, MAX_PRIORITY = -1000, 1000
MAX_DELAY = timedelta(days=366)
MAX_TIMEOUT_SECONDS = 7 * 24 * 3600.0
FAIL_FIELDS = {**DRIVE_FIELDS, **END_FIELDS}
"""What a failJob reads to decide between requeueing and failing."""


class JobRepository:
    def __init__(self, collection: Collection, limits: Limits | None = None) -> None:
        self.collection = collection
        self.limits = limits or Limits()
        self.abandoned = AbandonedClaims(collection, self.limits)
        self.log_windows = LogWindows(collection)
        db = collection.database
        self.workers = WorkerRepository(db["workers"], collection, self.limits)
        self.queues = QueueRepository(db["queues"], collection, self.workers, self.limits)
        self.current_states = CurrentStates(collection)

    async def ensure_indexes(self) -> None:
        await self.collection.create_indexes(INDEXES)
        await self.queues.ensure_indexes()
        await self.workers.ensure_indexes()

    async def ensure_retention(self, ttl_seconds: int | None) -> int | None:
        """See ``repository.retention``: the optional TTL on finished jobs."""
        return await ensure_retention(self.collection, ttl_seconds)

    async def count_by_status(self, *, seconds: float | None = None) -> dict[JobStatus, int]:
        """Jobs per status over the whole collection (for metrics, so no access filter);
        every status is present. One aggregation, bounded to ``seconds``."""
        pipeline: list[dict[str, Any]] = [
                    {"$sort": {"status": ASCENDING}},  # lets MongoDB walk an index
                    {"$group": {"_id": "$status", "count": {"$sum": 1}}}]
        with pymongo.timeout(seconds):
            rows = await (await self.collection.aggregate(pipeline)).to_list()
        counts = dict.fromkeys(JobStatus, 0)
        for row in rows:
            if row["_id"] in counts:  # a StrEnum: the stored string finds its member
                counts[JobStatus(row["_id"])] = row["count"]
        return counts

    async def count_by_status_and_type(self, *, seconds: float | None = None
                                       ) -> dict[tuple[JobStatus, str], int]:
        """Jobs per (status, job type) over the whole collection (for metrics, so no access
        filter); every status of every type seen is present. One aggregation, bounded to
        ``seconds``, walking the ``claim`` index (status, job_type)."""
        pipeline: list[dict[str, Any]] = [{"$sort": {"status": ASCENDING, "job_type": ASCENDING}},
                    {"$group": {"_id": {"status": "$status", "job_type": "$job_type"},
                                "count": {"$sum": 1}}}]
        with pymongo.timeout(seconds):
            rows = await (await self.collection.aggregate(pipeline)).to_list()
        types = {row["_id"].get("job_type") for row in rows}
        counts = {(status, job_type): 0 for status in JobStatus for job_type in types}
        for row in rows:
            status = row["_id"].get("status")
            if status in JobStatus.__members__:
                counts[(JobStatus(status), row["_id"].get("job_type"))] = row["count"]
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
        priority: int | None = None,
        run_at: datetime | None = None,
        timeout_seconds: float | None = None,
        retry_policy: dict[str, Any] | None = None,
    ) -> SecretaryJob:
        """A validated, unsaved job; the creator becomes an admin of it. ``retry_policy``
        holds any of ``max_attempts``, ``backoff``, ``base_seconds``, ``cap_seconds``; the
        rest comes from the configured default."""
        require_user(principal)
        check_text("jobType", job_type, max_length=self.limits.max_text_length)
        check_document("parameters", parameters, max_bytes=self.limits.max_payload_bytes)
        policy = self.retry_policy(max_attempts, retry_policy)
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
            max_attempts=policy.max_attempts,
            retry_policy=policy,
            priority=check_priority(0 if priority is None else priority),
            run_at=check_run_at("runAt", run_at, now),
            timeout_seconds=check_timeout(timeout_seconds),
        )

    def retry_policy(self, max_attempts: int | None, given: dict[str, Any] | None
                     ) -> RetryPolicy:
        """A job's policy: what was given, the configured default for the rest."""
        given = {key: value for key, value in (given or {}).items() if value is not None}
        attempts = given.get("max_attempts")
        if attempts is not None and max_attempts is not None and attempts != max_attempts:
            raise ValidationError("retryPolicy.maxAttempts", "differs from maxAttempts")
        attempts = attempts if attempts is not None else max_attempts
        if attempts is not None and not 1 <= attempts <= MAX_ATTEMPTS:
            raise ValidationError("maxAttempts", f"must be between 1 and {MAX_ATTEMPTS}")
        default = self.limits.retry_policy
        return RetryPolicy(attempts if attempts is not None else default.max_attempts,
                           Backoff(given.get("backoff", default.backoff)),
                           float(given.get("base_seconds", default.base_seconds)),
                           float(given.get("cap_seconds", max(
                               default.cap_seconds, given.get("base_seconds", 0.0)))))

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
        return readable_jobs_query(principal, job_filter)

    async def list(
        self, principal: Principal, job_filter: JobFilter, page: PageRequest,
        order: SortOrder | None = None,
    ) -> Page[SecretaryJob]:
        """A page of the jobs matching ``job_filter`` that the caller may read, in
        ``order`` (``job_order()``: newest first, by default)."""
        order = order or job_order()
        query = self._list_query(principal, job_filter)
        check_order(job_filter, order)
        page = page.validated(self.limits.max_page_size, order)
        return await fetch_page(self.collection, query, page, job_from_document, order)

    async def count(self, principal: Principal, job_filter: JobFilter,
                    order: SortOrder | None = None) -> int:
        """How many jobs ``list`` walks through (in ``order``: some hold only some jobs)."""
        query = self._list_query(principal, job_filter)
        if order is not None and order.only:
            query = {"$and": [query, order.only]}
        return await self.collection.count_documents(query)

    # -- lifecycle --------------------------------------------------------

    async def claim(
        self, principal: Principal, job_types: builtins.list[str] | None = None
    ) -> SecretaryJob | None:
        """Atomically take the PENDING job of highest priority, oldest first within a
        priority (of ``job_types``, when given), that is due and claimable: its type's
        queue is not paused nor at its limit, its batch (if any) is active.

        A claim whose answer cannot reach its caller is undone (``abandoned_claims``):
        when the caller is cancelled while the claim is in flight, or no answer comes.
        """
        if not (principal.is_worker or principal.is_admin):
            raise ForbiddenError("claiming jobs needs the worker role")
        if job_types:
            for job_type in job_types:
                check_text("jobTypes", job_type, max_length=self.limits.max_text_length)
            job_types = list(dict.fromkeys(job_types))
        else:
            job_types = None
        rules = await self.queues.rules(job_types)
        now = utcnow()
        token = new_id()

        async def claiming() -> dict[str, Any] | None:
            # the worker is recorded within the shielded claim: if that write fails, or the
            # caller leaves meanwhile, the claim is undone rather than held for nobody
            doc = await self._claim(principal, job_types, rules, token, now)
            if doc is not None:
                await self.workers.seen(principal, job_types)
            return doc

        doc = await self.abandoned.shielded(claiming(), token=token, now=now)
        return None if doc is None else job_from_document(doc)

    async def _claim(self, principal: Principal, job_types: builtins.list[str] | None,
                     rules: QueueRules, token: str, now: datetime) -> dict[str, Any] | None:
        """One conditional update when no limited type is wanted. Otherwise the best due
        job is looked up first: a limited type's is claimed in a transaction with its
        queue (``QueueRepository.claim_within_limit``), the others' by the plain update;
        a full limited type is left out and the next best tried."""
        update = claim_update(principal.user_id, token, now, self.limits.lease_seconds)
        due = claimable_query(now)
        limited = {job_type: maximum for job_type, maximum in rules.limits.items()
                   if job_types is None or job_type in job_types}
        paused, full, open_drained = set(rules.paused), set[str](), False

        async def plain() -> dict[str, Any] | None:
            wanted = type_condition(job_types, paused | full | set(limited))
            if wanted is None:
                return None
            return await self.collection.find_one_and_update(
                {**due, **wanted}, update, sort=CLAIM_ORDER,
                return_document=ReturnDocument.AFTER)

        while True:
            capped = sorted(set(limited) - full)
            if not capped:
                return None if open_drained else await plain()
            wanted = ({"job_type": {"$in": capped}} if open_drained
                      else type_condition(job_types, paused | full))
            if wanted is None:
                return None
            best = await self.collection.find_one({**due, **wanted}, projection={"job_type": 1},
                                                  sort=CLAIM_ORDER)
            if best is None:
                return None
            if best["job_type"] in limited:
                doc = await self.queues.claim_within_limit(best["job_type"], due, update,
                                                           CLAIM_ORDER)
                if doc is not None:
                    return doc
                full.add(best["job_type"])  # at its limit (or emptied meanwhile)
            else:
                doc = await plain()
                if doc is not None:
                    return doc
                open_drained = True

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
        job = await self._transition(principal, job_id, "progress", {
            "$set": {"progress": progress_document(progress), "updated_at": now,
                     **self._lease_extension(now)},
        })
        await self.workers.seen(principal, holding=job)
        return job

    async def heartbeat(self, principal: Principal, job_id: str) -> SecretaryJob:
        now = utcnow()
        job = await self._transition(principal, job_id, "heartbeat", {
            "$set": {"updated_at": now, **self._lease_extension(now)},
        })
        await self.workers.seen(principal, holding=job)
        return job

    async def append_logs(
        self, principal: Principal, job_id: str, entries: builtins.list[tuple[str, str]]
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
                job = job_from_document(doc)
                await self.workers.seen(principal, holding=job)
                return job
            # another append got there first, or the job changed: read again and decide
        raise ConflictError("the log is changing too fast to append to; try again")

    async def complete(
        self, principal: Principal, job_id: str, results: dict[str, Any] | None = None
    ) -> SecretaryJob:
        """Refused with CANCEL_REQUESTED once the job was asked to cancel."""
        check_document("results", results, max_bytes=self.limits.max_payload_bytes)
        now = utcnow()
        return await self._transition(principal, job_id, "complete", {
            "$set": {"status": JobStatus.COMPLETED.value, "results": results, "updated_at": now,
                     "completed_at": now, "lease_expires_at": None, "timeout_at": None},
        }, extra={"cancel_requested": None})

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
        """End the job as FAILED, with three exceptions for a PROCESSING job:

        - asked to cancel: FAILED with CANCELLED whatever the error (kept in its details
          as ``workerError``), never retried automatically;
        - failed ``retryable`` by the worker holding it, with attempts left: back to
          PENDING, due after its retry policy's delay, the error in ``previous_errors``;
        - otherwise (not retryable, no attempts left, or failed by a writer that does not
          hold it): FAILED.

        The decision needs the job's attempts and policy, so this reads the job and then
        updates it on condition that what decided is unchanged (its status, claim and
        cancel request), reading again when another write got there first.
        """
        error = self.error_document(code, message, details)
        allowed = [status.value for status in JOB_TRANSITIONS["fail"]]
        for _ in range(50):
            now = utcnow()
            current = await read_to_write(self.collection, principal, job_id, action="fail",
                                          allowed_statuses=allowed, now=now,
                                          projection=FAIL_FIELDS)
            update = self._failure(principal, current, error, retryable, now)
            doc = await self.collection.find_one_and_update(
                {"_id": job_id, "status": current["status"],
                 "claim_token": current.get("claim_token"),
                 "attempts": current.get("attempts"),
                 "cancel_requested": current.get("cancel_requested"),
                 **lease_write_filter(principal, now)},
                bump_version(stamped(update, principal, "fail")),
                return_document=ReturnDocument.AFTER)
            if doc is not None:
                return job_from_document(doc)
        raise ConflictError(f"job {job_id!r} is changing too fast to fail; try again")

    def _failure(self, principal: Principal, current: dict[str, Any], error: dict[str, Any],
                 retryable: bool, now: datetime) -> dict[str, Any]:
        final = {"status": JobStatus.FAILED.value, "error": error, "updated_at": now,
                 "completed_at": now, "lease_expires_at": None, "retryable": retryable,
                 "timeout_at": None}
        if current["status"] != JobStatus.PROCESSING.value:
            return {"$set": final}
        holder = current.get("claimed_by") == principal.user_id and (
            principal.is_worker or principal.is_admin)
        end = end_claim(current, error, now, self.limits, retry=retryable and holder,
                        cause={"workerError": error})
        if end.ending is Ending.FAILED:
            return {"$set": final}
        return end.update({"lease_expires_at": None})

    def error_document(
        self, code: str, message: str, details: dict[str, Any] | None
    ) -> dict[str, Any]:
        check_text("error.code", code, max_length=100)
        check_text("error.message", message, max_length=self.limits.max_log_message_length)
        check_document("error.details", details, max_bytes=self.limits.max_payload_bytes)
        return {"code": code, "message": message, "details": details}

    async def retry(self, principal: Principal, job_id: str,
                    run_at: datetime | None = None) -> SecretaryJob:
        """FAILED back to PENDING; the error moves to ``previous_errors``, nothing is lost.
        Due at ``run_at`` (None: at once); a cancelled job's cancel request is cleared.

        A job a worker failed as not retryable stays FAILED. Retrying is the job's
        writers' decision: a worker's claim gives no right to it (else a worker whose
        last lease lapsed could put the job back and claim it past ``max_attempts``).
        The worker that held it is remembered, so a late write from it is a CONFLICT.
        """
        now = utcnow()
        run_at = check_run_at("runAt", run_at, now)
        return await self._transition(principal, job_id, "retry", retry_pipeline(now, run_at),
                                      extra={"retryable": {"$ne": False}})

    async def cancel(self, principal: Principal, job_id: str,
                     reason: str | None = None) -> SecretaryJob:
        """Cancel a job (its writers): a PENDING one is FAILED with CANCELLED at once; a
        PROCESSING one is asked to stop (``cancel_requested``, which its worker reads in
        the answer of every write), and ends FAILED with CANCELLED when the worker fails
        it or its claim ends. Asking again changes nothing. See ``repository.cancellation``.
        """
        check_text("reason", reason, max_length=MAX_REASON_LENGTH, required=False)
        request = CancelRequest(by=principal.user_id or "", at=utcnow(), reason=reason)
        allowed = [status.value for status in JOB_TRANSITIONS["cancel"]]
        doc = await self.collection.find_one_and_update(
            {"_id": job_id, "status": {"$in": allowed}, "cancel_requested": None,
             **write_filter(principal)},
            stamped(cancel_update(request, self.limits.lease_seconds), principal, "cancel"),
            return_document=ReturnDocument.AFTER)
        if doc is None:
            doc = await self.collection.find_one(
                {"_id": job_id, "status": JobStatus.PROCESSING.value,
                 "cancel_requested": {"$ne": None}, **write_filter(principal)})
            if doc is None:  # not asked before: say why (writers only, as for a retry)
                current = await self.collection.find_one(
                    {"_id": job_id, **refusal_filter(principal, "cancel")},
                    projection=DRIVE_FIELDS)
                refuse_job_write(principal, current, job_id, action="cancel",
                                 allowed_statuses=allowed, now=utcnow())
        return job_from_document(doc)

    async def set_priority(self, principal: Principal, job_id: str,
                           priority: int) -> SecretaryJob:
        """Change a PENDING job's priority (its writers)."""
        check_priority(priority)
        return await self._transition(principal, job_id, "reprioritize", {
            "$set": {"priority": priority, "updated_at": utcnow()}})

    async def delete(self, principal: Principal, job_id: str) -> SecretaryJob:
        # stamped first, so the history knows who deleted it (repository.job_history)
        doc = await self.collection.find_one_and_update(
            {"_id": job_id, **admin_filter(principal)}, delete_stamp(principal))
        if doc is not None:
            doc = await self.collection.find_one_and_delete({"_id": job_id}) or doc
        if doc is None:
            await refuse(self.collection, principal, job_id, kind="job", action="delete",
                         need="admin", claimable=True)
        return job_from_document(doc)

    async def set_access(
        self, principal: Principal, job_id: str, access: AccessControl
    ) -> SecretaryJob:
        doc = await self.collection.find_one_and_update(
            {"_id": job_id, **admin_filter(principal)},
            bump_version({"$set": {**access_update(access), "updated_at": utcnow(),
                                   **actor_stamp(principal, "access")}}),
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

    async def log_window(self, job: SecretaryJob,
                         last: int | None = None) -> builtins.list[LogEntry]:
        """The newest ``last`` entries (all, when None) of ``job``'s log as of its state."""
        if last is not None and last < 0:
            raise ValidationError("last", f"must not be negative, got {last}")
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

    async def reap_expired_leases(self, *, limit: int = 100) -> builtins.list[SecretaryJob]:
        """See ``repository.leases``: lapsed leases and passed deadlines back to PENDING
        after the retry delay, or FAILED at the end (CANCELLED when asked to cancel).
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
        update: dict[str, Any] | builtins.list[dict[str, Any]],
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
            query, bump_version(stamped(update, principal, action)),
            return_document=ReturnDocument.AFTER)
        if doc is None:
            current = await self.collection.find_one(
                {"_id": job_id, **refusal_filter(principal, action)},
                projection={**DRIVE_FIELDS, "cancel_requested": 1})
            if (current is not None and current.get("cancel_requested") is not None
                    and may_write_job(principal, current, action=action,
                                      allowed_statuses=allowed, now=now)):
                raise CancelRequestedError(
                    f"job {job_id!r} was asked to cancel, so it cannot {action}; stop "
                    "working on it and acknowledge with failJob")
            refuse_job_write(principal, current, job_id, action=action,
                             allowed_statuses=allowed, now=now)
        return job_from_document(doc)


def readable_jobs_query(principal: Principal, job_filter: JobFilter) -> dict[str, Any]:
    """The jobs matching ``job_filter`` that ``principal`` may read, as a MongoDB filter."""
    return {**job_filter.query(), **read_filter(principal, claimable=True)}


def require_user(principal: Principal) -> None:
    if principal.is_anonymous:
        raise ForbiddenError("sign in to create objects")


def retry_pipeline(now: datetime, run_at: datetime | None) -> list[dict[str, Any]]:
    """FAILED back to PENDING, due at ``run_at``; the error joins ``previous_errors`` and
    the last worker ``former_workers``."""
    return [
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
            "retryable": True, "run_at": run_at, "timeout_at": None, "cancel_requested": None,
        }},
    ]


def claim_update(worker: str | None, token: str, now: datetime, lease_seconds: float
                 ) -> list[dict[str, Any]]:
    """A claim, as a pipeline: the deadline is computed from the job's own timeout."""
    return [{"$set": {
        "status": JobStatus.PROCESSING.value,
        "claimed_by": {"$literal": worker},
        "claim_token": token,
        "processing_started_at": now,
        "lease_expires_at": now + timedelta(seconds=lease_seconds),
        "updated_at": now,
        "attempts": {"$add": [{"$ifNull": ["$attempts", 0]}, 1]},
        "version": {"$add": [{"$ifNull": ["$version", 0]}, 1]},
        "timeout_at": {"$cond": [{"$gt": [{"$ifNull": ["$timeout_seconds", 0]}, 0]},
                                 {"$add": [now, {"$multiply": ["$timeout_seconds", 1000]}]},
                                 None]},
    }}]


def type_condition(job_types: list[str] | None, excluded: set[str]
                   ) -> dict[str, Any] | None:
    """The job types a claim may take: ``job_types`` (None: any) but ``excluded``; None
    when that leaves none."""
    if job_types is not None:
        left = [job_type for job_type in job_types if job_type not in excluded]
        return {"job_type": {"$in": left}} if left else None
    return {"job_type": {"$nin": sorted(excluded)}} if excluded else {}


def check_priority(priority: int) -> int:
    if isinstance(priority, bool) or not isinstance(priority, int) or not (
            MIN_PRIORITY <= priority <= MAX_PRIORITY):
        raise ValidationError("priority", f"must be an integer between {MIN_PRIORITY} and "
                              f"{MAX_PRIORITY}")
    return priority


def check_run_at(field: str, run_at: datetime | None, now: datetime) -> datetime | None:
    """A due time in UTC milliseconds (naive means UTC), at most a year ahead."""
    if run_at is None:
        return None
    if run_at.tzinfo is None:
        run_at = run_at.replace(tzinfo=UTC)
    run_at = run_at.astimezone(UTC)
    run_at = run_at.replace(microsecond=run_at.microsecond // 1000 * 1000)
    if run_at - now > MAX_DELAY:
        raise ValidationError(field, f"must be at most {MAX_DELAY.days} days ahead")
    return run_at


def check_timeout(seconds: float | None) -> float | None:
    if seconds is None:
        return None
    if not 0 < seconds <= MAX_TIMEOUT_SECONDS:
        raise ValidationError("timeoutSeconds", f"must be above 0 and at most "
                              f"{MAX_TIMEOUT_SECONDS:.0f}")
    return float(seconds)
