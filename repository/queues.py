"""Queues: the jobs of one job type, which an admin may pause or limit.

One document per job type that was ever paused or limited (``_id`` is the job type):
``paused``, ``max_concurrency`` (None: no limit), ``restricted`` (either of the two, so
a claim finds every restricted type with one indexed read) and ``claim_serial``, which
every claim of a limited type increments only to conflict with the others (nothing
reads it).

A paused type is skipped by every claim that starts after ``pauseQueue`` answered. A
limit holds across all API processes: a claim of a limited type is one transaction that
first writes the queue's document (so two such claims conflict, and one starts again),
then counts the type's PROCESSING jobs in its snapshot and claims only below the limit.
The count is derived from the jobs themselves, not kept beside them, so no exit from
PROCESSING (complete, fail, cancel, lease expiry, timeout, delete, an undone claim) has
anything to keep in step, and nothing can drift; only a claim enters PROCESSING, and
every claim of a limited type takes this path. Lowering a limit below the jobs already
running stops no job: claims wait until fewer run.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from pymongo import ASCENDING, IndexModel, ReturnDocument

from .access import Principal
from .errors import ForbiddenError, ValidationError
from .limits import Limits
from .models import BatchCounts, JobStatus, utcnow
from .mongo_types import Collection
from .transactions import Abort, in_transaction
from .validation import check_text
from .workers import Worker, WorkerRepository, require_operator

INDEXES = [IndexModel([("restricted", ASCENDING)], name="restricted")]
MAX_CONCURRENCY = 100_000


@dataclass(frozen=True)
class QueueRules:
    """What claims must respect now: the paused types, and the limited ones' limits."""

    paused: frozenset[str] = frozenset()
    limits: dict[str, int] = field(default_factory=dict)


@dataclass
class QueueCounts(BatchCounts):
    """A queue's jobs by state: counted as a batch's are, with the PENDING jobs whose
    ``runAt`` is still ahead apart (``pending`` holds those claimable by time)."""

    delayed: int = 0

    @property
    def total(self) -> int:
        return super().total + self.delayed


@dataclass
class Queue:
    job_type: str
    paused: bool = False
    max_concurrency: int | None = None
    counts: QueueCounts = field(default_factory=QueueCounts)
    oldest_claimable_since: datetime | None = None
    """When the longest-waiting claimable job became claimable (created, or its runAt)."""
    updated_at: datetime | None = None
    updated_by: str | None = None
    workers: list[Worker] = field(default_factory=list)
    """Workers seen lately that take this type."""
    measured_at: datetime = field(default_factory=utcnow)

    @property
    def oldest_claimable_age(self) -> float | None:
        if self.oldest_claimable_since is None:
            return None
        return max((self.measured_at - self.oldest_claimable_since).total_seconds(), 0.0)


def can_configure(principal: Principal) -> bool:
    """Whether the caller may pause, resume and limit queues (the admin role): the rule of
    ``pauseQueue``/``resumeQueue``/``setQueueConcurrency`` and of ``Queue.viewerCanAdmin``."""
    return principal.is_admin


def claimable_query(now: datetime) -> dict[str, Any]:
    """PENDING jobs a claim may take at ``now`` (any type): due, and not held back by a
    deactivated batch."""
    return {"status": JobStatus.PENDING.value, "run_at": {"$not": {"$gt": now}},
            "batch_active": {"$ne": False}}


