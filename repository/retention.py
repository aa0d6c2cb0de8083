"""Retention: an optional TTL index that lets MongoDB delete finished jobs."""

from __future__ import annotations

from pymongo import ASCENDING
from pymongo.errors import OperationFailure

from .mongo_types import Collection

# Retention (JOBGRAPH_FINISHED_JOB_TTL_SECONDS): a TTL index over finished jobs only.
# ``completed_at`` is a date only while a job is COMPLETED or FAILED (retry resets it),
# and members of a batch are kept, since a batch's counts and status derive from them.
RETENTION_INDEX = "finished_ttl"
RETENTION_FILTER = {"completed_at": {"$type": "date"}, "batch_id": {"$type": "null"}}
INDEX_CONFLICT_CODES = (85, 86)  # IndexOptionsConflict, IndexKeySpecsConflict


async def ensure_retention(collection: Collection, ttl_seconds: int | None) -> int | None:
    """With ``ttl_seconds``, MongoDB deletes finished jobs that long after
    ``completed_at`` (TTL index); a changed value is applied with ``collMod``. None
    creates nothing and drops nothing. Returns the TTL now in force (an index left
    from an earlier configuration still expires jobs)."""
    existing = (await collection.index_information()).get(RETENTION_INDEX)
    if ttl_seconds is None:
        return None if existing is None else existing.get("expireAfterSeconds")
    if existing is None:
        try:
            await collection.create_index(
                [("completed_at", ASCENDING)], name=RETENTION_INDEX,
                expireAfterSeconds=ttl_seconds, partialFilterExpression=RETENTION_FILTER)
            return ttl_seconds
        except OperationFailure as exc:  # another process created it first
            if exc.code not in INDEX_CONFLICT_CODES:
                raise
    elif existing.get("expireAfterSeconds") == ttl_seconds:
        return ttl_seconds
    await collection.database.command(
        "collMod", collection.name,
        index={"name": RETENTION_INDEX, "expireAfterSeconds": ttl_seconds})
    return ttl_seconds
