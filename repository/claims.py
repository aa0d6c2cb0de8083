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

from pymongo import ReturnDocument

from .access import NOTHING, Principal, can_read, can_write, read_filter, write_filter
from .documents import bump_version
from .errors import ConflictError, ForbiddenError, InvalidTransitionError, LeaseLostError
from .models import AccessControl, JobStatus
from .mongo_types import Collection as MongoCollection
from .refusals import not_found

LEASE_ACTIONS = frozenset({"progress", "heartbeat", "log", "complete", "fail",
                           # a documentation job's
                           "start", "add statistics to", "set the statistics of",
                           "add files to"})
"""The writes a worker makes while it works on a job (or a documentation job)."""


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


async def read_to_write(collection: MongoCollection, principal: Principal, job_id: str, *,
                        action: str, allowed_statuses: Collection[str], now: datetime,
                        kind: str = "job", projection: dict[str, Any] = DRIVE_FIELDS
                        ) -> dict[str, Any]:
    """The job as it is now, for a write that needs it to decide its update, if the
    conditional update would let the caller write it; else the refusal."""
    current = await collection.find_one({"_id": job_id, **refusal_filter(principal, action)},
                                        projection=projection)
    if not may_write_job(principal, current, action=action, allowed_statuses=allowed_statuses,
                         now=now):
        refuse_job_write(principal, current, job_id, action=action,
                         allowed_statuses=allowed_statuses, now=now, kind=kind)
    assert current is not None  # may_write_job said so
    return current


async def write_job(collection: MongoCollection, principal: Principal, job_id: str,
                    update: dict[str, Any] | list[dict[str, Any]], *, action: str,
                    allowed_statuses: Collection[str], now: datetime, kind: str = "job",
                    extra: dict[str, Any] | None = None) -> dict[str, Any]:
    """One lifecycle write as one conditional update: the status, the caller's right (the
    lease rule for ``LEASE_ACTIONS``, else the writers') and ``extra`` in its filter. The
    job after it, or the refusal that says why it matched nothing."""
    query = {"_id": job_id, "status": {"$in": list(allowed_statuses)}, **(extra or {})}
    query.update(lease_write_filter(principal, now) if action in LEASE_ACTIONS
                 else write_filter(principal))
    doc = await collection.find_one_and_update(query, bump_version(update),
                                               return_document=ReturnDocument.AFTER)
    if doc is None:
        current = await collection.find_one(
            {"_id": job_id, **refusal_filter(principal, action)}, projection=DRIVE_FIELDS)
        refuse_job_write(principal, current, job_id, action=action,
                         allowed_statuses=allowed_statuses, now=now, kind=kind)
    return doc


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
                     action: str, allowed_statuses: Collection[str], now: datetime,
                     kind: str = "job") -> NoReturn:
    """The error for a lifecycle write that matched nothing, from the job as it is now."""
    if doc is None:
        raise not_found(kind, job_id)
    if action in LEASE_ACTIONS:
        _refuse_lost_lease(principal, doc, job_id, now, kind)
    access = AccessControl(**doc["access_control"])
    claimed_by = doc.get("claimed_by")
    if not can_read(principal, access, claimed_by):
        raise not_found(kind, job_id)
    holder = claimed_by if action in LEASE_ACTIONS else None  # retrying: writers only
    if not can_write(principal, access, holder):
        raise ForbiddenError(f"you may not {action} {kind} {job_id!r}")
    status = doc.get("status")
    if status not in allowed_statuses:
        raise InvalidTransitionError(f"cannot {action} {kind} {job_id!r}: it is {status}")
    if action == "retry" and status == JobStatus.FAILED.value and doc.get("retryable") is False:
        raise InvalidTransitionError(f"{kind} {job_id!r} was failed as not retryable")
    raise ConflictError(f"{kind} {job_id!r} changed while it was being updated; try again")


def _refuse_lost_lease(principal: Principal, doc: dict[str, Any], job_id: str,
                       now: datetime, kind: str) -> None:
    uid = principal.user_id
    if uid is None:
        return
    if doc.get("claimed_by") == uid:
        expires = doc.get("lease_expires_at")
        if expires is not None and expires <= now:
            raise LeaseLostError(f"your lease on {kind} {job_id!r} expired at "
                                 f"{expires.isoformat()}; stop working on it")
    elif uid in (doc.get("former_workers") or ()):
        raise LeaseLostError(f"your lease on {kind} {job_id!r} was lost (it expired, or the "
                             f"{kind} was requeued or retried); stop working on it")
