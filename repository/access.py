"""Who is asking, and the MongoDB filters that say what they may see or change.

Read filters go into every query (so pages and counts are right per caller);
write and admin filters go into the conditional updates themselves.

The rules, for every collection:

- read: the object is PUBLIC, or the caller is in its read, write or admin list;
- write (lifecycle, progress, logs, ...): the caller is in its write or admin list;
- admin (delete, change access control): the caller is in its admin list;
- the ``admin`` role may do everything; the ``worker`` role may claim jobs, and
  may read and drive the jobs it holds (``claimed_by``), nothing else.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from .models import PUBLIC_READER, AccessControl

ADMIN_ROLE = "admin"
WORKER_ROLE = "worker"

NOTHING: dict[str, Any] = {"$and": [{"_id": {"$exists": False}}]}
"""Matches no document (every document has an ``_id``); merges under a key no other
filter part uses."""


@dataclass(frozen=True)
class Principal:
    user_id: str | None = None
    roles: frozenset[str] = field(default_factory=frozenset)

    @property
    def is_anonymous(self) -> bool:
        return self.user_id is None

    @property
    def is_admin(self) -> bool:
        return ADMIN_ROLE in self.roles

    @property
    def is_worker(self) -> bool:
        return WORKER_ROLE in self.roles and self.user_id is not None


ANONYMOUS = Principal()
SYSTEM = Principal("system", frozenset({ADMIN_ROLE}))
"""Internal callers (reaper, seeding, tests of the repository) that act as admin."""


def read_filter(principal: Principal, *, claimable: bool = False) -> dict[str, Any]:
    """What the caller may read. ``claimable`` (jobs): a worker also reads what it holds.

    Served by the ``readers_created`` index (and ``claimed_created`` for the worker's
    branch), so a page or a count never scans objects the caller cannot see.
    """
    if principal.is_admin:
        return {}
    if principal.user_id is None:
        return {"readers": PUBLIC_READER}
    readers = {"readers": {"$in": [PUBLIC_READER, principal.user_id]}}
    if claimable and principal.is_worker:
        return {"$or": [readers, {"claimed_by": principal.user_id}]}
    return readers


def readable_document(principal: Principal, doc: dict[str, Any] | None, *,
                      claimable: bool = False) -> bool:
    """``read_filter`` applied to one stored document, e.g. a change-stream event's."""
    if doc is None:
        return False
    if principal.is_admin:
        return True
    readers = doc.get("readers") or ()
    if PUBLIC_READER in readers or (principal.user_id is not None
                                    and principal.user_id in readers):
        return True
    return claimable and holds_claim(principal, doc.get("claimed_by"))


def administered_document(principal: Principal, doc: dict[str, Any] | None) -> bool:
    """``admin_filter`` applied to one stored document, e.g. a change-stream event's."""
    if doc is None:
        return False
    if principal.is_admin:
        return True
    admins = (doc.get("access_control") or {}).get("admin_access") or ()
    return principal.user_id is not None and principal.user_id in admins


def write_filter(principal: Principal) -> dict[str, Any]:
    """Writers and admins of the object (for a job's worker, see ``claims``)."""
    if principal.is_admin:
        return {}
    uid = principal.user_id
    if uid is None:
        return NOTHING
    return {"$or": [{"access_control.write_access": uid}, {"access_control.admin_access": uid}]}


def admin_filter(principal: Principal) -> dict[str, Any]:
    if principal.is_admin:
        return {}
    if principal.user_id is None:
        return NOTHING
    return {"access_control.admin_access": principal.user_id}


def holds_claim(principal: Principal, claimed_by: str | None) -> bool:
    return principal.is_worker and claimed_by is not None and claimed_by == principal.user_id


def can_read(principal: Principal, access: AccessControl, claimed_by: str | None = None) -> bool:
    """The same rule as ``read_filter``, for one object already in hand."""
    return (principal.is_admin or access.can_read(principal.user_id)
            or holds_claim(principal, claimed_by))


def can_write(principal: Principal, access: AccessControl, claimed_by: str | None = None) -> bool:
    """The same rule as ``write_filter``."""
    return (principal.is_admin or access.can_write(principal.user_id)
            or holds_claim(principal, claimed_by))


def can_admin(principal: Principal, access: AccessControl) -> bool:
    return principal.is_admin or access.can_admin(principal.user_id)


@dataclass(frozen=True)
class Rights:
    """What the caller may do to one object it reads, by the same rules as the conditional
    updates of the mutations: what a frontend shows its buttons by (``viewerCan...``)."""

    write: bool
    """Its writers' changes (retry, pause and resume, activate and deactivate). A worker's
    claim on a job is not counted: it lets the worker drive that job, nothing more."""
    admin: bool
    """Delete it, change its access control."""

    def retry(self, *, failed: bool, retryable: bool) -> bool:
        """Whether a retry would be accepted now: the writers' decision, on an object that
        FAILED and was not failed for good."""
        return self.write and failed and retryable

    def cancel(self, *, waiting_or_running: bool, cancel_requested: bool) -> bool:
        """Whether a cancel would change something now: the writers' decision, on a job
        PENDING or PROCESSING that was not asked to cancel yet."""
        return self.write and waiting_or_running and not cancel_requested

    def reprioritize(self, *, pending: bool) -> bool:
        """Whether a priority change would be accepted now: the writers', while PENDING."""
        return self.write and pending


def rights(principal: Principal, access: AccessControl) -> Rights:
    """``Rights`` for one object, by ``write_filter`` and ``admin_filter``."""
    return Rights(write=can_write(principal, access), admin=can_admin(principal, access))


def access_document(access: AccessControl) -> dict[str, Any]:
    return {
        "visibility": access.visibility.value,
        "read_access": access.read_access,
        "write_access": access.write_access,
        "admin_access": access.admin_access,
    }
