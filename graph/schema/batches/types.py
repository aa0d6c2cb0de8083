"""GraphQL types of batches. Status and counts are derived from the batch's jobs."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

import strawberry

from graph.schema.core.access import AccessControl, AccessControlInput
from graph.schema.core.connections import AFTER, BEFORE, FIRST, LAST, Connection, paginate
from graph.schema.core.context import Context, Info
from graph.schema.core.node import Node, global_id
from graph.schema.jobs.types import CreateJobInput, SecretaryJob
from repository.access import rights
from repository.batches import BatchFilter, JobSpec
from repository.job_filters import JobFilter
from repository.models import BatchCounts as BatchCountsModel
from repository.models import BatchJob as BatchJobModel
from repository.models import JobStatus

BatchIdArg = Annotated[strawberry.ID, strawberry.argument(description="The batch's `batchId`.")]


@strawberry.type(description="How many of a batch's jobs are in each status.")
class BatchCounts:
    pending: int = strawberry.field(description="Jobs waiting for a worker.")
    processing: int = strawberry.field(description="Jobs being worked on.")
    completed: int = strawberry.field(description="Jobs finished successfully.")
    failed: int = strawberry.field(description="Jobs that failed, not counting the cancelled.")
    cancelled: int = strawberry.field(
        description="Jobs that were cancelled (FAILED with error code CANCELLED).")
    total: int = strawberry.field(description="All jobs of the batch.")


async def _counts(root: BatchJobModel, info: Info) -> BatchCountsModel:
    if root.counts is None:
        root.counts = await info.context.loaders.batch_counts.load(root.batch_id)
    return root.counts


@strawberry.type(description="A named group of jobs processed together.")
class BatchJob(Node):
    batch_id: strawberry.ID = strawberry.field(description="Unique batch identifier.")

    @strawberry.field(description="Global id (Relay's Node); `batchId` stays its own id.")  # type: ignore[misc]  # Node's id field, here a resolver
    @staticmethod
    def id(root: BatchJobModel) -> strawberry.ID:
        return global_id("BatchJob", root.batch_id)

    @classmethod
    def is_type_of(cls, obj: Any, _info: Any) -> bool:
        return isinstance(obj, BatchJobModel | cls)

    batch_name: str = strawberry.field(description="Name of the batch.")
    created_at: datetime = strawberry.field(description="When the batch was created.")
    updated_at: datetime = strawberry.field(description="When the batch itself last changed.")
    active: bool = strawberry.field(
        description="Whether the batch is active: an inactive batch's PENDING jobs are not "
        "claimed until it is activated again.")
    access_control: AccessControl = strawberry.field(description="Who may see and change it.")
    owner: str | None = strawberry.field(description="User who created the batch.")
    version: int = strawberry.field(
        description="Incremented by every change of the batch itself (not of its jobs).")

    @strawberry.field(
        description="PENDING until a job starts (also while the batch has no jobs), "
        "PROCESSING while any job is unfinished, then FAILED if a job failed or every job "
        "was cancelled, else COMPLETED (cancelled jobs are no failure).")
    @staticmethod
    async def status(root: BatchJobModel, info: Info) -> JobStatus:
        return (await _counts(root, info)).status()

    @strawberry.field(description="Whether you may activate and deactivate it (`writeAccess`, "
                      "`adminAccess` or the admin role).")
    @staticmethod
    def viewer_can_write(root: BatchJobModel, info: Info) -> bool:
        return rights(info.context.principal, root.access_control).write

    @strawberry.field(description="Whether you may change its access control (`adminAccess` or "
                      "the admin role).")
    @staticmethod
    def viewer_can_admin(root: BatchJobModel, info: Info) -> bool:
        return rights(info.context.principal, root.access_control).admin

    @strawberry.field(description="Jobs of the batch by status (all jobs, readable or not).")
    @staticmethod
    async def counts(root: BatchJobModel, info: Info) -> BatchCounts:
        return await _counts(root, info)

    @strawberry.field(description="The batch's jobs that you may read, newest first.")
    @staticmethod
    async def jobs(
        root: BatchJobModel,
        info: Info,
        status: Annotated[JobStatus | None, strawberry.argument(
            description="Only jobs in this status.")] = None,
        first: Annotated[int | None, FIRST] = None,
        after: Annotated[str | None, AFTER] = None,
        last: Annotated[int | None, LAST] = None,
        before: Annotated[str | None, BEFORE] = None,
    ) -> Connection[SecretaryJob]:
        return await paginate(info.context.store.jobs, info.context.principal,
                              JobFilter(status=status, batch_id=root.batch_id), first, after, last,
                              before)


@strawberry.input(description="Which batches to list.")
class BatchFilterInput:
    active: bool | None = strawberry.field(default=None, description="Only active (or inactive).")
    created_after: datetime | None = strawberry.field(
        default=None, description="Created strictly after this instant.")
    created_before: datetime | None = strawberry.field(
        default=None, description="Created strictly before this instant.")

    def to_filter(self) -> BatchFilter:
        return BatchFilter(self.active, self.created_after, self.created_before)


@strawberry.input(description="A new batch and its jobs, created together.")
class CreateBatchInput:
    batch_name: str = strawberry.field(description="Name of the batch.")
    jobs: list[CreateJobInput] = strawberry.field(
        description="Its jobs; each takes the batch's access control unless given its own.")
    access_control: AccessControlInput | None = strawberry.field(
        default=None, description="Who may see and change it; you are added as an admin.")
    idempotency_key: str | None = strawberry.field(
        default=None, description="Repeating a call with the same key returns the first "
        "result instead of creating a duplicate (per user; reusing it with other input is a "
        "CONFLICT).")

    def job_specs(self) -> list[JobSpec]:
        return job_specs(self.jobs)


def job_specs(jobs: list[CreateJobInput]) -> list[JobSpec]:
    return [JobSpec(**job.fields()) for job in jobs]


async def fetch_batches(context: Context, batch_ids: list[str]) -> dict[str, BatchJobModel]:
    """``node(id:)`` for batches: the readable ones among ``batch_ids``, with counts."""
    return await context.store.batches.get_many(context.principal, batch_ids)
