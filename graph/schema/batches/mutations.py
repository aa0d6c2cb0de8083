"""Batch mutations."""

from __future__ import annotations

from typing import Annotated

import strawberry

from graph.schema.core.access import AccessArg, access_or_none
from graph.schema.core.context import Info
from graph.schema.jobs.types import CreateJobInput

from .types import BatchIdArg, BatchJob, CreateBatchInput, job_specs


@strawberry.type
class BatchMutations:
    @strawberry.mutation(description="Create a batch with all its jobs in one call.")
    async def create_batch(
        self, info: Info,
        input: Annotated[CreateBatchInput, strawberry.argument(
            description="The new batch and its jobs.")],
    ) -> BatchJob:
        return await info.context.store.batches.create(
            info.context.principal, batch_name=input.batch_name, jobs=input.job_specs(),
            access_control=access_or_none(input.access_control),
            idempotency_key=input.idempotency_key)

    @strawberry.mutation(description="Switch a batch off (writers of the batch): its PENDING "
                         "jobs are not claimed until it is activated again (running ones "
                         "go on).")
    async def deactivate_batch(self, info: Info, batch_id: BatchIdArg) -> BatchJob:
        return await info.context.store.batches.set_active(info.context.principal, batch_id, False)

    @strawberry.mutation(description="Switch a batch back on (writers of the batch).")
    async def activate_batch(self, info: Info, batch_id: BatchIdArg) -> BatchJob:
        return await info.context.store.batches.set_active(info.context.principal, batch_id, True)

    @strawberry.mutation(description="Replace a batch's access control (admins of the batch).")
    async def set_batch_access(
        self, info: Info, batch_id: BatchIdArg, access_control: AccessArg
    ) -> BatchJob:
        return await info.context.store.batches.set_access(
            info.context.principal, batch_id, access_control.to_model())

    @strawberry.mutation(
        description="Cancel every unfinished job of the batch, as cancelJob does (writers of "
        "the batch, whatever the jobs' own access control).")
    async def cancel_batch(
        self,
        info: Info,
        batch_id: BatchIdArg,
        reason: Annotated[str | None, strawberry.argument(
            description="Why, for the workers and the record.")] = None,
    ) -> BatchJob:
        return await info.context.store.batches.cancel(info.context.principal, batch_id, reason)

    @strawberry.mutation(
        description="Put the batch's FAILED jobs back to PENDING, as retryJob does (writers of "
        "the batch); not those failed as not retryable, nor the cancelled ones.")
    async def retry_failed_jobs(self, info: Info, batch_id: BatchIdArg) -> BatchJob:
        return await info.context.store.batches.retry_failed(info.context.principal, batch_id)

    @strawberry.mutation(
        description="Add jobs to a batch (writers of the batch), within "
        "JOBGRAPH_MAX_JOBS_PER_BATCH in all; each takes the batch's access control unless "
        "given its own.")
    async def add_jobs_to_batch(
        self,
        info: Info,
        batch_id: BatchIdArg,
        jobs: Annotated[list[CreateJobInput], strawberry.argument(
            description="The new jobs.")],
    ) -> BatchJob:
        return await info.context.store.batches.add_jobs(info.context.principal, batch_id,
                                                         job_specs(jobs))

    @strawberry.mutation(
        description="Delete a batch and all its jobs (admins of the batch); refused with "
        "INVALID_TRANSITION while any of its jobs is PROCESSING. Returns what was deleted.")
    async def delete_batch(self, info: Info, batch_id: BatchIdArg) -> BatchJob:
        return await info.context.store.batches.delete(info.context.principal, batch_id)
