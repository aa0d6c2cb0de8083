"""A job's history: who changed what, when; kept a configured number of days (TTL).

Entries are made from the database's change stream (``graph/loops/history.py``), not by
each write: every acknowledged change of a job is in MongoDB's oplog, whichever process,
loop or batch operation made it, and the writer saves its position only after the entries
of every change up to it are written. A process killed between a job's write and its
history entry loses nothing: the next writer replays from the saved position, and an
entry's id derives from its change (the job id and the change's cluster time), so a
replayed change is stored once.

Who did it travels in the job document itself, in the same update as the change:
``changed_by`` is one string of a fresh nonce, the action and the user id, so every
stamped write shows it, whole, among the event's updated fields. A change that carries
no stamp was made by jobgraph itself (the reaper, an abandoned claim undone, a batch
operation): "system".
A delete stamps the job first; the writer keeps that stamp (``pending_deletes``) until
the delete event arrives, so the deleter is known even across a restart in between.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from typing import Any

from bson import Timestamp
from pymongo import ASCENDING, DESCENDING, IndexModel
from pymongo.errors import BulkWriteError

from .access import Principal
from .errors import ValidationError
from .models import new_id, utcnow
from .mongo_types import Collection

SYSTEM_ACTOR = "system"
STAMP = "changed_by"
DELETE_ACTION = "delete"
WRITER_COMMENT = "jobgraph: history writer"
"""Marks the writer's reads of ``jobs`` (in the server's logs and profiler, and for tests
counting a request's commands: the writer runs in the background)."""
DELETING_ADMINS = "deleting_admins"
"""Set with a delete's stamp: the admins who may read the DELETED entry (events carry no
whole document, and the job is gone by the time the writer could read it)."""
PENDING_DELETE_DAYS = 7

INDEXES = [
    IndexModel([("job_id", ASCENDING), ("seq", DESCENDING)], name="job_seq"),
    IndexModel([("expires_at", ASCENDING)], name="expires_ttl", expireAfterSeconds=0),
]

BOOKKEEPING = frozenset({
    "version", "updated_at", "readers", STAMP, "lease_expires_at", "logs", "log_seq", "log_first",
    "claim_token", "former_workers", "batch_active", "timeout_at", "idempotency_key",
    "idempotency_fingerprint", "_id"})
"""Fields whose change alone is not worth an entry (heartbeats, log appends)."""
CREATED_FIELDS = ("status", "job_type", "priority", "batch_id", "run_at", "owner")


class JobHistoryKind(StrEnum):
    CREATED = "CREATED"
    CLAIMED = "CLAIMED"
    PROGRESS = "PROGRESS"
    CANCEL_REQUESTED = "CANCEL_REQUESTED"
    COMPLETED = "COMPLETED"
    FAILED = "FAILED"
    RETRIED = "RETRIED"
    REQUEUED = "REQUEUED"
    ACCESS_CHANGED = "ACCESS_CHANGED"
    PRIORITY_CHANGED = "PRIORITY_CHANGED"
    UPDATED = "UPDATED"
    DELETED = "DELETED"


@dataclass(frozen=True)
class HistoryEntry:
    entry_id: str
    job_id: str
    seq: int
    at: datetime
    by: str
    kind: JobHistoryKind
    status: str | None
    changes: dict[str, Any]
    admins: tuple[str, ...]

    def cursor(self) -> str:
        return base64.urlsafe_b64encode(str(self.seq).encode()).decode().rstrip("=")


def actor_stamp(principal: Principal, action: str) -> dict[str, Any]:
    """The ``$set`` part that names who made this update (see the module's docstring)."""
    return {STAMP: f"{new_id()}|{action}|{principal.user_id or SYSTEM_ACTOR}"}


def read_stamp(value: Any) -> tuple[str | None, str | None]:
    """(action, user id) of a stamp; (None, None) for none."""
    if not isinstance(value, str) or value.count("|") < 2:
        return None, None
    _, action, by = value.split("|", 2)
    return action, by


