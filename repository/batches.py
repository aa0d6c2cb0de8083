"""The ``batches`` collection.

A batch's status and per-status counts are DERIVED from its jobs (one ``$group``
over the ``batch_status`` index of ``jobs``) rather than stored. Stored counters
would have to change in the same atomic step as every job transition, which
needs a multi-document transaction per transition; a derived value cannot drift
by construction, and the aggregation is batched per request by the API's loaders.

What a batch does to its jobs moves them together: deactivating it marks its jobs
(``batch_active``: False, which claims skip) in the same transaction as the batch, and
adding jobs reads whether it is active in the transaction that inserts them; deleting
it removes it and its jobs in one transaction that first checks none of them runs.
Cancelling and retrying its jobs are one conditional update per job (``update_many``),
each as safe against a racing claim or completion as ``cancelJob`` and ``retryJob``.
Batch-wide operations act on every job of the batch, with the rights the caller has on
the batch.
"""

from __future__ import annotations

import builtins
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal

from pymongo import ASCENDING, DESCENDING, IndexModel, ReturnDocument

from .access import Principal, admin_filter, read_filter, write_filter
from .cancellation import MAX_REASON_LENGTH, cancel_update
from .documents import access_update, bump_version, rename_id, with_access
from .errors import InvalidTransitionError, JobErrorCode, NotFoundError, ValidationError
from .idempotency import INDEX as IDEMPOTENCY_INDEX
from .idempotency import find_existing, insert_once, stamp
from .job_documents import job_to_document
from .jobs import JobRepository, require_user, retry_pipeline
from .limits import Limits
from .models import (
    AccessControl,
    BatchCounts,
    BatchJob,
    CancelRequest,
    JobStatus,
    SecretaryJob,
    new_id,
    utcnow,
)
from .mongo_types import Collection
from .pagination import Page, PageRequest, fetch_page, filter_query, keyset_indexes
from .refusals import refuse
from .transactions import Abort, in_transaction
from .validation import check_text

INDEXES = [
    IDEMPOTENCY_INDEX,
    IndexModel([("readers", ASCENDING), ("created_at", DESCENDING), ("_id", DESCENDING)],
               name="readers_created"),
    IndexModel([("created_at", DESCENDING), ("_id", DESCENDING)], name="created"),
    IndexModel([("active", ASCENDING), ("created_at", DESCENDING), ("_id", DESCENDING)],
               name="active_created"),
]
INDEXES += keyset_indexes({"active": "active"}, {"": "", "readers": "readers"}, INDEXES)


@dataclass(frozen=True)
class BatchFilter:
    active: bool | None = None
    created_after: datetime | None = None
    created_before: datetime | None = None

    def query(self) -> dict[str, Any]:
        return filter_query({"active": self.active}, self.created_after, self.created_before)


@dataclass(frozen=True)
class JobSpec:
    """One job to create inside a batch; ``access_control`` None takes the batch's."""

    job_type: str
    parameters: dict[str, Any] | None = None
    access_control: AccessControl | None = None
    max_attempts: int | None = None
    priority: int | None = None
    run_at: datetime | None = None
    timeout_seconds: float | None = None
    retry_policy: dict[str, Any] | None = None


def batch_to_document(batch: BatchJob) -> dict[str, Any]:
    doc = {
        "_id": batch.batch_id,
        "batch_name": batch.batch_name,
        "created_at": batch.created_at,
        "updated_at": batch.updated_at,
        "active": batch.active,
        "owner": batch.owner,
        "version": batch.version,
    }
    return with_access(doc, batch.access_control)


def batch_from_document(doc: dict[str, Any], counts: BatchCounts | None = None) -> BatchJob:
    data = rename_id(doc, "batch_id")
    data["access_control"] = AccessControl(**data["access_control"])
    if counts is None:
        return BatchJob(**data, counts=None)
    return BatchJob(**data, counts=counts, status=counts.status())


