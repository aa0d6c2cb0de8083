"""Why a conditional update matched nothing, told the same way for every collection.

Objects the caller may not read are reported exactly like missing ones: the same
error class, code and message (which names only the id the caller sent), and the
same work: the read filter is part of the refusal's query, so a hidden object
comes back as nothing, like a missing one, and no more than the few fields the
checks need is ever read. The order of the checks is the order a client may learn
things in: existence only if readable, then permission, then state.
"""

from __future__ import annotations

from collections.abc import Collection
from typing import Any, Literal, NoReturn

from .access import Principal, can_admin, can_read, can_write, read_filter
from .errors import ConflictError, ForbiddenError, InvalidTransitionError, NotFoundError
from .models import AccessControl

REFUSAL_FIELDS = {"access_control": 1, "status": 1, "claimed_by": 1}


def not_found(kind: str, object_id: str) -> NotFoundError:
    """The one error for a missing object and for a hidden one."""
    return NotFoundError(f"{kind} {object_id!r} not found")


async def refuse(
    collection: Any,
    principal: Principal,
    object_id: str,
    *,
    kind: str,
    action: str,
    need: Literal["write", "admin"] = "write",
    allowed_statuses: Collection[str] | None = None,
    claimable: bool = False,
) -> NoReturn:
    """``claimable``: jobs, which their worker may read."""
    doc = await collection.find_one(
        {"_id": object_id, **read_filter(principal, claimable=claimable)},
        projection=REFUSAL_FIELDS)
    if doc is None:
        raise not_found(kind, object_id)
    access = AccessControl(**doc["access_control"])
    claimed_by = doc.get("claimed_by")
    if not can_read(principal, access, claimed_by):
        raise not_found(kind, object_id)
    if need == "admin":
        allowed = can_admin(principal, access)
    else:
        allowed = can_write(principal, access, claimed_by)
    if not allowed:
        raise ForbiddenError(f"you may not {action} {kind} {object_id!r}")
    status = doc.get("status")
    if allowed_statuses is not None and status not in allowed_statuses:
        raise InvalidTransitionError(f"cannot {action} {kind} {object_id!r}: it is {status}")
    raise ConflictError(f"{kind} {object_id!r} changed while it was being updated; try again")
