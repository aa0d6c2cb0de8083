"""Who is asking, and the MongoDB filters that say what they may see or change.

Read filters go into every query (so pages and counts are right per caller);
write and admin filters go into the conditional updates themselves.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from .models import AccessControl

PUBLIC_READER = "*"
ADMIN_ROLE = "admin"
WORKER_ROLE = "worker"


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
        return WORKER_ROLE in self.roles


ANONYMOUS = Principal()
SYSTEM = Principal("system", frozenset({ADMIN_ROLE}))
"""Internal callers (reaper, seeding, tests of the repository) that act as admin."""


def read_filter(principal: Principal) -> dict[str, Any]:
    if principal.is_admin:
        return {}
    if principal.user_id is None:
        return {"readers": PUBLIC_READER}
    return {"readers": {"$in": [PUBLIC_READER, principal.user_id]}}


def write_filter(principal: Principal, *, claimable: bool = False) -> dict[str, Any]:
    """Writers and admins of the object; for jobs, also the worker that claimed it."""
    if principal.is_admin:
        return {}
    uid = principal.user_id
    branches: list[dict[str, Any]] = [
        {"access_control.write_access": uid},
        {"access_control.admin_access": uid},
    ]
    if claimable and principal.is_worker:
        branches.append({"claimed_by": uid})
    return {"$or": branches}


def admin_filter(principal: Principal) -> dict[str, Any]:
    if principal.is_admin:
        return {}
    return {"access_control.admin_access": principal.user_id}


def can_read(principal: Principal, access: AccessControl) -> bool:
    return principal.is_admin or access.can_read(principal.user_id)


def can_write(principal: Principal, access: AccessControl, claimed_by: str | None = None) -> bool:
    if principal.is_admin or access.can_write(principal.user_id):
        return True
    return principal.is_worker and claimed_by is not None and claimed_by == principal.user_id


def can_admin(principal: Principal, access: AccessControl) -> bool:
    return principal.is_admin or access.can_admin(principal.user_id)


def access_document(access: AccessControl) -> dict[str, Any]:
    return {
        "visibility": access.visibility.value,
        "read_access": access.read_access,
        "write_access": access.write_access,
        "admin_access": access.admin_access,
    }


def access_from_document(doc: dict[str, Any] | None) -> AccessControl:
    return AccessControl(**doc) if doc else AccessControl()
