"""Batch subscription fields."""

from __future__ import annotations

from collections.abc import AsyncGenerator

import strawberry

from graph.realtime.follow import batch_states
from graph.schema.core.context import Info
from graph.schema.core.subscribing import subscribe

from .types import BatchIdArg, BatchJob


@strawberry.type
class BatchSubscriptions:
    @strawberry.subscription(
        description="A batch's current state, then again whenever it or any of its jobs "
        "changes (status and counts are re-derived each time).")
    async def batch_changed(
        self, info: Info, batch_id: BatchIdArg
    ) -> AsyncGenerator[BatchJob, None]:
        store, principal = info.context.store, info.context.principal
        keys = [("batches", batch_id), ("jobs@batch", batch_id)]
        async with subscribe(info, keys=keys) as changes:
            batch = await store.batches.get(principal, batch_id)
            yield batch  # type: ignore[misc]
            async for current in batch_states(changes, store, principal, batch):
                yield current  # type: ignore[misc]
