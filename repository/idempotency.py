"""Idempotent creation: the same key from the same user returns the first result.

A unique partial index on (owner, idempotency_key) decides races: of two
concurrent inserts with one key, exactly one succeeds and the other reads the
winner. A key reused with different input is a CONFLICT, not a silent replay.
A replay goes through the read check: once the creator may no longer read what
the key created (another admin removed them), it is NOT_FOUND, like the object's
own query, and shows nothing of its current state.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, is_dataclass
from typing import Any

from pymongo import ASCENDING, IndexModel
from pymongo.errors import DuplicateKeyError

from .access import Principal, readable_document
from .errors import ConflictError
from .refusals import not_found
from .validation import check_text

MAX_KEY_LENGTH = 200
STORED_FIELDS = ("idempotency_key", "idempotency_fingerprint")

INDEX = IndexModel(
    [("owner", ASCENDING), ("idempotency_key", ASCENDING)],
    name="idempotency",
    unique=True,
    partialFilterExpression={"idempotency_key": {"$type": "string"}},
)


def _plain(value: Any) -> Any:
    if is_dataclass(value) and not isinstance(value, type):
        return asdict(value)
    return str(value)


def fingerprint(request: Any) -> str:
    canonical = json.dumps(request, sort_keys=True, default=_plain, separators=(",", ":"))
    return hashlib.sha256(canonical.encode()).hexdigest()


def stamp(doc: dict[str, Any], key: str | None, request: Any) -> None:
    """Mark a document about to be inserted with its key and the request's fingerprint."""
    if key is None:
        return
    check_text("idempotencyKey", key, max_length=MAX_KEY_LENGTH)
    doc["idempotency_key"] = key
    doc["idempotency_fingerprint"] = fingerprint(request)


async def find_existing(collection: Any, principal: Principal, key: str | None,
                        request: Any, *, kind: str, claimable: bool = False
                        ) -> dict[str, Any] | None:
    """The document an earlier call with this key created, if any (and readable)."""
    if key is None:
        return None
    existing = await collection.find_one({"owner": principal.user_id, "idempotency_key": key})
    if existing is not None and existing.get("idempotency_fingerprint") != fingerprint(request):
        raise ConflictError(
            f"idempotency key {key!r} was already used for a different request")
    return _replayed(principal, existing, kind, claimable)


async def insert_once(collection: Any, doc: dict[str, Any], principal: Principal, *,
                      kind: str, claimable: bool = False) -> dict[str, Any]:
    """Insert ``doc``, or return what the same key already created (if readable)."""
    try:
        await collection.insert_one(doc)
    except DuplicateKeyError:
        key = doc.get("idempotency_key")
        if key is None:
            raise
        existing = await collection.find_one({"owner": doc.get("owner"), "idempotency_key": key})
        if existing is None:
            raise ConflictError(f"idempotency key {key!r} is being used concurrently; "
                                "try again") from None
        if existing.get("idempotency_fingerprint") != doc["idempotency_fingerprint"]:
            raise ConflictError(
                f"idempotency key {key!r} was already used for a different request") from None
        return _replayed(principal, existing, kind, claimable)  # type: ignore[return-value]
    return doc


def _replayed(principal: Principal, existing: dict[str, Any] | None, kind: str,
              claimable: bool) -> dict[str, Any] | None:
    if existing is not None and not readable_document(principal, existing,
                                                      claimable=claimable):
        raise not_found(kind, existing["_id"])
    return existing