def stamp_pipeline(principal: Principal, action: str) -> dict[str, Any]:
    """``actor_stamp`` as a pipeline stage (literal: a user id may start with ``$``)."""
    return {"$set": {STAMP: {"$literal": actor_stamp(principal, action)[STAMP]}}}


def delete_stamp(principal: Principal) -> list[dict[str, Any]]:
    """The update before a delete: its stamp, and the job's admins beside it."""
    return [{"$set": {STAMP: {"$literal": actor_stamp(principal, DELETE_ACTION)[STAMP]},
                      DELETING_ADMINS: {"$ifNull": ["$access_control.admin_access", []]}}}]


def stamped(update: dict[str, Any] | list[dict[str, Any]], principal: Principal,
            action: str) -> dict[str, Any] | list[dict[str, Any]]:
    """``update`` that also stamps its actor."""
    if isinstance(update, list):
        return [*update, stamp_pipeline(principal, action)]
    return {**update, "$set": {**update.get("$set", {}), **actor_stamp(principal, action)}}


def decode_history_cursor(cursor: str) -> int:
    """An entry's ``seq``: plain ASCII digits within BSON's 64-bit integers (a forged
    wider one would fail in the driver, not as a bad cursor)."""
    try:
        text = base64.urlsafe_b64decode((cursor + "=" * (-len(cursor) % 4)).encode())
        if not text.isdigit() or len(text) > 19 or int(text) >= 2**63:
            raise ValueError
        return int(text)
    except (ValueError, binascii.Error, UnicodeDecodeError):
        raise ValidationError("after", "is not a valid cursor") from None


AFTER_PAGE = 1000
"""Entries a subscription catching up reads at a time (``JobHistory.after``)."""


def sequence(cluster_time: Any, wall: datetime) -> int:
    """An entry's order: the change's cluster time (oplog order), else its wall time."""
    if isinstance(cluster_time, Timestamp):
        return (cluster_time.time << 32) | cluster_time.inc
    return int(wall.timestamp() * 1000) << 22


