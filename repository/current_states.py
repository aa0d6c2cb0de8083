"""A job's current state for many subscribers at once: one read for a burst of them.

Every subscription registers for changes BEFORE it reads the current state, so that no
change falls in between. When thousands of clients subscribe to one job together (they
reconnect after a deploy), each of those reads is a database round trip returning the
same document. Here a read is not sent at once: it waits for the end of the event loop's
current pass, and every caller of the same job until then gets its answer; and while a
read of the job is in flight, the callers who come meanwhile wait for it to end and then
share the next one. Each read starts after every caller it answers has called (and so
registered): nothing falls in between for any of them, and nobody gets a state older than
their own call (a reader whose access was taken before they asked gets NOT_FOUND, never
the state from before). A read already sent is never joined. In a reconnect storm one
job's subscribers thus share a read per round trip instead of sending one each.

The document is read by id alone; who may read it is decided per caller, with the rule
the change stream's events are checked with (``readable_document``), so a caller who may
not read it gets NOT_FOUND, as a missing job.
"""

from __future__ import annotations

import asyncio
from typing import Any

from .access import Principal, readable_document
from .errors import NotFoundError
from .job_documents import job_from_document
from .job_logs import WITHOUT_LOGS
from .models import SecretaryJob
from .mongo_types import Collection

Read = asyncio.Future[tuple[dict[str, Any] | None, Any]]


class CurrentStates:
    """Jobs' current states without their logs, one read per job per burst of callers."""

    __slots__ = ("collection", "in_flight", "waiting")

    def __init__(self, collection: Collection) -> None:
        self.collection = collection
        self.waiting: dict[str, Read] = {}
        """Reads not yet sent, by job id: joined by whoever asks for the job before."""
        self.in_flight: set[str] = set()
        """Jobs with a read sent and not yet answered: the next read waits for its end."""

    async def get(self, principal: Principal, job_id: str) -> SecretaryJob:
        """The job as ``get_without_logs`` reads it (NOT_FOUND when it is missing or the
        caller may not read it); the model is the same object for every caller of one
        read (models are not changed in place)."""
        read = self.waiting.get(job_id)
        if read is None:
            read = self.waiting[job_id] = asyncio.get_running_loop().create_future()
            if job_id not in self.in_flight:  # else started when that one ends
                asyncio.get_running_loop().call_soon(self._start, job_id, read)
        # shielded: one caller giving up does not cancel the read for the others
        doc, model = await asyncio.shield(read)
        if doc is None or not readable_document(principal, doc, claimable=True):
            raise NotFoundError(f"job {job_id!r} not found")
        return model  # type: ignore[no-any-return]

    def _start(self, job_id: str, read: Read) -> None:
        if self.waiting.get(job_id) is read:
            del self.waiting[job_id]  # from now on, later callers wait for the next read
        self.in_flight.add(job_id)
        task = asyncio.ensure_future(self._read(job_id))
        task.add_done_callback(lambda done: self._ended(job_id, read, done))

    def _ended(self, job_id: str, read: Read, done: asyncio.Task[Any]) -> None:
        self.in_flight.discard(job_id)
        _settle(read, done)
        following = self.waiting.get(job_id)
        if following is not None:  # asked while this one was in flight
            asyncio.get_running_loop().call_soon(self._start, job_id, following)

    async def _read(self, job_id: str) -> tuple[dict[str, Any] | None, Any]:
        doc = await self.collection.find_one({"_id": job_id}, projection=WITHOUT_LOGS)
        return doc, None if doc is None else job_from_document(doc)


def _settle(read: asyncio.Future[Any], done: asyncio.Task[Any]) -> None:
    if read.done():
        return
    if done.cancelled():
        read.cancel()
    elif done.exception() is not None:
        read.set_exception(done.exception())  # type: ignore[arg-type]
        read.exception()  # heard, even when every caller has left (no "never retrieved")
    else:
        read.set_result(done.result())
