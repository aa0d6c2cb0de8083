"""A job's current state for many subscribers at once: one read for a burst of them.

Every subscription registers for changes BEFORE it reads the current state, so that no
change falls in between. When thousands of clients subscribe to one job together (they
reconnect after a deploy), each of those reads is a database round trip returning the
same document. Here a read is not sent at once: it waits for the end of the event loop's
current pass, and every caller of the same job until then gets its answer. Each of them
called after registering, so a read that starts after all of them still comes after all
their registrations: nothing falls in between for any of them.

A read that has started may predate a later caller's registration, so it is joined only
where the caller shows (``Epochs``) that no change of the job reached the job's
subscribers from the moment the read started until now: any change the read does not
hold was made after the read started, so it reaches the subscribers after now, the
caller among them. (In a reconnect storm, the subscribers of one job then share a read
per database round trip instead of each sending its own.)

The document is read by id alone; who may read it is decided per caller, with the rule
the change stream's events are checked with (``readable_document``), so a caller who may
not read it gets NOT_FOUND, as a missing job.
"""

from __future__ import annotations

import asyncio
from typing import Any, Protocol

from .access import Principal, readable_document
from .errors import NotFoundError
from .job_documents import job_from_document
from .job_logs import WITHOUT_LOGS
from .models import SecretaryJob
from .mongo_types import Collection


class Epochs(Protocol):
    """Where a job's changes are handed to its subscribers (the hub)."""

    def job_epoch(self, job_id: str) -> int | None:
        """A number that changes whenever a change of the job is handed to its
        subscribers (None: it has none, nothing to compare)."""


Read = asyncio.Future[tuple[dict[str, Any] | None, Any]]


class CurrentStates:
    """Jobs' current states without their logs, one read per job per burst of callers."""

    __slots__ = ("collection", "sent", "waiting")

    def __init__(self, collection: Collection) -> None:
        self.collection = collection
        self.waiting: dict[str, Read] = {}
        """Reads not yet sent, by job id: joined by whoever asks for the job before."""
        self.sent: dict[str, tuple[Epochs, int, Read]] = {}
        """Reads in flight, by job id, with the job's epoch when each was sent."""

    async def get(self, principal: Principal, job_id: str,
                  epochs: Epochs | None = None) -> SecretaryJob:
        """The job as ``get_without_logs`` reads it (NOT_FOUND when it is missing or the
        caller may not read it); the model is the same object for every caller of one
        read (models are not changed in place). ``epochs``: the caller registered there
        for the job's changes before calling (a read in flight may then be joined)."""
        read = self.waiting.get(job_id)
        if read is None and epochs is not None:
            flight = self.sent.get(job_id)
            if (flight is not None and flight[0] is epochs
                    and epochs.job_epoch(job_id) == flight[1]):
                read = flight[2]
        if read is None:
            read = self.waiting[job_id] = asyncio.get_running_loop().create_future()
            asyncio.get_running_loop().call_soon(self._start, job_id, read, epochs)
        # shielded: one caller giving up does not cancel the read for the others
        doc, model = await asyncio.shield(read)
        if doc is None or not readable_document(principal, doc, claimable=True):
            raise NotFoundError(f"job {job_id!r} not found")
        return model  # type: ignore[no-any-return]

    def _start(self, job_id: str, read: Read, epochs: Epochs | None) -> None:
        if self.waiting.get(job_id) is read:
            del self.waiting[job_id]  # from now on, later callers read again
        epoch = epochs.job_epoch(job_id) if epochs is not None else None
        if epochs is not None and epoch is not None:  # unless the epoch moves on
            self.sent[job_id] = (epochs, epoch, read)
        task = asyncio.ensure_future(self._read(job_id))
        task.add_done_callback(lambda done: self._settle(job_id, read, done))

    def _settle(self, job_id: str, read: Read, done: asyncio.Task[Any]) -> None:
        flight = self.sent.get(job_id)
        if flight is not None and flight[2] is read:
            del self.sent[job_id]
        _settle(read, done)

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
