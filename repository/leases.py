"""Lease expiry: jobs whose worker went silent, or whose deadline passed, return to the
queue, or fail. (``reap_lapsed`` serves documentation jobs too.)

Each job is taken by a compare-and-set on its lease, holder and log counter (a passed
deadline: on the deadline, claim and log counter), so several processes reaping at once
never handle a job twice, and a lease renewed meanwhile is left alone; renewals do not
move a deadline. How the claim ends (requeued after the retry delay, FAILED, or
CANCELLED) is ``repository.requeue``'s.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any

from pymongo import ReturnDocument

from .errors import JobErrorCode
from .job_documents import job_from_document, log_document
from .limits import Limits
from .models import JobStatus, LogEntry, SecretaryJob, utcnow
from .mongo_types import Collection
from .requeue import END_FIELDS, Ending, end_claim


async def reap_expired_leases(collection: Collection, limits: Limits, *,
                              limit: int = 100) -> list[SecretaryJob]:
    """Jobs whose worker's lease lapsed, or whose deadline passed (``timeoutSeconds``
    since the claim, or a cancel's grace), go back to PENDING after their retry delay,
    or FAIL with LEASE_EXPIRED or TIMED_OUT once they used ``max_attempts`` claims, or
    with CANCELLED when they were asked to cancel."""
    now = utcnow()
    projection = {**END_FIELDS, "lease_expires_at": 1, "log_seq": 1, "timeout_at": 1,
                  "timeout_seconds": 1}

    def update(doc: dict[str, Any]) -> dict[str, Any]:
        return expiry_update(doc, now, limits)

    processing = JobStatus.PROCESSING.value
    lapsed = await reap_lapsed(
        collection, {"status": processing, "lease_expires_at": {"$lt": now}},
        projection=projection, guard=("status", "lease_expires_at", "claimed_by", "log_seq"),
        update=update, limit=limit)
    # renewals do not move a deadline, so the guard is the deadline and the claim
    overdue = await reap_lapsed(
        collection, {"status": processing, "timeout_at": {"$lt": now}},
        projection=projection, guard=("status", "timeout_at", "claim_token", "log_seq"),
        update=update, limit=limit)
    return [job_from_document(doc) for doc in lapsed + overdue]


async def reap_lapsed(collection: Collection, query: dict[str, Any], *,
                      projection: dict[str, Any], guard: tuple[str, ...],
                      update: Callable[[dict[str, Any]], dict[str, Any]],
                      limit: int) -> list[dict[str, Any]]:
    """Up to ``limit`` documents matching ``query``, each changed by ``update(doc)`` on
    condition that its ``guard`` fields still hold what was read (a lease renewed
    meanwhile, or another reaper first, leaves it alone); those changed, after."""
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
    """The update for one lapsed lease or passed deadline: requeue after the retry delay
    with the lapse kept as an error, or fail (CANCELLED when a cancel was asked for)."""
    worker, attempt = doc.get("claimed_by"), max(doc.get("attempts", 0), 1)
    deadline, lapse = doc.get("timeout_at"), doc.get("lease_expires_at")
    overdue = deadline is not None and deadline < now
    error: dict[str, Any]
    if overdue and doc.get("cancel_requested") is None:
        assert deadline is not None  # overdue says so
        error = {"code": JobErrorCode.TIMED_OUT.value,
                 "message": f"attempt {attempt} of worker {worker!r} ran longer than its "
                 f"timeout of {doc.get('timeout_seconds')} s",
                 "details": {"worker": worker, "attempt": attempt,
                             "timeoutSeconds": doc.get("timeout_seconds"),
                             "timedOutAt": deadline.isoformat()}}
    else:
        error = {"code": JobErrorCode.LEASE_EXPIRED.value,
                 "message": f"the lease of worker {worker!r} expired during attempt "
                 f"{attempt}",
                 "details": {"worker": worker, "attempt": attempt,
                             "leaseExpiredAt": lapse.isoformat() if lapse else None}}
    cause = "DEADLINE" if overdue else JobErrorCode.LEASE_EXPIRED.value
    end = end_claim(doc, error, now, limits, retry=True,
                    cause={"worker": worker, "attempt": attempt, "cause": cause})
    if end.ending is Ending.REQUEUED:
        assert end.run_at is not None
        error["message"] += ("; the job is back in the queue" if end.run_at <= now else
                             f"; the job is back in the queue from {end.run_at.isoformat()}")
    elif end.ending is Ending.FAILED:
        error["message"] += "; no attempts are left"
    message = end.error["message"]
    if end.ending is Ending.CANCELLED:
        message += (f"; the claim of worker {worker!r} ended: "
                    + ("its deadline passed" if overdue else "its lease expired"))
    seq = doc.get("log_seq", 0) + 1
    final = end.ending is not Ending.REQUEUED
    entry = log_document(LogEntry(now, "error" if final else "warning", message, seq,
                                  attempt))
    # A claim that ends FAILED keeps claimed_by and its lease: a late write from that
    # worker is told its lease expired (CONFLICT), not that the job is FAILED.
    extra = {"log_seq": seq}
    if final and doc.get("lease_expires_at") is not None:
        extra["lease_expires_at"] = min(doc["lease_expires_at"], now)
    update = end.update(extra)
    update.setdefault("$push", {})["logs"] = {"$each": [entry],
                                             "$slice": -limits.max_logs_per_job}
    update["$inc"] = {"version": 1}
    return update
