"""Batch mutations."""

from __future__ import annotations

from typing import Annotated

import strawberry

from graph.schema.core.access import AccessArg, access_or_none
from graph.schema.core.context import Info

from .types import BatchIdArg, BatchJob, CreateBatchInput


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

    @strawberry.mutation(description="Switch a batch off (writers of the batch).")
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
