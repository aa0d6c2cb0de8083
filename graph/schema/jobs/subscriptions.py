"""Job subscription fields: one job, jobs matching a filter, and a job's log stream."""

from __future__ import annotations

from collections.abc import AsyncGenerator
from enum import Enum
from typing import Annotated, Any

import strawberry

from graph.engine.sharing import shared_payloads
from graph.realtime.follow import JobEvents, follow, newer_states
from graph.schema.core.connections import FILTER
from graph.schema.core.context import Info
from graph.schema.core.subscribing import subscribe
from repository.changes import Change
from repository.errors import ValidationError
from repository.job_documents import job_from_document
from repository.job_filters import JobFilter
from repository.models import JobStatus, LogSlice
from repository.pagination import PageRequest

from .types import JobIdArg, LogEntry, SecretaryJob


@strawberry.enum(description="What happened to a job in a filtered job subscription.")
class JobEventKind(Enum):
    CURRENT = strawberry.enum_value("CURRENT", description="The job as it was when you "
                                    "subscribed (sent first, `initial` of them).")
    CREATED = strawberry.enum_value("CREATED", description="The job was just created.")
    UPDATED = strawberry.enum_value(
        "UPDATED", description="The job changed, or entered or left the filter.")
    DELETED = strawberry.enum_value(
        "DELETED", description="The job was deleted, or you may no longer read it: the two "
        "look the same (`job` is null), and you hear no more of it unless you may read it "
        "again.")


@strawberry.type(description="A job as it is now, and what just happened to it.")
class JobEvent:
    kind: JobEventKind = strawberry.field(
        description="CURRENT for the initial state, then CREATED, UPDATED or DELETED.")
    job_id: JobIdArg = strawberry.field(description="The job's id.")
    job: SecretaryJob | None = strawberry.field(description="The job; null once DELETED.")


@strawberry.type(description="Log entries were dropped by the capped log before you read them.")
class LogGap:
    from_seq: int = strawberry.field(description="First missing sequence number.")
    to_seq: int = strawberry.field(description="Last missing sequence number.")


@strawberry.type(description="New log entries of a job, in sequence order.")
class JobLogBatch:
    job_id: JobIdArg = strawberry.field(description="The job's id.")
    entries: list[LogEntry] = strawberry.field(description="Entries after the last one sent.")
    gap: LogGap | None = strawberry.field(
        description="Set when entries between the last one sent and these were lost.")
    last_seq: int = strawberry.field(description="Resume after this number when reconnecting.")

    @classmethod
    def of(cls, job_id: str, logs: LogSlice) -> JobLogBatch:
        gap = None if logs.gap is None else LogGap(from_seq=logs.gap[0], to_seq=logs.gap[1])
        return cls(job_id=job_id, entries=logs.entries,  # type: ignore[arg-type]
                   gap=gap, last_seq=logs.last_seq)


@strawberry.input(description="Which jobs a subscription follows; all given conditions hold.")
class JobSubscriptionFilter:
    status: JobStatus | None = strawberry.field(
        default=None, description="Jobs in this status (and jobs leaving it).")
    job_type: str | None = strawberry.field(default=None, description="Jobs of this type.")
    batch_id: strawberry.ID | None = strawberry.field(
        default=None, description="Jobs of this batch.")

    def to_filter(self) -> JobFilter:
        return JobFilter(status=self.status, job_type=self.job_type, batch_id=self.batch_id)


def job_event_of(change: Change, kind: str, job_id: str, job: Any) -> JobEvent:
    """The event, one object per change and kind, for every subscriber who hears it."""
    return change.shared((JobEvent, kind), lambda: JobEvent(
        kind=JobEventKind(kind), job_id=job_id, job=job))  # type: ignore[arg-type]


