"""Idempotent creation: the same key from the same user returns the first result.

A unique partial index on (owner, idempotency_key) decides races: of two
concurrent inserts with one key, exactly one succeeds and the other reads the
winner. A key reused with different input is a CONFLICT, not a silent replay.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, is_dataclass
from typing import Any

from pymongo import ASCENDING, IndexModel
from pymongo.errors import DuplicateKeyError

from .errors import ConflictError
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


async def find_existing(collection: Any, owner: str | None, key: str | None,
                        request: Any) -> dict[str, Any] | None:
    """The document an earlier call with this key created, if any."""
    if key is None:
        return None
    existing = await collection.find_one({"owner": owner, "idempotency_key": key})
    if existing is not None and existing.get("idempotency_fingerprint") != fingerprint(request):
        raise ConflictError(
            f"idempotency key {key!r} was already used for a different request")
    return existing


async def insert_once(collection: Any, doc: dict[str, Any]) -> dict[str, Any]:
    """Insert ``doc``, or return what the same key already created."""
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
        return existing
    return doc
