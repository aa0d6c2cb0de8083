"""The history writer: turns every change of a job into a history entry, in one process at
a time (a lease in ``history_feed``; every API process stands by to take over).

Like the webhook outbox (``graph/loops/outbox.py``) it reads the change stream and saves
its resume token only after the entries of every change up to it are written, so a crash
anywhere (in the process that changed the job, or in this writer) loses no acknowledged
change while the saved position is still in the oplog; entries derive their ids from
their change, so a replay stores each once. See ``repository.job_history``.
"""

from __future__ import annotations

import logging
import time
from typing import Any

from graph.loops.feed_writer import FeedWriter
from repository.changes import (
    HISTORY_LOST_CODES,
    MORE_BEHIND,
    NO_CHANGE_STREAMS_CODES,
    buffered,
    lagging,
)
from repository.database import CommandError, Store
from repository.job_history import BOOKKEEPING, CREATED_FIELDS, STAMP

logger = logging.getLogger("jobgraph.history")

BATCH = 200
"""Changes read before their entries are written and the position is saved."""


def _pipeline() -> list[dict[str, Any]]:
    """The stream's stages: only what ``HistoryRepository.entries_of`` reads.

    A job's document is large (parameters, results, its log) and most of an update's
    fields are bookkeeping no entry shows, so the server drops them before sending: an
    inserted document keeps only the fields an entry names, and ``updateDescription``
    only the paths whose first segment is not BOOKKEEPING (the stamp excepted, which says
    who). Decoding what was dropped was most of this writer's CPU per change."""
    skipped = sorted(BOOKKEEPING - {STAMP})

    def kept(path: str) -> dict[str, Any]:
        return {"$not": [{"$in": [{"$arrayElemAt": [{"$split": [path, "."]}, 0]}, skipped]}]}

    description = "$updateDescription"
    document = ["access_control.admin_access", STAMP, "owner", *CREATED_FIELDS]
    return [
        {"$match": {"ns.coll": "jobs",
                    "operationType": {"$in": ["insert", "update", "replace", "delete"]}}},
        {"$project": {
            "operationType": 1, "documentKey": 1, "clusterTime": 1, "wallTime": 1,
            **{f"fullDocument.{name}": 1 for name in document},
            "updateDescription.updatedFields": {"$arrayToObject": {"$filter": {
                "input": {"$objectToArray": {"$ifNull": [f"{description}.updatedFields", {}]}},
                "cond": kept("$$this.k")}}},
            "updateDescription.removedFields": {"$filter": {
                "input": {"$ifNull": [f"{description}.removedFields", []]},
                "cond": kept("$$this")}},
        }},
    ]


PIPELINE = _pipeline()
"""No lookup of the whole job (``updateLookup``): an insert carries its document, an
update's entry needs only what it changed, and a log append must cost no process the
job's log (``repository.changes``)."""


class HistoryWriter(FeedWriter):
    what = "history writer"
    task_name = "jobgraph-history"

    def __init__(self, store: Store, *, lease_seconds: float = 30.0,
                 poll_seconds: float = 0.5, holder: str | None = None) -> None:
        super().__init__(store, store.history_feed, logger, lease_seconds=lease_seconds,
                         poll_seconds=poll_seconds, holder=holder)
        self._acquired_at = 0.0
        self._left_more = False

    def pause_after(self, busy: bool) -> float:
        """``poll_seconds`` after every round, busy or not, so a round (three round trips:
        getMore, the admins' find, the insert) writes that much of the flow at once and
        an entry lags its change by at most that; none after a round that may have left
        more behind (MORE_BEHIND changes or more, or changes older than LAGGING_SECONDS: a
        burst or a backlog is read at the database's pace, not a reply per poll)."""
        return 0.0 if self._left_more else self.poll_seconds

    async def step(self) -> bool:
        """One round: hold the lease, read what changed, write its entries, save the
        position. False when there was nothing to do."""
        self._left_more = False
        if (self._stream is None or not self.leading or (
                time.monotonic() - self._acquired_at > self.lease_seconds / 3)
                ) and not await self.open():
            # renewed a third of a lease at a time, not per round: under a steady flow of
            # changes a round is a change or two, and the lease's round trip doubled it
            # (saving the position checks the lease too, so a lost one still stops us)
            return False
        # one getMore's worth a round; the next round gathers (see pause_after)
        changes = await self._read(BATCH, one_round_trip=True)
        self._left_more = bool(changes) and (
            len(changes) >= MORE_BEHIND or bool(buffered(self._stream))
            or lagging(changes[-1].get("wallTime")))
        entries: list[dict[str, Any]] = []
        admins = await self.store.history.admins_of(changes)
        for change in changes:  # in order: a delete's stamp is kept before its delete
            entries += await self.store.history.entries_of(change, admins)
        self.written += await self.store.history.write(entries)
        if not await self._save_position(bool(changes)):
            return False
        return bool(changes)

    async def open(self) -> bool:
        """Take or renew the lease and, holding it, have the stream open; False when
        another process holds it. Reads nothing: at start-up this fixes the position the
        changes are recorded from without waiting, as a first ``step`` did, up to
        ``poll_seconds`` for a change (half a second of every start)."""
        started = time.monotonic()
        state = await self.store.history_feed.acquire(self.holder, self.lease_seconds)
        if state is None:
            self.leading = False
            await self._close()
            return False
        self.leading = True
        self._acquired_at = started
        if self._stream is None:
            await self._open(state)
        return True

    async def _open(self, state: dict[str, Any]) -> None:
        """Resume from the saved position (the first writer starts now)."""
        options: dict[str, Any] = {"max_await_time_ms": int(self.poll_seconds * 1000)}
        token = state.get("resume_token")
        if token is not None and not self._from_now:
            options["resume_after"] = token
        self._from_now = False
        try:
            self._stream = await self.store.db.watch(PIPELINE, **options)
        except CommandError as exc:
            if exc.code in NO_CHANGE_STREAMS_CODES:
                if not self._unsupported:
                    logger.error("job history is not recorded: this MongoDB is a standalone "
                                 "server without change streams; run it as a replica set")
                self._unsupported = True
            elif exc.code in HISTORY_LOST_CODES or "resume" in str(exc).lower():
                logger.error("the history writer's saved position is no longer in the "
                             "oplog; changes since then have no history: %s", exc)
                self._from_now = True
            raise
        if self._unsupported:
            logger.info("change streams are available: job history is recorded")
        self._unsupported = False
