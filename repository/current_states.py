"""A job's current state for many subscribers at once: one read for a burst of them.

Every subscription registers for changes BEFORE it reads the current state, so that no
change falls in between. When thousands of clients subscribe to one job together (they
reconnect after a deploy), each of those reads is a database round trip returning the
same document. Here a read is not sent at once: it waits for the end of the event loop's
current pass, and every caller of the same job until then gets its answer. Each of them
called after registering, so a read that starts after all of them still comes after all
their registrations: nothing falls in between for any of them. A read that has started is
never joined (it may predate a later caller's registration).

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


class CurrentStates:
    """Jobs' current states without their logs, one read per job per burst of callers."""

    __slots__ = ("collection", "waiting")

    def __init__(self, collection: Collection) -> None:
        self.collection = collection
        self.waiting: dict[str, asyncio.Future[tuple[dict[str, Any] | None, Any]]] = {}
        """Reads not yet sent, by job id: joined by whoever asks for the job before."""

    async def get(self, principal: Principal, job_id: str) -> SecretaryJob:
        """The job as ``get_without_logs`` reads it (NOT_FOUND when it is missing or the
        caller may not read it); the model is the same object for every caller of one
        read (models are not changed in place)."""
        read = self.waiting.get(job_id)
        if read is None:
            read = self.waiting[job_id] = asyncio.get_running_loop().create_future()
            asyncio.get_running_loop().call_soon(self._start, job_id, read)
        # shielded: one caller giving up does not cancel the read for the others
        doc, model = await asyncio.shield(read)
        if doc is None or not readable_document(principal, doc, claimable=True):
            raise NotFoundError(f"job {job_id!r} not found")
        return model  # type: ignore[no-any-return]

    def _start(self, job_id: str, read: asyncio.Future[Any]) -> None:
        if self.waiting.get(job_id) is read:
            del self.waiting[job_id]  # from now on, later callers read again
        task = asyncio.ensure_future(self._read(job_id))
        task.add_done_callback(lambda done: _settle(read, done))

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
    else:
        read.set_result(done.result())
