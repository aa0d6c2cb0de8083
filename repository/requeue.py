"""How a claim that ends without success goes on: back to PENDING, not claimable before
its retry policy's delay, while attempts remain; FAILED after the last; and FAILED with
CANCELLED, never requeued, when the job was asked to cancel.

Shared by a worker's retryable ``failJob`` and the reaper (a lapsed lease, a passed
timeout), so the three end a claim the same way. The caller applies the update with a
compare-and-set on what it read, so the decision holds for the job as it is.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any

from .cancellation import cancelled_error
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
    common = {"updated_at": now, "timeout_at": None}
    request = doc.get("cancel_requested")
    if request is not None:
        cancelled = cancelled_error(request, **(cause or {}))
        return ClaimEnd(Ending.CANCELLED, cancelled, changes={
            **common, "status": JobStatus.FAILED.value, "error": cancelled,
            "completed_at": now, "retryable": True})
    attempt = max(doc.get("attempts", 0), 1)
    policy = policy_of(doc, limits)
    if retry and attempt < policy.max_attempts:
        run_at = now + timedelta(seconds=policy.delay(attempt))
        run_at = run_at.replace(microsecond=run_at.microsecond // 1000 * 1000)
        return ClaimEnd(Ending.REQUEUED, error, run_at, changes={
            **common, "status": JobStatus.PENDING.value, "error": None, "progress": None,
            "claimed_by": None, "claim_token": None, "processing_started_at": None,
            "completed_at": None, "run_at": run_at, "retryable": True,
            "lease_expires_at": None}, worker=doc.get("claimed_by"))
    return ClaimEnd(Ending.FAILED, error, changes={
        **common, "status": JobStatus.FAILED.value, "error": error, "completed_at": now})