class QueueRepository:
    def __init__(self, collection: Collection, jobs: Collection,
                 workers: WorkerRepository, limits: Limits) -> None:
        self.collection = collection
        self.jobs = jobs
        self.workers = workers
        self.limits = limits

    async def ensure_indexes(self) -> None:
        await self.collection.create_indexes(INDEXES)

    # -- what claims respect ------------------------------------------------------

    async def rules(self, job_types: list[str] | None) -> QueueRules:
        """The pauses and limits among ``job_types`` (None: all types), in one read."""
        query = ({"_id": {"$in": list(job_types)}} if job_types is not None
                 else {"restricted": True})
        paused, limits = set(), {}
        async for doc in self.collection.find(query, projection={"paused": 1,
                                                                  "max_concurrency": 1}):
            if doc.get("paused"):
                paused.add(doc["_id"])
            elif doc.get("max_concurrency") is not None:
                limits[doc["_id"]] = doc["max_concurrency"]
        return QueueRules(frozenset(paused), limits)

    async def claim_within_limit(self, job_type: str, query: dict[str, Any],
                                 update: Any, sort: list[tuple[str, int]]
                                 ) -> dict[str, Any] | None:
        """Claim the first job of ``job_type`` matching ``query`` if fewer than the queue's
        limit are PROCESSING, in one transaction with the queue's document; None when the
        queue is full or paused, or has no such job. A queue already full or paused by a
        plain read is left at that, without a transaction: most claims of a busy limited
        queue find it full, and each transaction would conflict with the others."""
        settings = await self.collection.find_one({"_id": job_type},
                                                  projection={"paused": 1, "max_concurrency": 1})
        if settings is not None and (settings.get("paused") or (
                settings.get("max_concurrency") is not None
                and await self._running(job_type) >= settings["max_concurrency"])):
            return None

        async def body(session: Any) -> dict[str, Any] | None:
            queue = await self.collection.find_one_and_update(
                {"_id": job_type}, {"$inc": {"claim_serial": 1}}, session=session,
                projection={"paused": 1, "max_concurrency": 1},
                return_document=ReturnDocument.AFTER)
            if queue is not None and queue.get("paused"):
                raise Abort(None)
            limit = None if queue is None else queue.get("max_concurrency")
            if limit is not None and await self._running(job_type, session) >= limit:
                raise Abort(None)
            return await self.jobs.find_one_and_update(
                {**query, "job_type": job_type}, update, sort=sort, session=session,
                return_document=ReturnDocument.AFTER)

        return await in_transaction(self.collection, body)

    async def _running(self, job_type: str, session: Any = None) -> int:
        return await self.jobs.count_documents(
            {"status": JobStatus.PROCESSING.value, "job_type": job_type}, session=session)

    # -- admin ----------------------------------------------------------------------

    async def pause(self, principal: Principal, job_type: str) -> Queue:
        return await self._configure(principal, job_type, {"paused": True}, "pause")

    async def resume(self, principal: Principal, job_type: str) -> Queue:
        return await self._configure(principal, job_type, {"paused": False}, "resume")

    async def set_concurrency(self, principal: Principal, job_type: str,
                              maximum: int | None) -> Queue:
        if maximum is not None and not 1 <= maximum <= MAX_CONCURRENCY:
            raise ValidationError("max", f"must be between 1 and {MAX_CONCURRENCY}, or null "
                                  "for no limit")
        return await self._configure(principal, job_type, {"max_concurrency": maximum},
                                     "limit")

    async def _configure(self, principal: Principal, job_type: str, changes: dict[str, Any],
                         action: str) -> Queue:
        if not can_configure(principal):
            raise ForbiddenError(f"you need the admin role to {action} a queue")
        check_text("jobType", job_type, max_length=self.limits.max_text_length)
        await self.collection.update_one({"_id": job_type}, [
            {"$set": {**{key: {"$literal": value} for key, value in changes.items()},
                      "updated_at": utcnow(), "updated_by": {"$literal": principal.user_id}}},
            {"$set": {"restricted": {"$or": [
                {"$eq": ["$paused", True]},
                {"$ne": [{"$ifNull": ["$max_concurrency", None]}, None]}]}}},
        ], upsert=True)
        return await self.get(principal, job_type)

    # -- reads ----------------------------------------------------------------------

    async def get(self, principal: Principal, job_type: str,
                  seen_within: float = 300.0) -> Queue:
        """One queue, even one with no jobs and no settings (all counts zero)."""
        check_text("jobType", job_type, max_length=self.limits.max_text_length)
        return (await self.list(principal, [job_type], seen_within))[0]

    async def get_many(self, principal: Principal, job_types: list[str]) -> dict[str, Queue]:
        """Queues by job type; none for a caller without the worker or admin role (to whom
        queues do not exist)."""
        if not (principal.is_worker or principal.is_admin):
            return {}
        return {queue.job_type: queue for queue in await self.list(principal, job_types)}

    async def list(self, principal: Principal, job_types: list[str] | None = None,
                   seen_within: float = 300.0) -> list[Queue]:
        """Every job type that has jobs or settings (or each of ``job_types``), by name,
        with its counts, its longest-waiting claimable job and the workers seen taking it
        in the last ``seen_within`` seconds. One aggregation over the jobs (of those types),
        so it costs in proportion to them: an operator's view, not a polling loop's."""
        require_operator(principal)
        if job_types is not None:
            for job_type in job_types:
                check_text("jobTypes", job_type, max_length=self.limits.max_text_length)
        now = utcnow()
        queues: dict[str, Queue] = {}
        settings_query = {} if job_types is None else {"_id": {"$in": list(job_types)}}
        async for doc in self.collection.find(settings_query):
            queues[doc["_id"]] = Queue(doc["_id"], bool(doc.get("paused")),
                                       doc.get("max_concurrency"), updated_at=doc.get(
                                           "updated_at"), updated_by=doc.get("updated_by"),
                                       measured_at=now)
        for job_type in job_types or ():
            queues.setdefault(job_type, Queue(job_type, measured_at=now))
        async for row in await self.jobs.aggregate(_counts_pipeline(job_types, now)):
            key = row["_id"]
            queue = queues.get(key["type"])
            if queue is None:
                queue = queues[key["type"]] = Queue(key["type"], measured_at=now)
            _add(queue, key, row)
        workers = await self.workers.list(principal, seen_within=seen_within, limit=1000)
        for queue in queues.values():
            queue.workers = [worker for worker in workers if worker.takes(queue.job_type)]
        return [queues[name] for name in sorted(queues)]


def _counts_pipeline(job_types: list[str] | None, now: datetime) -> list[dict[str, Any]]:
    claimable = {"$and": [{"$eq": ["$status", JobStatus.PENDING.value]},
                          {"$not": [{"$gt": ["$run_at", now]}]},
                          {"$ne": ["$batch_active", False]}]}
    since = {"$max": ["$created_at", {"$ifNull": ["$run_at", "$created_at"]}]}
    pipeline: list[dict[str, Any]] = []
    if job_types is not None:
        pipeline.append({"$match": {"job_type": {"$in": list(job_types)}}})
    pipeline.append({"$group": {
        "_id": {"type": "$job_type", "status": "$status",
                "delayed": {"$gt": ["$run_at", now]},
                "cancelled": {"$eq": ["$error.code", "CANCELLED"]}},
        "n": {"$sum": 1},
        "oldest": {"$min": {"$cond": [claimable, since, None]}},
    }})
    return pipeline


def _add(queue: Queue, key: dict[str, Any], row: dict[str, Any]) -> None:
    counts, status, n = queue.counts, JobStatus(key["status"]), row["n"]
    if status is JobStatus.PENDING and key.get("delayed"):
        counts.delayed += n
    else:
        counts.add(status, n, cancelled=bool(key.get("cancelled")))
    oldest = row.get("oldest")
    if oldest is not None and (queue.oldest_claimable_since is None
                               or oldest < queue.oldest_claimable_since):
        queue.oldest_claimable_since = oldest
