"""Cancelling jobs: one pipeline update that ends a PENDING job at once and asks a
PROCESSING one to stop.

A cancelled job is FAILED with error code CANCELLED (the seeds' statuses stay the only
statuses). A PROCESSING job keeps running until its worker acknowledges (``failJob``)
or its claim ends, so the request is recorded (``cancel_requested``) and the claim's
deadline (``timeout_at``) is brought forward to one lease from now: a worker that keeps
renewing its lease without acknowledging is still stopped by the reaper then. However a
cancelled claim ends, it ends FAILED with CANCELLED and is never requeued; and a job
asked to cancel can no longer complete (``CANCEL_REQUESTED``), so a cancel racing a
completion ends in exactly one of them.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from .errors import JobErrorCode
from .models import CancelRequest, JobStatus

MAX_REASON_LENGTH = 1000


def cancelled_error(request: CancelRequest | dict[str, Any], **more: Any) -> dict[str, Any]:
    """The error of a cancelled job: who asked, when and why, plus ``more`` details."""
    if isinstance(request, dict):
        request = CancelRequest(**request)
    message = f"cancelled by {request.by}" + (f": {request.reason}" if request.reason else "")
    details = {"by": request.by, "at": request.at.isoformat(), "reason": request.reason,
               **more}
    return {"code": JobErrorCode.CANCELLED.value, "message": message, "details": details}


def cancel_update(request: CancelRequest, lease_seconds: float) -> list[dict[str, Any]]:
    """PENDING: FAILED with CANCELLED now. PROCESSING: the request is recorded (the first
    one stays) and the claim must end within one lease. Apply with a filter on
    ``status`` in (PENDING, PROCESSING)."""
    now = request.at
    pending = {"$eq": ["$status", JobStatus.PENDING.value]}
    stored = {"by": request.by, "at": now, "reason": request.reason}
    grace = now + timedelta(seconds=lease_seconds)

    def when_pending(value: Any, otherwise: Any) -> dict[str, Any]:
        return {"$cond": [pending, value, otherwise]}

    return [{"$set": {
        "status": when_pending(JobStatus.FAILED.value, "$status"),
        "error": when_pending({"$literal": cancelled_error(request)}, "$error"),
        "completed_at": when_pending(now, "$completed_at"),
        "retryable": when_pending(True, "$retryable"),
        "cancel_requested": {"$ifNull": ["$cancel_requested", {"$literal": stored}]},
        "timeout_at": when_pending(None, _earlier("$timeout_at", grace)),
        "updated_at": now,
        "version": {"$add": [{"$ifNull": ["$version", 0]}, 1]},
    }}]


def _earlier(field: str, instant: datetime) -> dict[str, Any]:
    return {"$min": [{"$ifNull": [field, instant]}, instant]}
