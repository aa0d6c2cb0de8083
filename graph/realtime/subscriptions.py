"""Subscriptions. Each registers with the hub BEFORE reading the current state, yields
that state, then every later change (by ``version``), so nothing falls in between.
Access control is checked on every event: a subscriber who loses read access to an
object gets NOT_FOUND and hears nothing more of it."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncGenerator, AsyncIterator
from enum import Enum
from typing import Annotated, Any

import strawberry
from starlette.requests import Request

from repository.access import Principal, readable_document
from repository.batches import batch_from_document
from repository.changes import Change
from repository.documentation_jobs import documentation_job_from_document
from repository.errors import NotFoundError, ValidationError
from repository.jobs import JobFilter, job_from_document
from repository.models import BatchJob as BatchJobModel
from repository.models import JobStatus
from repository.models import SecretaryJob as SecretaryJobModel
from repository.pagination import PageRequest

from ..batches.types import BatchJob
from ..context import Info
from ..documentation_jobs.types import DocumentationJob
from ..jobs.types import LogEntry, SecretaryJob
from .hub import Subscriber, SubscriptionError, unavailable


def matches(job_filter: JobFilter, document: dict[str, Any] | None) -> bool:
    if document is None:
        return False
    return all((
        job_filter.status is None or document.get("status") == job_filter.status.value,
        job_filter.job_type is None or document.get("job_type") == job_filter.job_type,
        job_filter.batch_id is None or document.get("batch_id") == job_filter.batch_id,
    ))


def token_expired() -> SubscriptionError:
    return SubscriptionError("UNAUTHENTICATED",
                             "the bearer token expired; subscribe again with a fresh one")


def subscribe(info: Info, **interest: Any) -> ConnectionSubscription:
    """``async with subscribe(info, ...) as changes``: see ConnectionSubscription."""
    return ConnectionSubscription(info.context, interest)


class ConnectionSubscription:
    """Register with the hub, within this connection's subscription limit.

    Over HTTP (SSE, multipart) the subscription ends with UNAUTHENTICATED when the bearer
    token expires, as a WebSocket is closed with 4401 then (``graph/expiry.py``).

    A class, not an ``asynccontextmanager``: one lives as long as its subscription, and a
    generator-based one would keep a generator and its frame for each of thousands."""

    __slots__ = ("context", "interest", "subscriber", "timer")

    def __init__(self, context: Any, interest: dict[str, Any]) -> None:
        self.context = context
        self.interest = interest
        self.subscriber: Subscriber | None = None
        self.timer: asyncio.TimerHandle | None = None

    async def __aenter__(self) -> Subscriber:
        context = self.context
        if context.hub is None:
            raise unavailable("subscriptions are not available on this server")
        limit = context.settings.max_subscriptions_per_connection
        if context.open_subscriptions >= limit:
            raise SubscriptionError("TOO_MANY_SUBSCRIPTIONS",
                                    f"a connection may hold at most {limit} subscriptions")
        subscriber = await context.hub.subscribe(**self.interest).__aenter__()
        self.subscriber, self.interest = subscriber, {}
        context.open_subscriptions += 1
        if context.expires_at is not None and isinstance(context.request, Request):
            self.timer = asyncio.get_running_loop().call_later(
                max(0.0, context.expires_at - time.time()), subscriber.fail, token_expired())
        return subscriber

    async def __aexit__(self, *exc_info: object) -> None:
        if self.timer is not None:
            self.timer.cancel()
        if self.subscriber is not None:
            self.context.open_subscriptions -= 1
            await self.subscriber.__aexit__(*exc_info)


@strawberry.enum(description="What happened to a job in a filtered job subscription.")
class JobEventKind(Enum):
    CURRENT = "CURRENT"
    CREATED = "CREATED"
    UPDATED = "UPDATED"
    DELETED = "DELETED"


@strawberry.type(description="A job as it is now, and what just happened to it.")
class JobEvent:
    kind: JobEventKind = strawberry.field(
        description="CURRENT for the initial state, then CREATED, UPDATED or DELETED.")
    job_id: strawberry.ID = strawberry.field(description="The job's id.")
    job: SecretaryJob | None = strawberry.field(description="The job; null once DELETED.")


@strawberry.type(description="Log entries were dropped by the capped log before you read them.")
class LogGap:
    from_seq: int = strawberry.field(description="First missing sequence number.")
    to_seq: int = strawberry.field(description="Last missing sequence number.")


@strawberry.type(description="New log entries of a job, in sequence order.")
class JobLogBatch:
    job_id: strawberry.ID = strawberry.field(description="The job's id.")
    entries: list[LogEntry] = strawberry.field(description="Entries after the last one sent.")
    gap: LogGap | None = strawberry.field(
        description="Set when entries between the last one sent and these were lost.")
    last_seq: int = strawberry.field(description="Resume after this number when reconnecting.")


@strawberry.input(description="Which jobs a subscription follows; all given conditions hold.")
class JobSubscriptionFilter:
    status: JobStatus | None = None
    job_type: str | None = None
    batch_id: strawberry.ID | None = None

    def to_filter(self) -> JobFilter:
        return JobFilter(status=self.status, job_type=self.job_type, batch_id=self.batch_id)


DECODERS: dict[str, Any] = {"job": job_from_document,
                            "documentation job": documentation_job_from_document}


async def newer_states(changes: Subscriber, version: int, principal: Principal, kind: str,
                       object_id: str) -> AsyncIterator[Any]:
    """The object after each change newer than ``version``; NOT_FOUND once it is deleted or
    the subscriber may no longer read it (looking exactly like a missing object)."""
    claimable = kind == "job"
    async for change in changes:
        if change.operation == "delete" or not readable_document(
                principal, change.document, claimable=claimable):
            raise NotFoundError(f"{kind} {object_id!r} not found")
        current = change.model(DECODERS[kind])
        if current.version > version:
            version = current.version
            yield current


def _kind(change: Change) -> JobEventKind:
    return {"insert": JobEventKind.CREATED, "delete": JobEventKind.DELETED}.get(
        change.operation, JobEventKind.UPDATED)


@strawberry.type
class Subscription:
    @strawberry.subscription(
        description="A job's current state, then its state after every change.")
    async def job_changed(
        self, info: Info, job_id: strawberry.ID
    ) -> AsyncGenerator[SecretaryJob, None]:
        store, principal = info.context.store, info.context.principal
        async with subscribe(info, keys=[("jobs", job_id)]) as changes:
            job = await store.jobs.get(principal, job_id)
            version = job.version
            yield job  # type: ignore[misc]
            del job  # held for hours otherwise, logs and all, by each subscription
            async for current in newer_states(changes, version, principal, "job", job_id):
                yield current  # type: ignore[misc]

    @strawberry.subscription(
        description="Jobs matching the filter: first the newest `initial` of them (CURRENT), "
        "then every job that is created, changes, or leaves or enters the filter.")
    async def jobs_changed(
        self,
        info: Info,
        filter: JobSubscriptionFilter | None = None,
        initial: Annotated[int, strawberry.argument(
            description="How many current jobs to send first (0 to skip).")] = 20,
    ) -> AsyncGenerator[JobEvent, None]:
        store, principal = info.context.store, info.context.principal
        job_filter = (filter or JobSubscriptionFilter()).to_filter()
        if not 0 <= initial <= store.limits.max_page_size:
            raise ValidationError("initial", f"must be between 0 and {store.limits.max_page_size}")

        def relevant(change: Change) -> bool:
            return matches(job_filter, change.document) or matches(job_filter, change.previous)

        async with subscribe(info, collections=["jobs"], predicate=relevant) as changes:
            versions: dict[str, int] = {}
            if initial:
                page = await store.jobs.list(principal, job_filter, PageRequest(first=initial))
                for job in reversed(page.items):
                    versions[job.job_id] = job.version
                    yield JobEvent(kind=JobEventKind.CURRENT, job_id=job.job_id, job=job)
            async for change in changes:
                event = _job_event(principal, change, versions)
                if event is not None:
                    yield event

    @strawberry.subscription(
        description="A batch's current state, then again whenever it or any of its jobs "
        "changes (status and counts are re-derived each time).")
    async def batch_changed(
        self, info: Info, batch_id: strawberry.ID
    ) -> AsyncGenerator[BatchJob, None]:
        store, principal = info.context.store, info.context.principal
        keys = [("batches", batch_id), ("jobs@batch", batch_id)]
        async with subscribe(info, keys=keys) as changes:
            batch = await store.batches.get(principal, batch_id)
            yield batch  # type: ignore[misc]
            last = _batch_signature(batch)
            async for change in changes:
                if change.collection == "batches":
                    if change.operation == "delete" or not readable_document(
                            principal, change.document):
                        raise NotFoundError(f"batch {batch_id!r} not found")
                    batch = batch_from_document(change.document)  # type: ignore[arg-type]
                batch.counts = (await store.batches.counts([batch_id]))[batch_id]
                batch.status = batch.counts.status()
                signature = _batch_signature(batch)
                if signature != last:
                    last = signature
                    yield batch  # type: ignore[misc]

    @strawberry.subscription(
        description="A documentation job's current state, then its state after every change.")
    async def documentation_job_changed(
        self, info: Info, job_id: strawberry.ID
    ) -> AsyncGenerator[DocumentationJob, None]:
        store, principal = info.context.store, info.context.principal
        async with subscribe(info, keys=[("documentation_jobs", job_id)]) as changes:
            job = await store.documentation_jobs.get(principal, job_id)
            version = job.version
            yield job  # type: ignore[misc]
            del job
            async for current in newer_states(changes, version, principal,
                                              "documentation job", job_id):
                yield current  # type: ignore[misc]

    @strawberry.subscription(
        description="A job's log entries after sequence number `after`, then new ones as they "
        "are appended. Reconnect with the last `lastSeq` you saw: no gap, no duplicate; "
        "entries the capped log dropped are reported as a `gap`.")
    async def job_logs(
        self,
        info: Info,
        job_id: strawberry.ID,
        after: Annotated[int, strawberry.argument(
            description="Sequence number of the last entry already seen (0 for all).")] = 0,
    ) -> AsyncGenerator[JobLogBatch, None]:
        store, principal = info.context.store, info.context.principal
        if after < 0:
            raise ValidationError("after", "must not be negative")
        async with subscribe(info, keys=[("jobs", job_id)]) as changes:
            job = await store.jobs.get(principal, job_id)
            if after > job.log_seq:
                raise ValidationError("after", f"is beyond the newest entry ({job.log_seq})")
            batch, after = _log_batch(job, after)
            version = job.version
            del job
            yield batch  # type: ignore[misc]
            del batch
            async for current in newer_states(changes, version, principal, "job", job_id):
                if current.log_seq > after:
                    batch, after = _log_batch(current, after)
                    yield batch  # type: ignore[misc]
                    del batch


def _job_event(principal: Principal, change: Change, versions: dict[str, int]) -> JobEvent | None:
    job_id = str(change.object_id)
    if change.operation == "delete":
        if not readable_document(principal, change.previous, claimable=True) and (
                job_id not in versions):
            return None
        versions.pop(job_id, None)
        return JobEvent(kind=JobEventKind.DELETED, job_id=job_id, job=None)
    if not readable_document(principal, change.document, claimable=True):
        return None
    job = change.model(job_from_document)
    if job_id in versions:  # sent as CURRENT: skip changes that state already held
        if job.version <= versions[job_id]:
            return None
        del versions[job_id]
    return JobEvent(kind=_kind(change), job_id=job_id, job=job)


def _batch_signature(batch: BatchJobModel) -> tuple[Any, ...]:
    counts = batch.counts
    return (batch.version, counts.pending, counts.processing, counts.completed,  # type: ignore
            counts.failed)  # type: ignore[union-attr]


def _log_batch(job: SecretaryJobModel, after: int) -> tuple[JobLogBatch, int]:
    entries = [entry for entry in job.logs if entry.seq > after]
    first = entries[0].seq if entries else job.log_seq + 1
    gap = LogGap(from_seq=after + 1, to_seq=first - 1) if first > after + 1 else None
    last = max(after, job.log_seq)
    return JobLogBatch(job_id=job.job_id, entries=entries, gap=gap, last_seq=last), last
