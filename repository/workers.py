"""The workers seen lately: who claimed or drove jobs, of which types, and when.

A worker is known by its user id (the token's ``sub``). Each claim records the job types
it asked for, and each lease renewal that it is still there; to keep those writes off the
hot path, one process writes a worker's sighting at most once per ``SEEN_RESOLUTION``
seconds (unless the types it asks for change), so ``lastSeen`` is that coarse. Sightings
older than a week are deleted by a TTL index.
"""

from __future__ import annotations

import builtins
import time
from collections import OrderedDict
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from pymongo import DESCENDING, IndexModel

from .access import Principal, readable_document
from .errors import ForbiddenError, ValidationError
from .job_documents import job_from_document
from .limits import Limits
from .models import JobStatus, SecretaryJob, utcnow
from .mongo_types import Collection

SEEN_RESOLUTION = 5.0
KEPT_SECONDS = 7 * 24 * 3600
MAX_REMEMBERED = 10_000
MAX_SEEN_WITHIN = KEPT_SECONDS

INDEXES = [IndexModel([("last_seen", DESCENDING)], name="seen",
                      expireAfterSeconds=KEPT_SECONDS)]

ANY = object()
"""``seen`` without job types: a lease renewal, which leaves the types recorded alone."""


@dataclass
class Worker:
    worker_id: str
    job_types: list[str] | None
    """The job types of its last claim; None: it asked for any type."""
    last_seen: datetime
    jobs: list[SecretaryJob] = field(default_factory=list)
    """The jobs it holds (PROCESSING) that the caller may read."""
    job_count: int = 0
    """All the jobs it holds, readable or not."""

    def takes(self, job_type: str) -> bool:
        return self.job_types is None or job_type in self.job_types


def require_operator(principal: Principal) -> None:
    """Queues and workers are the operators' view: the worker and admin roles."""
    if not (principal.is_worker or principal.is_admin):
        raise ForbiddenError("queues and workers are visible to the worker and admin roles")


class WorkerRepository:
    def __init__(self, collection: Collection, jobs: Collection,
                 limits: Limits) -> None:
        self.collection = collection
        self.jobs = jobs
        self.limits = limits
        self._written: OrderedDict[str, tuple[Any, float]] = OrderedDict()

    async def ensure_indexes(self) -> None:
        await self.collection.create_indexes(INDEXES)

    async def seen(self, principal: Principal, job_types: Any = ANY, *,
                   holding: SecretaryJob | None = None) -> None:
        """Record that this worker is active: it claimed a job (asking for ``job_types``, a
        list, or None for any type), or renewed the lease of the job it is ``holding``.
        Only after the write succeeded: a refused or empty request changes nothing."""
        uid = principal.user_id
        if uid is None or (holding is not None and holding.claimed_by != uid):
            return
        types = ANY if job_types is ANY else (None if not job_types else sorted(job_types))
        last = self._written.get(uid)
        moment = time.monotonic()
        if last is not None and moment - last[1] < SEEN_RESOLUTION and (
                types is ANY or types == last[0]):
            return
        update: dict[str, Any] = {"$set": {"last_seen": utcnow()}}
        if types is ANY:
            update["$setOnInsert"] = {"job_types": None}
        else:
            update["$set"]["job_types"] = types
        await self.collection.update_one({"_id": uid}, update, upsert=True)
        self._written[uid] = (types if types is not ANY else (last or (None,))[0], moment)
        self._written.move_to_end(uid)
        while len(self._written) > MAX_REMEMBERED:
            self._written.popitem(last=False)

    async def list(self, principal: Principal, *, seen_within: float,
                   job_type: str | None = None, limit: int | None = None) -> list[Worker]:
        """Workers seen in the last ``seen_within`` seconds, most recent first, with the
        jobs they hold."""
        require_operator(principal)
        if not 0 < seen_within <= MAX_SEEN_WITHIN:
            raise ValidationError("seenWithinSeconds", f"must be between 1 and {MAX_SEEN_WITHIN}")
        since = utcnow() - timedelta(seconds=seen_within)
        docs = await self.collection.find(
            {"last_seen": {"$gte": since}}, sort=[("last_seen", DESCENDING)],
            limit=limit or self.limits.max_page_size).to_list()
        workers = [Worker(doc["_id"], doc.get("job_types"), doc["last_seen"]) for doc in docs]
        if job_type is not None:
            workers = [worker for worker in workers if worker.takes(job_type)]
        if workers:
            await self._attach_jobs(principal, workers)
        return workers

    async def get_many(self, principal: Principal,
                       worker_ids: builtins.list[str]) -> dict[str, Worker]:
        """Workers by id, however long ago they were seen; none for a caller without the
        worker or admin role (to whom workers do not exist)."""
        if not (principal.is_worker or principal.is_admin):
            return {}
        docs = await self.collection.find({"_id": {"$in": list(worker_ids)}}).to_list()
        workers = [Worker(doc["_id"], doc.get("job_types"), doc["last_seen"]) for doc in docs]
        if workers:
            await self._attach_jobs(principal, workers)
        return {worker.worker_id: worker for worker in workers}

    async def _attach_jobs(self, principal: Principal, workers: builtins.list[Worker]) -> None:
        by_id = {worker.worker_id: worker for worker in workers}
        async for doc in self.jobs.find({"claimed_by": {"$in": list(by_id)},
                                         "status": JobStatus.PROCESSING.value}):
            worker = by_id[doc["claimed_by"]]
            worker.job_count += 1
            if readable_document(principal, doc, claimable=True):
                worker.jobs.append(job_from_document(doc))