def jsonable(value: Any) -> Any:
    if isinstance(value, datetime):
        return (value if value.tzinfo else value.replace(tzinfo=UTC)).isoformat()
    if isinstance(value, dict):
        return {str(key): jsonable(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [jsonable(item) for item in value]
    if value is None or isinstance(value, bool | int | float | str):
        return value
    return str(value)


def _top(path: str) -> str:
    return path.split(".", 1)[0]


def classify(changed: dict[str, Any], action: str | None) -> JobHistoryKind:
    tops = {_top(path) for path in changed}
    status = changed.get("status")
    if status == "PROCESSING":
        return JobHistoryKind.CLAIMED
    if status == "COMPLETED":
        return JobHistoryKind.COMPLETED
    if status == "FAILED":
        return JobHistoryKind.FAILED
    if status == "PENDING":
        return JobHistoryKind.RETRIED if action == "retry" else JobHistoryKind.REQUEUED
    if "cancel_requested" in tops and changed.get("cancel_requested") is not None:
        return JobHistoryKind.CANCEL_REQUESTED
    if "access_control" in tops:
        return JobHistoryKind.ACCESS_CHANGED
    if "progress" in tops:
        return JobHistoryKind.PROGRESS
    if "priority" in tops:
        return JobHistoryKind.PRIORITY_CHANGED
    return JobHistoryKind.UPDATED


def _admin_access(document: dict[str, Any]) -> tuple[str, ...]:
    return tuple((document.get("access_control") or {}).get("admin_access") or ())


def _changed(update: dict[str, Any]) -> dict[str, Any]:
    """What an update event wrote, by path (a removed field is None)."""
    description = update.get("updateDescription") or {}
    changed = dict(description.get("updatedFields") or {})
    for path in description.get("removedFields") or ():
        changed[path] = None
    return changed


def _makes_an_entry(update: dict[str, Any]) -> bool:
    """Whether an update event stands for an entry (``entries_of``), or is a delete's
    stamp, whose admins may come from the job."""
    if update.get("operationType") != "update":
        return False
    changed = _changed(update)
    return (any(_top(path) not in BOOKKEEPING for path in changed)
            or read_stamp(changed.get(STAMP))[0] == DELETE_ACTION)


def _admins_set_by(event: dict[str, Any]) -> tuple[str, ...] | None:
    """The admins a job's change event shows it to have from then on; None when it shows
    none (most updates)."""
    if event.get("operationType") in ("insert", "replace"):
        return _admin_access(event.get("fullDocument") or {})
    changed = (event.get("updateDescription") or {}).get("updatedFields") or {}
    if DELETING_ADMINS in changed:
        return tuple(changed[DELETING_ADMINS] or ())
    if "access_control.admin_access" in changed:
        return tuple(changed["access_control.admin_access"] or ())
    if isinstance(changed.get("access_control"), dict):
        return _admin_access(changed)
    return None


class HistoryRepository:
    def __init__(self, collection: Collection, retention_days: float = 30.0) -> None:
        self.collection = collection
        self.pending_deletes = collection.database["job_history_deletes"]
        self.retention = timedelta(days=retention_days)

    async def ensure_indexes(self) -> None:
        await self.collection.create_indexes(INDEXES)
        await self.pending_deletes.create_indexes(
            [IndexModel([("expires_at", ASCENDING)], name="expires_ttl",
                        expireAfterSeconds=0)])

    # -- from change events to entries ----------------------------------------

    async def admins_of(self, events: list[dict[str, Any]]) -> dict[str, tuple[str, ...]]:
        """The admins of the jobs whose updates in ``events`` make an entry, read once for
        the batch (events carry no whole document): as they are now, who may follow the
        entries from here on. None read for a batch of bookkeeping alone (log appends,
        heartbeats: most of a long-running job's updates)."""
        ids = {(event.get("documentKey") or {}).get("_id") for event in events
               if _makes_an_entry(event)} - {None}
        if not ids:
            return {}
        docs = self.collection.database["jobs"].find(
            {"_id": {"$in": list(ids)}}, projection={"access_control.admin_access": 1},
            comment=WRITER_COMMENT)
        admins = {doc["_id"]: _admin_access(doc) async for doc in docs}
        gone = ids - admins.keys()
        if gone:  # deleted since: its last admins, not none (their followers lost entries)
            admins.update(await self._last_admins(events, gone))
        return admins

    async def _last_admins(self, events: list[dict[str, Any]], gone: set[Any]
                           ) -> dict[str, tuple[str, ...]]:
        """The admins of deleted jobs as they were last known: from this batch (the last
        of its creation, its access changes and its delete's stamp), else from their
        newest entry."""
        found: dict[str, tuple[str, ...]] = {}
        for event in events:  # in order: the last one known wins
            job_id = (event.get("documentKey") or {}).get("_id")
            if not isinstance(job_id, str) or job_id not in gone:
                continue
            admins = _admins_set_by(event)
            if admins is not None:
                found[job_id] = admins
        left = list(gone - found.keys())
        if left:
            newest = await self.collection.aggregate([
                {"$match": {"job_id": {"$in": left}}}, {"$sort": {"job_id": 1, "seq": -1}},
                {"$group": {"_id": "$job_id", "admins": {"$first": "$admins"}}}],
                comment=WRITER_COMMENT)
            found.update({doc["_id"]: tuple(doc.get("admins") or ()) async for doc in newest})
        return found

    async def entries_of(self, event: dict[str, Any],
                         admins_of: dict[str, tuple[str, ...]] | None = None,
                         ) -> list[dict[str, Any]]:
        """The entry (none, or one) a raw change event of ``jobs`` stands for; an update's
        admins come from ``admins_of`` (``admins_of`` of its batch)."""
        operation = event.get("operationType")
        job_id = (event.get("documentKey") or {}).get("_id")
        if job_id is None:
            return []
        wall = event.get("wallTime") or utcnow()
        if wall.tzinfo is None:
            wall = wall.replace(tzinfo=UTC)
        seq = sequence(event.get("clusterTime"), wall)
        document = event.get("fullDocument") or {}
        admins = _admin_access(document)
        if operation == "update":
            admins = (admins_of or {}).get(job_id, ())
        if operation in ("insert", "replace"):
            changed = {name: document.get(name) for name in CREATED_FIELDS}
            kind = JobHistoryKind.CREATED if operation == "insert" else JobHistoryKind.UPDATED
            by = read_stamp(document.get(STAMP))[1] or document.get("owner") or SYSTEM_ACTOR
        elif operation == "update":
            changed = _changed(event)
            action, stamped_by = read_stamp(changed.get(STAMP))
            if action == DELETE_ACTION:  # the stamp before a delete: keep it for the delete
                admins = tuple(changed.get(DELETING_ADMINS) or admins)
                await self.pending_deletes.update_one(
                    {"_id": job_id}, {"$set": {
                        "by": stamped_by, "admins": list(admins),
                        "expires_at": utcnow() + timedelta(days=PENDING_DELETE_DAYS)}},
                    upsert=True)
                return []
            changed = {path: value for path, value in changed.items()
                       if _top(path) not in BOOKKEEPING}
            if not changed:
                return []
            kind = classify(changed, action)
            by = stamped_by or (
                changed.get("claimed_by") if kind is JobHistoryKind.CLAIMED else None
            ) or SYSTEM_ACTOR
        elif operation == "delete":
            pending = await self.pending_deletes.find_one_and_delete({"_id": job_id})
            kind, changed = JobHistoryKind.DELETED, {}
            by = (pending or {}).get("by") or SYSTEM_ACTOR
            admins = tuple((pending or {}).get("admins") or ())
        else:
            return []
        status = changed.get("status")  # only when this change set it: exact
        return [{
            "_id": f"{job_id}:{seq}", "job_id": job_id, "seq": seq, "at": wall, "by": by,
            "kind": kind.value, "status": status, "changes": jsonable(changed),
            "admins": list(admins), "expires_at": wall + self.retention,
        }]

    async def write(self, entries: list[dict[str, Any]]) -> int:
        """Insert ``entries``, each once: a replayed change finds its entry there."""
        if not entries:
            return 0
        try:
            result = await self.collection.insert_many(entries, ordered=False)
            return len(result.inserted_ids)
        except BulkWriteError as exc:
            errors = exc.details.get("writeErrors") or []
            if any(error.get("code") != 11000 for error in errors):
                raise
            inserted: int = exc.details.get("nInserted", 0)
            return inserted

    # -- reads ----------------------------------------------------------------

    async def page(self, job_id: str, first: int, after: str | None
                   ) -> tuple[list[HistoryEntry], bool]:
        """Newest first; ``after`` a cursor of the previous page's last entry."""
        query: dict[str, Any] = {"job_id": job_id}
        if after is not None:
            query["seq"] = {"$lt": decode_history_cursor(after)}
        docs = await self.collection.find(query, sort=[("seq", DESCENDING)],
                                          limit=first + 1).to_list()
        return [entry_from_document(doc) for doc in docs[:first]], len(docs) > first

    async def count(self, job_id: str) -> int:
        return await self.collection.count_documents({"job_id": job_id})

    async def after(self, job_id: str, seq: int) -> AsyncIterator[HistoryEntry]:
        """Every entry newer than ``seq``, oldest first (a subscription's catching up),
        read AFTER_PAGE at a time: more than a page may be behind, and a whole history
        must not be held at once."""
        while True:
            docs = await self.collection.find(
                {"job_id": job_id, "seq": {"$gt": seq}}, sort=[("seq", ASCENDING)],
                limit=AFTER_PAGE).to_list()
            for doc in docs:
                entry = entry_from_document(doc)
                seq = entry.seq
                yield entry
            if len(docs) < AFTER_PAGE:
                return


def entry_from_document(doc: dict[str, Any]) -> HistoryEntry:
    at = doc["at"]
    return HistoryEntry(entry_id=doc["_id"], job_id=doc["job_id"], seq=doc["seq"],
                        at=at if at.tzinfo else at.replace(tzinfo=UTC), by=doc["by"],
                        kind=JobHistoryKind(doc["kind"]), status=doc.get("status"),
                        changes=doc.get("changes") or {}, admins=tuple(doc.get("admins") or ()))
