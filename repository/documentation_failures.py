"""How a documentation job's failure ends: back in the queue after a backoff, or FAILED.

A failure of a claimed run (the worker's ``fail`` when retryable, an expired lease)
requeues the job while its retry policy has attempts left: PENDING again, claimable
from ``run_at`` = now + the policy's delay, the error kept in ``previous_errors`` and the
worker among ``former_workers`` (its late writes are CONFLICTs). Otherwise the job is
FAILED with the error. The decision is the one jobs take (``requeue.requeue_or_fail``).
``retry_update`` is a writer's later decision to run it again.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from .claimable import DOCUMENTATION_JOBS
from .errors import JobErrorCode
from .models import DocumentationJobStatus
from .requeue import requeue_or_fail
from .requeue import requeues as claim_requeues
from .retry import RetryPolicy

RUNNING = DocumentationJobStatus.RUNNING.value
PENDING = DocumentationJobStatus.PENDING.value

FAILURE_FIELDS = {"status": 1, "claimed_by": 1, "claim_token": 1, "attempts": 1,
                  "retry_policy": 1, "lease_expires_at": 1}
"""What ``requeues`` and ``failure_update`` read of the job."""


def requeues(doc: dict[str, Any], retryable: bool, default: RetryPolicy) -> bool:
    """Whether a failure of ``doc`` as it is now puts it back in the queue: a claimed run
    failed, retryably, with attempts left."""
    return claim_requeues(doc, _policy(doc, default), retry=_may_retry(doc, retryable))


def failure_update(doc: dict[str, Any], now: datetime, *, code: str | None, message: str,
                   retryable: bool, default: RetryPolicy, end_lease: bool = True
                   ) -> dict[str, Any]:
    """The update that ends the run of ``doc`` with this error (``requeue_or_fail``).
    ``end_lease``: False keeps a lapsed lease, so the worker that let it lapse hears so
    on a late write."""
    worker, attempt = doc.get("claimed_by"), doc.get("attempts", 0)
    error = {"code": code, "message": message, "attempt": attempt, "worker": worker,
             "failed_at": now.isoformat()}
    failed: dict[str, Any] = {"error": error, "error_message": message,
                              "timestamp_end": now.isoformat(), "ended_at": now,
                              "retryable": retryable}
    if end_lease:
        failed["lease_expires_at"] = None
    return requeue_or_fail(doc, error, now, _policy(doc, default),
                           retry=_may_retry(doc, retryable), work=DOCUMENTATION_JOBS,
                           requeued={}, failed=failed).update()


def expiry_update(doc: dict[str, Any], now: datetime, default: RetryPolicy) -> dict[str, Any]:
    """A lapsed lease: a failure with code LEASE_EXPIRED."""
    worker, attempt = doc.get("claimed_by"), doc.get("attempts", 0)
    again = requeues(doc, True, default)
    message = (f"the lease of worker {worker!r} expired during attempt {attempt}; "
               + ("the job is back in the queue" if again else "no attempts are left"))
    return failure_update(doc, now, code=JobErrorCode.LEASE_EXPIRED.value, message=message,
                          retryable=True, default=default, end_lease=False)


def _policy(doc: dict[str, Any], default: RetryPolicy) -> RetryPolicy:
    return RetryPolicy.from_document(doc.get("retry_policy"), default)


def _may_retry(doc: dict[str, Any], retryable: bool) -> bool:
    """Only a claimed run is retried, and only when failed retryably."""
    return retryable and doc.get("status") == RUNNING and doc.get("claimed_by") is not None


def retry_update(now: datetime) -> list[dict[str, Any]]:
    """FAILED back to PENDING, claimable at once: the error joins ``previous_errors``, the
    last worker ``former_workers``; ``attempts`` keeps counting (the new run is one more)."""
    return [
        {"$set": {
            "previous_errors": {"$concatArrays": [
                {"$ifNull": ["$previous_errors", []]},
                {"$cond": [{"$ifNull": ["$error", False]}, ["$error"], []]}]},
            "former_workers": {"$setUnion": [
                {"$ifNull": ["$former_workers", []]},
                {"$cond": [{"$ifNull": ["$claimed_by", False]}, ["$claimed_by"], []]}]},
        }},
        {"$set": {
            "status": PENDING, "error": None, "error_message": None, "claimed_by": None,
            "claim_token": None, "lease_expires_at": None, "timestamp_start": None,
            "timestamp_end": None, "started_at": None, "ended_at": None, "run_at": now,
            "retryable": True, "updated_at": now,
        }},
    ]