class BatchRepository:
    def __init__(self, collection: Collection, jobs: JobRepository,
                 limits: Limits | None = None) -> None:
        self.collection = collection
        self.jobs = jobs
        self.limits = limits or jobs.limits

    async def ensure_indexes(self) -> None:
        await self.collection.create_indexes(INDEXES)

    async def create(
        self,
        principal: Principal,
        *,
        batch_name: str,
        jobs: list[JobSpec],
        access_control: AccessControl | None = None,
        idempotency_key: str | None = None,
    ) -> BatchJob:
        """The batch and all its jobs, validated in full before anything is written.

        Jobs go in first and the batch last, so a reader never sees a batch
        without its jobs; if inserting fails part way, or an identical request with
        the same idempotency key won the race, the jobs are removed again.
        """
        require_user(principal)
        check_text("batchName", batch_name, max_length=self.limits.max_text_length)
        if not jobs:
            raise ValidationError("jobs", "a batch needs at least one job")
        if len(jobs) > self.limits.max_jobs_per_batch:
            raise ValidationError("jobs", f"a batch holds at most {self.limits.max_jobs_per_batch}"
                                  f" jobs, got {len(jobs)}")
        access = (access_control or AccessControl()).with_admin(principal.user_id)
        now = utcnow()
        batch = BatchJob(batch_id=new_id(), batch_name=batch_name, created_at=now,
                         updated_at=now, access_control=access, owner=principal.user_id)
        members = self._members(principal, batch.batch_id, access, jobs)
        request = {"kind": "batch", "batch_name": batch_name, "jobs": jobs,
                   "access_control": access_control}
        existing = await find_existing(self.collection, principal, idempotency_key, request,
                                       kind="batch")
        if existing is not None:
            return await self.get(principal, existing["_id"])
        doc = batch_to_document(batch)
        stamp(doc, idempotency_key, request)
        try:
            await self.jobs.collection.insert_many([job_to_document(job) for job in members])
            stored = await insert_once(self.collection, doc, principal, kind="batch")
        except BaseException:
            await self.jobs.collection.delete_many({"batch_id": batch.batch_id})
            raise
        if stored is not doc:
            await self.jobs.collection.delete_many({"batch_id": batch.batch_id})
            return await self.get(principal, stored["_id"])
        batch.jobs = members
        batch.counts = BatchCounts(pending=len(members))
        return batch

    def _members(self, principal: Principal, batch_id: str, access: AccessControl,
                 specs: list[JobSpec]) -> list[SecretaryJob]:
        return [
            self.jobs.new_job(principal, job_type=spec.job_type, parameters=spec.parameters,
                              access_control=spec.access_control or access,
                              batch_id=batch_id, max_attempts=spec.max_attempts,
                              priority=spec.priority, run_at=spec.run_at,
                              timeout_seconds=spec.timeout_seconds,
                              retry_policy=spec.retry_policy)
            for spec in specs
        ]

    async def get(self, principal: Principal, batch_id: str) -> BatchJob:
        doc = await self.collection.find_one({"_id": batch_id, **read_filter(principal)})
        if doc is None:
            raise NotFoundError(f"batch {batch_id!r} not found")
        counts = await self.counts([batch_id])
        return batch_from_document(doc, counts[batch_id])

    async def get_many(
        self, principal: Principal, batch_ids: list[str], *, with_counts: bool = True
    ) -> dict[str, BatchJob]:
        """Readable batches among ``batch_ids``: one round trip, two with their counts.

        Without counts, ``counts`` is None and ``status`` is not derived yet.
        """
        query = {"_id": {"$in": list(batch_ids)}, **read_filter(principal)}
        docs = await self.collection.find(query).to_list()
        if not with_counts:
            return {doc["_id"]: batch_from_document(doc) for doc in docs}
        counts = await self.counts([doc["_id"] for doc in docs]) if docs else {}
        return {doc["_id"]: batch_from_document(doc, counts[doc["_id"]]) for doc in docs}

    async def counts(self, batch_ids: list[str], *, session: Any = None
                     ) -> dict[str, BatchCounts]:
        """Per-status job counts of each batch, derived from the jobs in one aggregation."""
        result = {batch_id: BatchCounts() for batch_id in batch_ids}
        pipeline: list[dict[str, Any]] = [
            {"$match": {"batch_id": {"$in": list(batch_ids)}}},
            {"$group": {"_id": {"batch": "$batch_id", "status": "$status",
                                "cancelled": {"$eq": ["$error.code",
                                                      JobErrorCode.CANCELLED.value]}},
                        "n": {"$sum": 1}}},
        ]
        async for row in await self.jobs.collection.aggregate(pipeline, session=session):
            key = row["_id"]
            result[key["batch"]].add(JobStatus(key["status"]), row["n"],
                                     cancelled=bool(key.get("cancelled")))
        return result

    def _list_query(self, principal: Principal, batch_filter: BatchFilter) -> dict[str, Any]:
        return {**batch_filter.query(), **read_filter(principal)}

    async def list(
        self, principal: Principal, batch_filter: BatchFilter, page: PageRequest
    ) -> Page[BatchJob]:
        """A page of batches; their counts are loaded in one more round trip."""
        page = page.validated(self.limits.max_page_size)
        result = await fetch_page(self.collection, self._list_query(principal, batch_filter),
                                  page, batch_from_document)
        if result.items:
            counts = await self.counts([batch.batch_id for batch in result.items])
            for batch in result.items:
                batch.counts = counts[batch.batch_id]
                batch.status = batch.counts.status()
        return result

    async def count(self, principal: Principal, batch_filter: BatchFilter) -> int:
        return await self.collection.count_documents(self._list_query(principal, batch_filter))

    async def set_active(self, principal: Principal, batch_id: str, active: bool) -> BatchJob:
        """Switch a batch (its writers): an inactive batch's PENDING jobs are not claimed
        until it is active again. The batch and its jobs change in one transaction."""
        now = utcnow()

        async def body(session: Any) -> dict[str, Any] | None:
            doc = await self.collection.find_one_and_update(
                {"_id": batch_id, **write_filter(principal)},
                bump_version({"$set": {"active": active, "updated_at": now}}),
                return_document=ReturnDocument.AFTER, session=session)
            if doc is None:
                raise Abort(None)
            await self.jobs.collection.update_many(
                {"batch_id": batch_id}, {"$set": {"batch_active": active}}, session=session)
            return doc

        doc = await in_transaction(self.collection, body)
        if doc is None:
            await refuse(self.collection, principal, batch_id, kind="batch", action="change",
                         need="write")
        counts = await self.counts([batch_id])
        return batch_from_document(doc, counts[batch_id])

    async def cancel(self, principal: Principal, batch_id: str,
                     reason: str | None = None) -> BatchJob:
        """Cancel every unfinished job of the batch (its writers), as ``cancelJob`` does."""
        check_text("reason", reason, max_length=MAX_REASON_LENGTH, required=False)
        await self._writable(principal, batch_id, "cancel")
        request = CancelRequest(by=principal.user_id or "", at=utcnow(), reason=reason)
        await self.jobs.collection.update_many(
            {"batch_id": batch_id, "status": {"$in": [JobStatus.PENDING.value,
                                                      JobStatus.PROCESSING.value]},
             "cancel_requested": None},
            cancel_update(request, self.limits.lease_seconds))
        return await self.get(principal, batch_id)

    async def retry_failed(self, principal: Principal, batch_id: str) -> BatchJob:
        """Put the batch's FAILED jobs back to PENDING (its writers), as ``retryJob`` does;
        not those failed as not retryable, nor the cancelled ones."""
        await self._writable(principal, batch_id, "retry the jobs of")
        await self.jobs.collection.update_many(
            {"batch_id": batch_id, "status": JobStatus.FAILED.value,
             "retryable": {"$ne": False},
             "error.code": {"$ne": JobErrorCode.CANCELLED.value}},
            bump_version(retry_pipeline(utcnow(), None)))
        return await self.get(principal, batch_id)

    async def add_jobs(self, principal: Principal, batch_id: str,
                       jobs: builtins.list[JobSpec]) -> BatchJob:
        """More jobs in an existing batch (its writers), within the batch size limit; they
        take the batch's access control unless given their own, and are held like the
        others while the batch is inactive."""
        if not jobs:
            raise ValidationError("jobs", "give at least one job")
        maximum = self.limits.max_jobs_per_batch
        if len(jobs) > maximum:
            raise ValidationError("jobs", f"a batch holds at most {maximum} jobs, got "
                                  f"{len(jobs)}")
        now = utcnow()

        async def body(session: Any) -> dict[str, Any] | None:
            doc = await self.collection.find_one_and_update(
                {"_id": batch_id, **write_filter(principal)},
                bump_version({"$set": {"updated_at": now}}),
                return_document=ReturnDocument.AFTER, session=session)
            if doc is None:
                raise Abort(None)
            held = await self.jobs.collection.count_documents({"batch_id": batch_id},
                                                              session=session)
            if held + len(jobs) > maximum:
                raise ValidationError("jobs", f"a batch holds at most {maximum} jobs; this one "
                                      f"has {held}, so {maximum - held} more fit")
            access = AccessControl(**doc["access_control"])
            members = [job_to_document(job) for job in self._members(
                principal, batch_id, access, jobs)]
            if not doc.get("active", True):
                for member in members:
                    member["batch_active"] = False
            await self.jobs.collection.insert_many(members, session=session)
            return doc

        doc = await in_transaction(self.collection, body)
        if doc is None:
            await refuse(self.collection, principal, batch_id, kind="batch",
                         action="add jobs to", need="write")
        return await self.get(principal, batch_id)

    async def delete(self, principal: Principal, batch_id: str) -> BatchJob:
        """Delete the batch and all its jobs (its admins), refused while any job is
        PROCESSING (cancel the batch first, and let its workers stop). Returns the batch
        as it was, with the counts of the jobs deleted."""

        async def body(session: Any) -> tuple[dict[str, Any], BatchCounts] | None:
            doc = await self.collection.find_one_and_delete(
                {"_id": batch_id, **admin_filter(principal)}, session=session)
            if doc is None:
                raise Abort(None)
            counts = await self.counts([batch_id], session=session)
            if counts[batch_id].processing:
                raise Abort(counts[batch_id].processing)
            await self.jobs.collection.delete_many({"batch_id": batch_id}, session=session)
            return doc, counts[batch_id]

        outcome = await in_transaction(self.collection, body)
        if outcome is None:
            await refuse(self.collection, principal, batch_id, kind="batch", action="delete",
                         need="admin")
        if isinstance(outcome, int):
            raise InvalidTransitionError(
                f"cannot delete batch {batch_id!r}: {outcome} of its jobs are PROCESSING; "
                "cancel the batch and wait for its workers to stop")
        doc, counts = outcome
        return batch_from_document(doc, counts)

    async def _writable(self, principal: Principal, batch_id: str, action: str) -> None:
        if await self.collection.find_one({"_id": batch_id, **write_filter(principal)},
                                          projection={"_id": 1}) is None:
            await refuse(self.collection, principal, batch_id, kind="batch", action=action,
                         need="write")

    async def set_access(
        self, principal: Principal, batch_id: str, access: AccessControl
    ) -> BatchJob:
        return await self._update(principal, batch_id, access_update(access), "admin",
                                  "change the access control of")

    async def _update(self, principal: Principal, batch_id: str, changes: dict[str, Any],
                      need: Literal["write", "admin"], action: str) -> BatchJob:
        permission = admin_filter(principal) if need == "admin" else write_filter(principal)
        doc = await self.collection.find_one_and_update(
            {"_id": batch_id, **permission},
            bump_version({"$set": {**changes, "updated_at": utcnow()}}),
            return_document=ReturnDocument.AFTER,
        )
        if doc is None:
            await refuse(self.collection, principal, batch_id, kind="batch", action=action,
                         need=need)
        counts = await self.counts([batch_id])
        return batch_from_document(doc, counts[batch_id])
