"""What the history writer and the webhook outbox writer share: a loop that reads the
change stream in one process at a time (a lease in a feed document; every API process
stands by to take over) and saves its position only after what it read is written, so a
crash anywhere loses no acknowledged change while that position is still in the oplog."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import socket
import time
import uuid
from typing import Any

from graph.support import tasks
from repository.changes import buffered, position
from repository.database import DatabaseError, Store

UNSUPPORTED_RETRY_SECONDS = 60.0
"""A standalone MongoDB has no change streams: look again this rarely (and quietly)."""
SAVE_SECONDS = 1.0
"""While changes flow, the position is saved at most this often (and on stop), not after
every round: a round trip a round was a quarter of the history writer's CPU. What a crash
loses is only the position: the next writer writes those changes' entries (or
deliveries) again, each kept once."""


class FeedWriter:
    """Subclasses give ``step`` (one round: ``True`` when it found changes) and open
    ``self._stream``; ``what`` names the writer in logs."""

    what = "feed writer"
    task_name = "jobgraph-feed"

    def __init__(self, store: Store, feed: Any, logger: logging.Logger, *,
                 lease_seconds: float, poll_seconds: float, holder: str | None) -> None:
        self.store = store
        self.feed = feed
        self.logger = logger
        self.lease_seconds = lease_seconds
        self.poll_seconds = poll_seconds
        self.holder = holder or f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"
        self.written = 0
        self.leading = False
        self._stream: Any = None
        self._unsupported = False
        self._from_now = False
        self._saved_at = 0.0
        self._unsaved: Any = None
        """The position after the last round written, while not saved yet."""
        self._task: asyncio.Task[None] | None = None

    async def step(self) -> bool:
        raise NotImplementedError

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name=self.task_name)

    async def stop(self) -> None:
        task, self._task = self._task, None
        if task is not None:
            await tasks.stop([task])
        if self.leading and self._unsaved is not None:  # (not the stream's: a round cut
            with contextlib.suppress(DatabaseError):    # short read past what it wrote)
                await self._save(self._unsaved)
        await self._close()
        if self.leading:
            with contextlib.suppress(DatabaseError):
                await self.feed.release(self.holder)
            self.leading = False

    def pause_after(self, busy: bool) -> float:
        """Seconds to wait after a round (``busy``: it found changes)."""
        return 0.0 if busy else self.poll_seconds

    async def _run(self) -> None:
        while True:
            try:
                pause = self.pause_after(await self.step())
                if pause:
                    await asyncio.sleep(pause)
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                tasks.reraise_if_cancelled(exc)
                if not self._unsupported:
                    level = logging.WARNING if isinstance(exc, DatabaseError) else logging.ERROR
                    self.logger.log(
                        level, "%s interrupted, resuming: %s", self.what,
                        str(exc).splitlines()[0] if str(exc) else type(exc).__name__,
                        exc_info=level == logging.ERROR)
                await self._close()
                await asyncio.sleep(UNSUPPORTED_RETRY_SECONDS if self._unsupported
                                    else self.poll_seconds)

    async def _save_position(self, found_changes: bool) -> bool:
        """Save the stream's position after a round whose changes are written: at most
        every SAVE_SECONDS while changes flow (the rest on stop), at least every third of
        a lease (to keep it fresh); False when the lease was lost meanwhile (the writer
        stands down)."""
        token = position(self._stream)
        if token is None:
            return True
        if found_changes:
            self._unsaved = token
        since = time.monotonic() - self._saved_at
        if not ((self._unsaved is not None and since >= SAVE_SECONDS)
                or since > self.lease_seconds / 3):
            return True
        return await self._save(token)

    async def _save(self, token: Any) -> bool:
        if not await self.feed.save_token(self.holder, token):
            self.logger.warning("lost the %s's lease; another process goes on", self.what)
            self.leading = False
            await self._close()
            return False
        self._saved_at = time.monotonic()
        self._unsaved = None
        return True

    async def _read(self, batch: int, *, one_round_trip: bool = False) -> list[dict[str, Any]]:
        """Up to ``batch`` changes that are there now (``one_round_trip``: no more than one
        getMore brings)."""
        changes: list[dict[str, Any]] = []
        while len(changes) < batch:
            if one_round_trip and changes and buffered(self._stream) == 0:
                break
            change = await self._stream.try_next()
            if change is None:
                break
            changes.append(change)
        return changes

    async def _close(self) -> None:
        # a stream opens again from the saved position; an unsaved one, kept past a lost
        # or given-up lease, could move the saved position back on stop (the outbox would
        # then deliver to a webhook changes from before it existed)
        self._unsaved = None
        stream, self._stream = self._stream, None
        if stream is not None:
            with contextlib.suppress(DatabaseError):
                await stream.close()
