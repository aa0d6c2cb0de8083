"""What a subscriber hears of the changes the hub hands it.

The rules of each subscription, without GraphQL: access is checked on every event
(an object the subscriber may no longer read looks exactly like a deleted one), states
are ordered by ``version`` so nothing is sent twice, and a batch's status and counts are
derived again from its jobs whenever something changes.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from typing import Any, TypeVar

from repository.access import Principal, readable_document
from repository.batches import batch_from_document
from repository.changes import Change
from repository.database import Store
from repository.errors import NotFoundError
from repository.job_documents import job_from_document
from repository.models import BatchJob, SecretaryJob

from .hub import Subscriber

T = TypeVar("T")


async def newer_states(changes: Subscriber, version: int, principal: Principal,
                       decode: Callable[[dict[str, Any]], T], *, kind: str, object_id: str,
                       claimable: bool = False) -> AsyncIterator[T]:
    """The object after each change newer than ``version``; NOT_FOUND once it is deleted or
    the subscriber may no longer read it (looking exactly like a missing object)."""
    async for change in changes:
        if change.operation == "delete" or not readable_document(
                principal, change.document, claimable=claimable):
            raise NotFoundError(f"{kind} {object_id!r} not found")
        current = change.model(decode)
        if current.version > version:  # type: ignore[attr-defined]
            version = current.version  # type: ignore[attr-defined]
            yield current


def job_event(principal: Principal, change: Change, versions: dict[str, int]
              ) -> tuple[str, str, SecretaryJob | None] | None:
    """What a filtered job subscription reports of ``change``: (kind, job id, job), kind
    being CREATED, UPDATED or DELETED; None when it reports nothing. ``versions`` holds the
    jobs first sent as CURRENT, and the versions they were sent at.

    A job the subscriber may no longer read looks exactly like a deleted one: DELETED with
    no data, at the change that took the access, and nothing after (not its deletion), so
    a client drops it from its list without learning anything it may not read. Only a job
    the subscriber could read before the change is reported (when this process does not
    know that state, a job it was sent as CURRENT)."""
    job_id = str(change.object_id)
    if change.operation == "delete" or not readable_document(
            principal, change.document, claimable=True):
        sent_as_current = versions.pop(job_id, None) is not None
        could_read = (sent_as_current if change.previous is None
                      else readable_document(principal, change.previous, claimable=True))
        return ("DELETED", job_id, None) if could_read else None
    job = change.model(job_from_document)
    if job_id in versions:  # sent as CURRENT: skip changes that state already held
        if job.version <= versions[job_id]:
            return None
        del versions[job_id]
    return ("CREATED" if change.operation == "insert" else "UPDATED"), job_id, job


async def batch_states(changes: Subscriber, store: Store, principal: Principal,
                       batch: BatchJob) -> AsyncIterator[BatchJob]:
    """The batch again whenever it or one of its jobs changes what a reader sees."""
    batch_id = batch.batch_id
    last = _signature(batch)
    async for change in changes:
        if change.collection == "batches":
            if change.operation == "delete" or not readable_document(principal, change.document):
                raise NotFoundError(f"batch {batch_id!r} not found")
            batch = batch_from_document(change.document)  # type: ignore[arg-type]
        batch.counts = (await store.batches.counts([batch_id]))[batch_id]
        batch.status = batch.counts.status()
        signature = _signature(batch)
        if signature != last:
            last = signature
            yield batch


def _signature(batch: BatchJob) -> tuple[Any, ...]:
    counts = batch.counts
    assert counts is not None, "a followed batch always has its counts"
    return (batch.version, counts.pending, counts.processing, counts.completed, counts.failed,
            counts.cancelled)
