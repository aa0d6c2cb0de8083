"""BSON mapping shared by the collections: ``_id`` and access control in one place."""

from __future__ import annotations

from sys import intern
from typing import Any

from .access import access_document
from .models import AccessControl


def with_access(doc: dict[str, Any], access: AccessControl) -> dict[str, Any]:
    """Store the access lists and the derived ``readers`` field the read filter uses."""
    doc["access_control"] = access_document(access)
    doc["readers"] = access.readers()
    return doc


def access_update(access: AccessControl) -> dict[str, Any]:
    return {"access_control": access_document(access), "readers": access.readers()}


def bump_version(update: dict[str, Any] | list[dict[str, Any]]) -> Any:
    """Count every change of a document, so subscribers can order states and skip stale ones."""
    if isinstance(update, list):
        return [*update, {"$set": {"version": {"$add": [{"$ifNull": ["$version", 0]}, 1]}}}]
    inc = dict(update.get("$inc", {}))
    inc["version"] = 1
    return {**update, "$inc": inc}


STORAGE_ONLY = frozenset({"_id", "readers", "idempotency_key", "idempotency_fingerprint",
                          "batch_active", "changed_by", "deleting_admins"})
"""Kept for queries only. ``batch_active``: False on the jobs of a deactivated batch,
which claims skip (``repository.batches``). ``changed_by``: who made the last change, for
the history (``repository.job_history``), with ``deleting_admins`` on a job being deleted."""


def rename_id(doc: dict[str, Any], name: str) -> dict[str, Any]:
    """A copy of ``doc`` with ``_id`` under the model's name and storage-only fields gone,
    its keys ready to be a model's keyword arguments (``fields``)."""
    out = {intern(key): value for key, value in doc.items() if key not in STORAGE_ONLY}
    out[name] = doc["_id"]
    return out


def fields(doc: dict[str, Any]) -> dict[str, Any]:
    """``doc`` with interned keys, for ``Model(**fields(doc))``. A decoded key is a new
    string, so Python matched it to a parameter by comparing text with each name in turn
    (not by identity): about 100k instructions for a job with ten log entries."""
    return {intern(key): value for key, value in doc.items()}
