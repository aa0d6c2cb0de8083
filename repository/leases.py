"""Lease expiry: jobs whose worker went silent return to the queue, or fail.
(``reap_lapsed`` serves documentation jobs too.)

Each job is taken by a compare-and-set on its lease, holder and log counter, so
several processes reaping at once never handle a job twice, and a lease renewed
meanwhile is left alone.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any

from pymongo import ReturnDocument
from pymongo.asynchronous.collection import AsyncCollection

from .job_documents import job_from_document, log_document
from .limits import Limits
from .models import JobStatus, LogEntry, SecretaryJob, utcnow


async def reap_expired_leases(collection: AsyncCollection, limits: Limits, *,
                              limit: int = 100) -> list[SecretaryJob]:
    """Jobs whose worker's lease lapsed go back to PENDING, or FAIL with
    LEASE_EXPIRED once they used ``max_attempts`` claims."""
    now = utcnow()
    reaped = await reap_lapsed(
        collection, {"status": JobStatus.PROCESSING.value, "lease_expires_at": {"$lt": now}},
        projection={"claimed_by": 1, "lease_expires_at": 1, "attempts": 1,
                    "max_attempts": 1, "log_seq": 1},
        guard=("status", "lease_expires_at", "claimed_by", "log_seq"),
        update=lambda doc: expiry_update(doc, now, limits), limit=limit)
    return [job_from_document(doc) for doc in reaped]


async def reap_lapsed(collection: AsyncCollection, query: dict[str, Any], *,
                      projection: dict[str, Any], guard: tuple[str, ...],
                      update: Callable[[dict[str, Any]], dict[str, Any]],
                      limit: int) -> list[dict[str, Any]]:
    """Up to ``limit`` documents matching ``query``, each changed by ``update(doc)`` on
    condition that its ``guard`` fields still hold what was read; those changed, after."""
    candidates = await collection.find(
        query, projection={**projection, **dict.fromkeys(guard, 1)}, limit=limit).to_list()
    reaped = []
    for doc in candidates:
        changed = await collection.find_one_and_update(
            {"_id": doc["_id"], **{name: doc.get(name) for name in guard}}, update(doc),
            return_document=ReturnDocument.AFTER)
        if changed is not None:
            reaped.append(changed)
    return reaped


def expiry_update(doc: dict[str, Any], now: datetime, limits: Limits) -> dict[str, Any]:
    """The update for one lapsed lease: requeue with the lapse kept as an error, or fail."""
    worker, attempt = doc.get("claimed_by"), max(doc.get("attempts", 0), 1)
    final = attempt >= doc.get("max_attempts", limits.default_max_attempts)
    message = (f"the lease of worker {worker!r} expired during attempt {attempt}; "
               + ("no attempts are left" if final else "the job is back in the queue"))
    error = {"code": "LEASE_EXPIRED", "message": message,
             "details": {"worker": worker, "attempt": attempt,
                         "leaseExpiredAt": doc["lease_expires_at"].isoformat()}}
    seq = doc.get("log_seq", 0) + 1
    entry = log_document(LogEntry(now, "error" if final else "warning", message, seq,
                                   attempt))
    changes: dict[str, Any] = {"updated_at": now, "log_seq": seq}
    push: dict[str, Any] = {"logs": {"$each": [entry],
                                     "$slice": -limits.max_logs_per_job}}
    if final:
        # claimed_by and the lapsed lease stay: a late write from that worker is told its
        # lease expired (CONFLICT), not that the job is FAILED
        changes.update(status=JobStatus.FAILED.value, error=error, completed_at=now)
    else:
        changes.update(status=JobStatus.PENDING.value, claimed_by=None, progress=None,
                       processing_started_at=None, lease_expires_at=None, claim_token=None)
        push["previous_errors"] = error
    update: dict[str, Any] = {"$set": changes, "$push": push, "$inc": {"version": 1}}
    if worker is not None and not final:
        update["$addToSet"] = {"former_workers": worker}
    return update
