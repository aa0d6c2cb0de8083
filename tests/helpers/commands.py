"""Count the database commands a request sends (pymongo command monitoring), to test
what a request costs without timing it."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from pymongo import monitoring

from repository.changes import LOOKUP_COMMENT
from repository.job_history import WRITER_COMMENT
from tests.helpers.waiting import eventually

IGNORED = frozenset({"hello", "ismaster", "ping", "endsessions", "buildinfo", "saslstart",
                     "saslcontinue", "getnonce", "killcursors"})
HISTORY_COLLECTIONS = frozenset({"job_history", "history_feed", "job_history_deletes"})
"""The history writer's own (``graph/loops/history.py``), written in the background."""


@dataclass
class CommandCounter(monitoring.CommandListener):
    """Counts the commands sent to one database, by name; ``log`` keeps each command's
    name with a summary of its reply, in order.

    Left out: handshakes and pings, and the API's own change stream (its ``aggregate``,
    the ``getMore`` polls on its cursor and the lookups of documents it has no state
    of), which runs in the background, as does the history writer (its own collections,
    and its reads of jobs, marked ``WRITER_COMMENT``).
    """

    database: str
    counts: Counter[str] = field(default_factory=Counter)
    log: list[tuple[str, Any]] = field(default_factory=list)
    stream_requests: set[int] = field(default_factory=set)
    stream_cursors: set[int] = field(default_factory=set)
    counted: set[int] = field(default_factory=set)

    def clear(self) -> None:
        self.counts.clear()
        self.log.clear()

    def started(self, event: monitoring.CommandStartedEvent) -> None:
        name, command = event.command_name, event.command
        if event.database_name != self.database or name.lower() in IGNORED:
            return
        if name == "aggregate" and any("$changeStream" in stage
                                       for stage in command.get("pipeline", ())):
            self.stream_requests.add(event.request_id)
            return
        if name == "getMore" and command.get("getMore") in self.stream_cursors:
            return
        if command.get("comment") in (LOOKUP_COMMENT, WRITER_COMMENT):
            return
        if command.get(name) in HISTORY_COLLECTIONS:
            return
        self.counts[name] += 1
        self.counted.add(event.request_id)

    def succeeded(self, event: monitoring.CommandSucceededEvent) -> None:
        if event.request_id in self.stream_requests:
            self.stream_requests.discard(event.request_id)
            self.stream_cursors.add(event.reply.get("cursor", {}).get("id"))
        if event.request_id in self.counted:
            self.counted.discard(event.request_id)
            self.log.append((event.command_name, summary(event.reply)))

    def failed(self, event: monitoring.CommandFailedEvent) -> None:
        self.stream_requests.discard(event.request_id)
        if event.request_id in self.counted:
            self.counted.discard(event.request_id)
            self.log.append((event.command_name, "failed"))


def summary(reply: dict[str, Any]) -> Any:
    """What a reply says, without the parts that differ by id or time: how many documents
    a read returned, whether a write matched and what it returned."""
    if "cursor" in reply:
        return ("documents", len(reply["cursor"].get("firstBatch") or ()))
    if "lastErrorObject" in reply or "value" in reply:
        return ("matched", reply.get("lastErrorObject", {}).get("n"),
                reply.get("value") is not None)
    return ("n", reply.get("n"), reply.get("nModified"))


async def after_startup_sweep(app: Any) -> None:
    """Wait until the lease reaper of ``app`` ended its start-up sweep: with a long
    interval (and ``dispatcher=False``), no background loop sends a command after it,
    so a test counts only its own requests' commands."""
    await eventually(lambda: app.state.reaper.sweeps >= 1)
