"""Batch queries."""

from __future__ import annotations

from typing import Annotated

import strawberry

from graph.schema.core.connections import AFTER, BEFORE, FILTER, FIRST, LAST, Connection, paginate
from graph.schema.core.context import Info

from .types import BatchFilterInput, BatchIdArg, BatchJob


@strawberry.type
class BatchQueries:
    @strawberry.field(description="One batch by id. NOT_FOUND if missing or hidden from you.")
    async def batch(self, info: Info, batch_id: BatchIdArg) -> BatchJob | None:
        return await info.context.store.batches.get(info.context.principal, batch_id)

    @strawberry.field(description="Batches you may read, newest first.")
    async def batches(
        self,
        info: Info,
        filter: Annotated[BatchFilterInput | None, FILTER] = None,
        first: Annotated[int | None, FIRST] = None,
        after: Annotated[str | None, AFTER] = None,
        last: Annotated[int | None, LAST] = None,
        before: Annotated[str | None, BEFORE] = None,
    ) -> Connection[BatchJob]:
        return await paginate(info.context.store.batches, info.context.principal,
                              (filter or BatchFilterInput()).to_filter(), first, after, last,
                              before)
