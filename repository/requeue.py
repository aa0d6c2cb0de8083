"""How a claim that ends without success goes on: back to PENDING, not claimable before
its retry policy's delay, while attempts remain; FAILED after the last; and, for a job,
FAILED with CANCELLED, never requeued, when it was asked to cancel.

Shared by a worker's retryable ``failJob`` and the reaper (a lapsed lease, a passed
timeout), so the three end a claim the same way; documentation jobs end theirs by the
same decision (``requeue_or_fail``, through ``documentation_failures``). The caller
applies the update with a compare-and-set on what it read, so the decision holds for the
job as it is.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any

from .cancellation import cancelled_error
from .claimable import JOBS, Claimable
from .limits import Limits
from .models import JobStatus
from .retry import RetryPolicy

END_FIELDS = {"status": 1, "claimed_by": 1, "claim_token": 1, "attempts": 1,
              "max_attempts": 1, "retry_policy": 1, "cancel_requested": 1}
"""What ``end_claim`` reads of a job."""


class Ending(StrEnum):
    REQUEUED = "REQUEUED"
    FAILED = "FAILED"
    CANCELLED = "CANCELLED"


@dataclass
class ClaimEnd:
    ending: Ending
    error: dict[str, Any]
    """The failure, as ``error`` (FAILED) or pushed to ``previous_errors`` (REQUEUED)."""
    run_at: datetime | None = None
    changes: dict[str, Any] = field(default_factory=dict)
    worker: str | None = None
    """The worker whose claim ended; once requeued, its late writes are CONFLICTs."""

    def update(self, extra: dict[str, Any] | None = None) -> dict[str, Any]:
        """The MongoDB update; ``extra`` fields join its ``$set``."""
        update: dict[str, Any] = {"$set": {**self.changes, **(extra or {})}}
        if self.ending is Ending.REQUEUED:
            update["$push"] = {"previous_errors": self.error}
            if self.worker is not None:
                update["$addToSet"] = {"former_workers": self.worker}
        return update


def policy_of(doc: dict[str, Any], limits: Limits) -> RetryPolicy:
    attempts = doc.get("max_attempts", limits.default_max_attempts)
    stored = doc.get("retry_policy")
    if stored is None:
        default = limits.retry_policy
        return RetryPolicy(attempts, default.backoff, default.base_seconds,
                           default.cap_seconds)
    return RetryPolicy.from_document(stored, RetryPolicy(max_attempts=attempts))


def end_claim(doc: dict[str, Any], error: dict[str, Any], now: datetime, limits: Limits, *,
              retry: bool, cause: dict[str, Any] | None = None) -> ClaimEnd:
    """How the claim ``doc`` (a PROCESSING job) ends with ``error``. ``retry``: whether
    this failure may be retried at all; ``cause``: details kept when a cancel wins. What
    becomes of the lease of a claim that ends FAILED is the caller's (``extra``)."""
    request = doc.get("cancel_requested")
    if request is not None:
        cancelled = cancelled_error(request, **(cause or {}))
        return ClaimEnd(Ending.CANCELLED, cancelled, changes={
            "updated_at": now, "timeout_at": None, "status": JobStatus.FAILED.value,
            "error": cancelled, "completed_at": now, "retryable": True})
    return requeue_or_fail(doc, error, now, policy_of(doc, limits), retry=retry, work=JOBS,
                           requeued={"error": None, "progress": None, "completed_at": None,
                                     "retryable": True},
                           failed={"error": error, "completed_at": now, "timeout_at": None})


def requeue_or_fail(doc: dict[str, Any], error: dict[str, Any], now: datetime,
                    policy: RetryPolicy, *, retry: bool, work: Claimable,
                    requeued: dict[str, Any], failed: dict[str, Any]) -> ClaimEnd:
    """The claim ``doc`` of ``work`` ends with ``error``: requeued, due after ``policy``'s
    delay, when ``retry`` and attempts remain (the claim's fields cleared, ``requeued``
    set too); else FAILED with ``failed`` set."""
    if requeues(doc, policy, retry=retry):
        attempt = max(doc.get("attempts", 0), 1)
        run_at = now + timedelta(seconds=policy.delay(attempt))
        run_at = run_at.replace(microsecond=run_at.microsecond // 1000 * 1000)
        return ClaimEnd(Ending.REQUEUED, error, run_at, changes={
            "status": work.pending, "claimed_by": None, "claim_token": None,
            "lease_expires_at": None, **dict.fromkeys(work.claim_fields), "run_at": run_at,
            "updated_at": now, **requeued}, worker=doc.get("claimed_by"))
    return ClaimEnd(Ending.FAILED, error, changes={"status": work.failed, "updated_at": now,
                                                    **failed})


def requeues(doc: dict[str, Any], policy: RetryPolicy, *, retry: bool) -> bool:
    """Whether a failure of the claim ``doc`` that may be retried (``retry``) goes back to
    the queue: the attempt it ends is not ``policy``'s last."""
    return retry and max(doc.get("attempts", 0), 1) < policy.max_attempts
