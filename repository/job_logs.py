"""Reading a few of a job's log entries, never the whole log.

A job's log is embedded in its document and may hold ``max_logs_per_job`` entries of
``max_log_message_length`` characters: megabytes. Change events and subscriptions' states
carry no entries (``repository.changes``); whoever shows some reads just those, as of a
given ``log_seq``, in one aggregation that ships only them. Identical windows read at the
same time (every subscriber of one event selecting ``logs(last: 20)``) share one read.
"""

from __future__ import annotations

import asyncio
import weakref
from typing import Any

from .access import Principal, read_filter
from .errors import NotFoundError
from .job_documents import job_from_document, log_entry
from .models import LogEntry, SecretaryJob
from .mongo_types import Collection

WITHOUT_LOGS = {"logs": 0}
"""Projection of a job document without its log."""
OLDEST_ENTRY = {"logs": {"$slice": 1}}
"""Projection of the log's oldest held entry (with ``log_seq``: how many are held)."""


def held_entries(doc: dict[str, Any]) -> int:
    """How many entries a job document read with OLDEST_ENTRY holds: their numbers run
    without a hole from the oldest held to ``log_seq``."""
    oldest = doc.get("logs") or []
    return doc.get("log_seq", 0) - oldest[0]["seq"] + 1 if oldest else 0


def log_push(entries: list[dict[str, Any]], held: int, kept: int) -> dict[str, Any]:
    """The ``$push`` of ``entries`` onto a log holding ``held`` that keeps ``kept``.

    Dropping the oldest entries shifts every other one, so the database records (in its
    oplog, and in every change event) the whole log: megabytes at the maxima, per append.
    So the stored log may run over by a tenth of ``kept`` and is cut back to ``kept`` only
    then: the other appends record just their entries. ``log_first`` (``first_shown``)
    hides the entries it holds beyond ``kept`` from every reader."""
    if held + len(entries) <= kept + max(1, kept // 10):
        return {"$each": entries}
    return {"$each": entries, "$slice": -kept}


def first_shown(log_seq: int, kept: int) -> int:
    """``log_first`` of a log whose newest entry is ``log_seq``: the oldest one shown."""
    return max(1, log_seq - kept + 1)


async def get_without_logs(collection: Collection, principal: Principal,
                           job_id: str) -> SecretaryJob:
    """The job as ``JobRepository.get`` reads it, but with its log left in the database
    (``logs_loaded`` is False)."""
    query = {"_id": job_id, **read_filter(principal, claimable=True)}
    doc = await collection.find_one(query, projection=WITHOUT_LOGS)
    if doc is None:
        raise NotFoundError(f"job {job_id!r} not found")
    return job_from_document(doc)


class _Read:
    """One window being read; alive while someone awaits or holds it."""

    __slots__ = ("__weakref__", "task")

    def __init__(self, task: asyncio.Task[list[LogEntry]]) -> None:
        self.task = task


class LogWindows:
    """Windows of one collection's job logs, read at most once at a time each."""

    def __init__(self, collection: Collection) -> None:
        self.collection = collection
        self.reading: weakref.WeakValueDictionary[tuple[Any, int, int], _Read] = (
            weakref.WeakValueDictionary())

    async def window(self, job_id: str, *, newest: int, count: int) -> list[LogEntry]:
        """The entries the log still holds with ``newest - count < seq <= newest``, oldest
        first; a deleted job's are none. The caller has checked that it may read the job
        in a state whose ``log_seq`` was ``newest``: entries up to it never change."""
        if count <= 0 or newest <= 0:
            return []
        key = (job_id, newest, count)
        read = self.reading.get(key)
        if read is None:
            read = _Read(asyncio.ensure_future(self._read(job_id, newest - count, newest)))
            self.reading[key] = read
        # shielded: one reader giving up does not cancel the read for the others
        return list(await asyncio.shield(read.task))

    async def _read(self, job_id: str, after: int, newest: int) -> list[LogEntry]:
        within = {"$and": [{"$gt": ["$$entry.seq", after]}, {"$lte": ["$$entry.seq", newest]}]}
        pipeline: list[dict[str, Any]] = [{"$match": {"_id": job_id}},
                    {"$project": {"_id": 0, "logs": {"$filter": {
                        "input": {"$ifNull": ["$logs", []]}, "as": "entry", "cond": within}}}}]
        rows = await (await self.collection.aggregate(pipeline)).to_list()
        return [log_entry(entry) for entry in rows[0]["logs"]] if rows else []
