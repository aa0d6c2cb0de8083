"""What a subscriber hears of the changes the hub hands it.

The rules of each subscription, without GraphQL: access is checked on every event
(an object the subscriber may no longer read looks exactly like a deleted one), states
are ordered by ``version`` so nothing is sent twice, and a batch's status and counts are
derived again from its jobs whenever something changes.

The rules of one event are a follower's ``step``; ``follow`` applies them to each change
as the subscription's own generator waits for it, and a parked subscription
(``parking.py``) has the same ``step`` applied for it by its transport, so the two ways
cannot differ.
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
from .parking import Follower, Parked, Parking

T = TypeVar("T")


async def follow(changes: Subscriber, follower: Follower, parking: Parking | None = None
                 ) -> AsyncIterator[Any]:
    """Each payload ``follower`` makes of the changes, until one of them ends it.

    With a ``parking`` that accepts it, the subscription is handed over (``Parked`` is
    raised) as soon as it would wait with nothing pending: every change before that one
    went through here, every later one goes through the same ``step`` for it."""
    while True:
        if (parking is not None and not changes.pending and changes.error is None
                and changes.window is None and parking.can_park()):
            raise Parked(parking, changes, follower)
        payload = follower.step(await changes.next())
        if payload is not None:
            yield payload


class NewerStates:
    """One object's state after each change newer than ``version``; NOT_FOUND once it is
    deleted or the subscriber may no longer read it (looking exactly like a missing
    object). The state is the change's model, the same object for every subscriber."""

    __slots__ = ("claimable", "decode", "kind", "object_id", "principal", "version")

    def __init__(self, version: int, principal: Principal,
                 decode: Callable[[dict[str, Any]], Any], *, kind: str, object_id: str,
                 claimable: bool = False) -> None:
        self.version = version
        self.principal = principal
        self.decode = decode
        self.kind = kind
        self.object_id = object_id
        self.claimable = claimable

    def step(self, change: Change) -> Any:
        document = change.document
        if change.operation == "delete" or document is None:
            raise NotFoundError(f"{self.kind} {self.object_id!r} not found")
        if not newer(document, self.version):
            return None
        if not readable_document(self.principal, document, claimable=self.claimable):
            raise NotFoundError(f"{self.kind} {self.object_id!r} not found")
        current = change.model(self.decode)
        self.version = current.version
        return current


def newer(document: dict[str, Any], version: int) -> bool:
    """Whether ``document`` is a state after ``version``. One that is not is old news,
    whoever could read it then, and is skipped before its access is looked at: another
    process's writes from just before a subscription began can reach it after its current
    state (see ``Subscriber.since``), and the job's creation, before a worker claimed it,
    ended the worker's subscription as NOT_FOUND."""
    return int(document.get("version", 0)) > version


def newer_states(changes: Subscriber, version: int, principal: Principal,
                 decode: Callable[[dict[str, Any]], T], *, kind: str, object_id: str,
                 claimable: bool = False, parking: Parking | None = None
                 ) -> AsyncIterator[T]:
    """``NewerStates`` of the changes (see ``follow``)."""
    return follow(changes, NewerStates(version, principal, decode, kind=kind,
                                       object_id=object_id, claimable=claimable), parking)


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
    sent = versions.get(job_id)
    if sent is not None and change.document is not None and not newer(change.document, sent):
        return None  # that state was sent as CURRENT, or a later one
    if change.operation == "delete" or not readable_document(
            principal, change.document, claimable=True):
        sent_as_current = versions.pop(job_id, None) is not None
        could_read = (sent_as_current if change.previous is None
                      else readable_document(principal, change.previous, claimable=True))
        return ("DELETED", job_id, None) if could_read else None
    job = change.model(job_from_document)
    versions.pop(job_id, None)  # past the state sent as CURRENT: every change is news now
    return ("CREATED" if change.operation == "insert" else "UPDATED"), job_id, job


class JobEvents:
    """``job_event`` as a follower: ``make(change, kind, job_id, job)`` turns an event into
    the payload (the schema's ``JobEvent``; the same object for every subscriber that
    hears the same event of the same change). ``before_told``: see ``hidden_by_then``."""

    __slots__ = ("before_told", "make", "principal", "versions")

    def __init__(self, principal: Principal, versions: dict[str, int],
                 make: Callable[[Change, str, str, SecretaryJob | None], Any],
                 before_told: dict[Any, Change] | None = None) -> None:
        self.principal = principal
        self.versions = versions
        self.make = make
        self.before_told = before_told

    def step(self, change: Change) -> Any:
        if self.before_told and hidden_by_then(self.principal, change, self.versions,
                                               self.before_told):
            return None
        event = job_event(self.principal, change, self.versions)
        return None if event is None else self.make(change, *event)


def hidden_by_then(principal: Principal, change: Change, versions: dict[str, int],
                   before_told: dict[Any, Change]) -> bool:
    """Whether ``change`` is of a job the subscriber was never sent, at or before its last
    state written before it came (``Subscriber.before_told``), which it may not read.

    A subscriber is sent what the stream reads after it came, as it cannot tell writes
    made just before (which a quiet or lagging stream reads late) from the ones made just
    after (which must not be lost); a reader whose access was taken through another
    process then was sent the job's earlier states, then DELETED. Of a job it may no
    longer read by then, and was never sent, it now hears nothing of that time; later
    changes are news as ever. (A document's changes are in the order they were made: a
    hole in the oplog, a write visible late, is between different documents.)"""
    key = (change.collection, change.object_id)
    last = before_told.get(key)
    if last is None:
        return False
    sent = str(change.object_id) in versions
    if last is change or sent:
        # (held no longer than its queue); a job it was sent as CURRENT is its from then
        # on: an update that goes out takes it from ``versions``, and the change that
        # took its access must still come as DELETED
        del before_told[key]
    return not sent and bool(
        last.cluster_time is not None and change.cluster_time is not None
        and change.cluster_time <= last.cluster_time
        and (last.document is None  # (deleted)
             or not readable_document(principal, last.document, claimable=True)))


async def batch_states(changes: Subscriber, store: Store, principal: Principal,
                       batch: BatchJob) -> AsyncIterator[BatchJob]:
    """The batch again whenever it or one of its jobs changes what a reader sees."""
    batch_id = batch.batch_id
    last = _signature(batch)
    async for change in changes:
        if change.collection == "batches" and (
                change.document is None or newer(change.document, batch.version)):
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