@strawberry.type
class JobSubscriptions:
    @strawberry.subscription(
        description="A job's current state, then its state after every change.")
    @shared_payloads
    async def job_changed(
        self, info: Info, job_id: JobIdArg
    ) -> AsyncGenerator[SecretaryJob, None]:
        store, principal = info.context.store, info.context.principal
        async with subscribe(info, keys=[("jobs", job_id)]) as changes:
            # without its log, as every later state: `logs` reads what is selected of it
            job = await store.jobs.get_without_logs(principal, job_id)
            version = job.version
            yield job  # type: ignore[misc]
            del job  # held for hours otherwise, by each subscription
            async for current in newer_states(changes, version, principal, job_from_document,
                                              kind="job", object_id=job_id, claimable=True,
                                              parking=info.context.parking):
                yield current  # type: ignore[misc]

    @strawberry.subscription(
        description="Jobs matching the filter: first the newest `initial` of them (CURRENT), "
        "then every job that is created, changes, or leaves or enters the filter. A job that "
        "left it comes as UPDATED with its new state; where the server cannot know the "
        "state before a change (it started since), a job whose status, type or batch "
        "changed comes so too, even if you were never sent it.")
    @shared_payloads
    async def jobs_changed(
        self,
        info: Info,
        filter: Annotated[JobSubscriptionFilter | None, FILTER] = None,
        initial: Annotated[int, strawberry.argument(
            description="How many current jobs to send first (0 to skip).")] = 20,
    ) -> AsyncGenerator[JobEvent, None]:
        store, principal = info.context.store, info.context.principal
        job_filter = (filter or JobSubscriptionFilter()).to_filter()
        if not 0 <= initial <= store.limits.max_page_size:
            raise ValidationError("initial", f"must be between 0 and {store.limits.max_page_size}")

        def relevant(change: Change) -> bool:
            if change.document is None and change.previous is None:
                return True  # deleted, state before unknown: job_event asks `versions`
            if job_filter.matches(change.document) or job_filter.matches(change.previous):
                return True
            # the state before is unknown here (this process started since, or forgot it):
            # it may have matched if the change wrote a field the filter reads
            return (change.previous is None and change.operation != "insert"
                    and job_filter.may_have_matched(change.changed))

        async with subscribe(info, collections=["jobs"], predicate=relevant,
                             before_told=True) as changes:
            versions: dict[str, int] = {}
            if initial:
                page = await store.jobs.list(principal, job_filter, PageRequest(first=initial))
                for job in reversed(page.items):
                    versions[job.job_id] = job.version
                    yield JobEvent(kind=JobEventKind.CURRENT, job_id=strawberry.ID(job.job_id),
                                   job=job)  # type: ignore[arg-type]  # the model itself
            async for event in follow(changes, JobEvents(principal, versions, job_event_of,
                                                         changes.before_told),
                                      info.context.parking):
                yield event


@strawberry.type
class JobLogSubscriptions:
    @strawberry.subscription(
        description="A job's log entries after sequence number `after`, then new ones as they "
        "are appended. Reconnect with the last `lastSeq` you saw: no gap, no duplicate; "
        "entries the capped log dropped are reported as a `gap`.")
    async def job_logs(
        self,
        info: Info,
        job_id: JobIdArg,
        after: Annotated[int, strawberry.argument(
            description="Sequence number of the last entry already seen (0 for all).")] = 0,
    ) -> AsyncGenerator[JobLogBatch, None]:
        store, principal = info.context.store, info.context.principal
        if after < 0:
            raise ValidationError("after", "must not be negative")
        async with subscribe(info, keys=[("jobs", job_id)]) as changes:
            job = await store.jobs.get_without_logs(principal, job_id)
            if after > job.log_seq:
                raise ValidationError("after", f"is beyond the newest entry ({job.log_seq})")
            logs = await store.jobs.logs_after(job, after)
            version = job.version
            del job
            yield JobLogBatch.of(job_id, logs)
            after = logs.last_seq
            del logs
            async for current in newer_states(changes, version, principal, job_from_document,
                                              kind="job", object_id=job_id, claimable=True):
                if current.log_seq > after:
                    logs = await store.jobs.logs_after(current, after)
                    yield JobLogBatch.of(job_id, logs)
                    after = logs.last_seq
                    del logs
