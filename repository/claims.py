"""Who may drive a job, and why a lifecycle write to one was refused.

A worker's writes are bound to its claim. The writes a worker makes while it works
(``LEASE_ACTIONS``) are allowed to the job's holder while its lease runs, and to the
job's writers (``writeAccess``, ``adminAccess``, the admin role) that never claimed it.
A caller that claimed the job (it is ``claimed_by``, or among ``former_workers``) writes
to it only as its worker: once its lease lapsed or the job went to someone else, no other
right it has lets a late write in, or a stale worker that is also a writer would finish
a job another worker holds.

A worker that lost its lease hears so (CONFLICT) before anything else, even about a job
it can no longer read: it was allowed a moment ago, and must stop working on the job.
Retrying a job is its writers' decision, so there a job the caller cannot read is
NOT_FOUND, as everywhere else.
"""

from __future__ import annotations

from collections.abc import Collection
from datetime import datetime
from typing import Any, NoReturn

from .access import NOTHING, Principal, can_read, can_write, read_filter
from .errors import ConflictError, ForbiddenError, InvalidTransitionError, LeaseLostError
from .models import AccessControl, JobStatus
from .refusals import not_found

LEASE_ACTIONS = frozenset({"progress", "heartbeat", "log", "complete", "fail"})
"""The writes a worker makes while it works on a job."""


def lease_write_filter(principal: Principal, now: datetime) -> dict[str, Any]:
    """Who may make a ``LEASE_ACTIONS`` write at ``now``, as a filter for the update itself."""
    uid = principal.user_id
    if uid is None:
        return NOTHING
    never_claimed: dict[str, Any] = {"claimed_by": {"$ne": uid}, "former_workers": {"$ne": uid}}
    if not principal.is_admin:
        never_claimed["$or"] = [{"access_control.write_access": uid},
                                {"access_control.admin_access": uid}]
    if not (principal.is_worker or principal.is_admin):  # the roles that may claim
        return never_claimed
    return {"$or": [{"claimed_by": uid, "lease_expires_at": {"$gt": now}}, never_claimed]}


DRIVE_FIELDS = {"status": 1, "access_control": 1, "claimed_by": 1, "lease_expires_at": 1,
                "former_workers": 1, "retryable": 1, "log_seq": 1, "attempts": 1}
"""What ``may_write_job`` and ``refuse_job_write`` read of a job (never its logs)."""


def refusal_filter(principal: Principal, action: str) -> dict[str, Any]:
    """The jobs a refusal may read for this caller: those it may read, and for a worker's
    write also those it claimed (to tell it its lease was lost). Any other job reads as
    missing, in the same query, so a hidden job costs exactly what a missing one does."""
    readable = read_filter(principal, claimable=True)
    uid = principal.user_id
    if action not in LEASE_ACTIONS or uid is None or not readable:
        return readable
    return {"$or": [readable, {"claimed_by": uid}, {"former_workers": uid}]}


def may_write_job(principal: Principal, doc: dict[str, Any] | None, *, action: str,
                  allowed_statuses: Collection[str], now: datetime) -> bool:
    """``lease_write_filter`` (or ``write_filter`` for a retry) and the status rule, applied
    to a job already read: whether the conditional update would match it."""
    uid = principal.user_id
    if doc is None or uid is None or doc.get("status") not in allowed_statuses:
        return False
    writer = principal.is_admin or AccessControl(**doc["access_control"]).can_write(uid)
    if action not in LEASE_ACTIONS:
        return writer
    claimed_by, expires = doc.get("claimed_by"), doc.get("lease_expires_at")
    if (claimed_by == uid and (principal.is_worker or principal.is_admin)
            and expires is not None and expires > now):
        return True
    if claimed_by == uid or uid in (doc.get("former_workers") or ()):
        return False
    return writer


def refuse_job_write(principal: Principal, doc: dict[str, Any] | None, job_id: str, *,
                     action: str, allowed_statuses: Collection[str], now: datetime) -> NoReturn:
    """The error for a lifecycle write that matched nothing, from the job as it is now."""
    if doc is None:
        raise not_found("job", job_id)
    if action in LEASE_ACTIONS:
        _refuse_lost_lease(principal, doc, job_id, now)
    access = AccessControl(**doc["access_control"])
    claimed_by = doc.get("claimed_by")
    if not can_read(principal, access, claimed_by):
        raise not_found("job", job_id)
    holder = claimed_by if action in LEASE_ACTIONS else None  # retrying: writers only
    if not can_write(principal, access, holder):
        raise ForbiddenError(f"you may not {action} job {job_id!r}")
    status = doc.get("status")
    if status not in allowed_statuses:
        raise InvalidTransitionError(f"cannot {action} job {job_id!r}: it is {status}")
    if action == "retry" and status == JobStatus.FAILED.value and doc.get("retryable") is False:
        raise InvalidTransitionError(f"job {job_id!r} was failed as not retryable")
    raise ConflictError(f"job {job_id!r} changed while it was being updated; try again")


def _refuse_lost_lease(principal: Principal, doc: dict[str, Any], job_id: str,
                       now: datetime) -> None:
    uid = principal.user_id
    if uid is None:
        return
    if doc.get("claimed_by") == uid:
        expires = doc.get("lease_expires_at")
        if expires is not None and expires <= now:
            raise LeaseLostError(f"your lease on job {job_id!r} expired at "
                                 f"{expires.isoformat()}; stop working on it")
    elif uid in (doc.get("former_workers") or ()):
        raise LeaseLostError(f"your lease on job {job_id!r} was lost (it expired or the "
                             "job was retried); stop working on it")
