"""Why a conditional update matched nothing, told the same way for every collection.

Objects the caller may not read are reported exactly like missing ones.
"""

from __future__ import annotations

from collections.abc import Collection
from typing import Any, Literal, NoReturn

from .access import Principal, can_admin, can_read, can_write
from .errors import ConflictError, ForbiddenError, InvalidTransitionError, NotFoundError
from .models import AccessControl


async def refuse(
    collection: Any,
    principal: Principal,
    object_id: str,
    *,
    kind: str,
    action: str,
    need: Literal["write", "admin"] = "write",
    allowed_statuses: Collection[str] | None = None,
) -> NoReturn:
    doc = await collection.find_one({"_id": object_id})
    if doc is None:
        raise NotFoundError(f"{kind} {object_id!r} not found")
    access = AccessControl(**doc["access_control"])
    claimed_by = doc.get("claimed_by")
    worker_owns = principal.is_worker and claimed_by is not None and claimed_by == principal.user_id
    if not (can_read(principal, access) or worker_owns):
        raise NotFoundError(f"{kind} {object_id!r} not found")
    allowed = can_admin(principal, access) if need == "admin" else can_write(
        principal, access, claimed_by)
    if not allowed:
        raise ForbiddenError(f"you may not {action} {kind} {object_id!r}")
    status = doc.get("status")
    if allowed_statuses is not None and status not in allowed_statuses:
        raise InvalidTransitionError(f"cannot {action} {kind} {object_id!r}: it is {status}")
    raise ConflictError(f"{kind} {object_id!r} changed while it was being updated; try again")
