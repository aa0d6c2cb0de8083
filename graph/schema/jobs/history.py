"""A job's history for its admins: the paged list (``SecretaryJob.history``) and the
``jobHistory`` subscription. See ``repository.job_history`` for how entries are made."""

from __future__ import annotations

from collections.abc import AsyncGenerator
from datetime import datetime
from typing import Annotated, cast

import strawberry
from strawberry.scalars import JSON

from graph.realtime.follow import newer
from graph.schema.core.connections import Connection, Edge, PageInfo
from graph.schema.core.context import Info
from graph.schema.core.enums import described_enum
from graph.schema.core.subscribing import subscribe
from repository.access import Principal, administered_document, readable_document, rights
from repository.changes import Change
from repository.errors import ForbiddenError, NotFoundError, ValidationError
from repository.job_history import HistoryEntry, JobHistoryKind, decode_history_cursor
from repository.job_history import entry_from_document as history_entry_from_document
from repository.models import SecretaryJob as SecretaryJobModel

described_enum(JobHistoryKind, "What a change did to a job.", {
    "CREATED": "The job was created.",
    "CLAIMED": "A worker claimed it (PROCESSING).",
    "PROGRESS": "Its worker reported progress.",
    "CANCEL_REQUESTED": "Someone asked the running job to cancel.",
    "COMPLETED": "It completed.",
    "FAILED": "It failed (a cancel, a timeout, an expired lease, or its worker's error).",
    "RETRIED": "A writer retried it (back to PENDING).",
    "REQUEUED": "Its claim ended with attempts left (an expired lease or timeout, or a "
    "retryable failure): back to PENDING after the retry delay.",
    "ACCESS_CHANGED": "Its access control changed.",
    "PRIORITY_CHANGED": "Its priority changed.",
    "UPDATED": "Another change (`changes` says what).",
    "DELETED": "It was deleted (seen only by `jobHistory` subscribers: a deleted job cannot "
    "be read).",
})


@strawberry.type(description="One change of a job: who, when, what.")
class JobHistoryEntry:
    id: strawberry.ID = strawberry.field(description="The entry's own id.")
    job_id: strawberry.ID = strawberry.field(description="The job's id.")
    at: datetime = strawberry.field(description="When the change was made.")
    by: str = strawberry.field(description='Who made it: a user id, or "system" (the reaper, '
                               "a batch operation, jobgraph itself).")
    kind: JobHistoryKind = strawberry.field(description="What the change did.")
    status: str | None = strawberry.field(description="The job's status after it, when it "
                                          "changed or is known.")
    changes: JSON = strawberry.field(description="The fields it set (stored names, dotted "
                                     "paths for parts of a field; null for removed ones).")
    cursor: str = strawberry.field(description="Resume `jobHistory` or page `history` after "
                                   "this entry.")

    @classmethod
    def of(cls, entry: HistoryEntry) -> JobHistoryEntry:
        return cls(id=strawberry.ID(entry.entry_id), job_id=strawberry.ID(entry.job_id),
                   at=entry.at, by=entry.by, kind=entry.kind, status=entry.status,
                   changes=cast(JSON, entry.changes), cursor=entry.cursor())


async def job_history(root: SecretaryJobModel, info: Info, first: int | None,
                      after: str | None) -> Connection[JobHistoryEntry] | None:
    """Newest first; null unless the caller may administer the job (like its access
    control's changes, its history is its admins' business)."""
    context = info.context
    if not rights(context.principal, root.access_control).admin:
        return None
    size = 20 if first is None else first
    if not 0 <= size <= context.store.limits.max_page_size:
        raise ValidationError("first", f"must be between 0 and "
                              f"{context.store.limits.max_page_size}, got {size}")
    history = context.store.history
    entries, more = await history.page(root.job_id, size, after)
    edges = [Edge(node=JobHistoryEntry.of(entry), cursor=entry.cursor()) for entry in entries]
    page_info = PageInfo(has_next_page=more, has_previous_page=after is not None,
                         start_cursor=edges[0].cursor if edges else None,
                         end_cursor=edges[-1].cursor if edges else None)
    return Connection(edges=edges, page_info=page_info,
                      counter=lambda: history.count(root.job_id))


def lost_access(principal: Principal, job_id: str, change: Change, version: int) -> int:
    """End a follower who may no longer read the job (NOT_FOUND) or administer it
    (FORBIDDEN), as a new subscription would be refused, and before the entries of what
    came after (they follow their change). A delete is not that: its DELETED entry ends
    the history. A state no newer than ``version`` (the newest it knows) is old news,
    whoever could read it (``newer``). Returns the newest version it knows now."""
    document = change.document
    if change.operation == "delete" or (document is not None
                                        and not newer(document, version)):
        return version
    if not readable_document(principal, document):
        raise NotFoundError(f"job {job_id!r} not found")
    if not administered_document(principal, document):
        raise ForbiddenError(f"only admins of job {job_id!r} may follow its history")
    assert document is not None  # readable_document said so
    return int(document.get("version", 0))


def may_see(principal: Principal, entry: HistoryEntry) -> bool:
    return principal.is_admin or (principal.user_id is not None
                                  and principal.user_id in entry.admins)


@strawberry.type
class JobHistorySubscriptions:
    @strawberry.subscription(
        description="A job's history entries (its admins only: FORBIDDEN for other readers): "
        "those after `after` first (none when null), then each new one as it is recorded, "
        "oldest first. Entries come shortly after their change (the history writer reads "
        "the change stream): a client that found none in `history` (a job just created) "
        "follows `fromStart`, so that an entry recorded meanwhile is not missed. A deleted "
        "job's last entry is DELETED. A follower who is no "
        "longer an admin of the job is ended with FORBIDDEN, one who may no longer read it "
        "with NOT_FOUND, before any entry of a later change.")
    async def job_history(
        self,
        info: Info,
        job_id: Annotated[strawberry.ID, strawberry.argument(description="The job's `jobId`.")],
        after: Annotated[str | None, strawberry.argument(
            description="A `cursor` of the last entry already seen.")] = None,
        from_start: Annotated[bool, strawberry.argument(
            description="Every entry recorded so far first, oldest first (not with "
            "`after`).")] = False,
    ) -> AsyncGenerator[JobHistoryEntry, None]:
        store, principal = info.context.store, info.context.principal
        if from_start and after is not None:
            raise ValidationError("fromStart", "cannot be combined with after: the entries "
                                  "after a cursor, or all of them")
        seq = 0 if from_start else decode_history_cursor(after) if after is not None else None

        def relevant(change: Change) -> bool:
            if change.collection == "jobs":  # the job's own (its key): access, checked below
                return True
            return change.document is not None and change.document.get("job_id") == job_id

        async with subscribe(info, keys=[("jobs", job_id)], collections=["job_history"],
                             predicate=relevant) as changes:
            job = await store.jobs.get_without_logs(principal, job_id)
            if not rights(principal, job.access_control).admin:
                raise ForbiddenError(f"only admins of job {job_id!r} may follow its history")
            version = job.version
            del job
            if seq is None:
                newest, _ = await store.history.page(job_id, 1, None)
                seq = newest[0].seq if newest else 0
            else:
                async for entry in store.history.after(job_id, seq):
                    seq = entry.seq
                    yield JobHistoryEntry.of(entry)
            async for change in changes:
                if change.collection == "jobs":
                    version = lost_access(principal, job_id, change, version)
                    continue
                assert change.document is not None
                entry = history_entry_from_document(change.document)
                if entry.seq <= seq or not may_see(principal, entry):
                    continue
                seq = entry.seq
                yield JobHistoryEntry.of(entry)
