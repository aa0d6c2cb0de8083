"""Queue and worker queries (the worker and admin roles)."""

from __future__ import annotations

from typing import Annotated

import strawberry

from graph.schema.core.context import Info

from .types import JobTypeArg, Queue, SeenWithinArg, Worker


@strawberry.type
class QueueQueries:
    @strawberry.field(description="Every job type that has jobs or settings, by name, with its "
                      "counts and the workers seen on it. Needs the worker or admin role.")
    async def queues(
        self,
        info: Info,
        job_types: Annotated[list[str] | None, strawberry.argument(
            description="Only these job types (also those without any job).")] = None,
        seen_within_seconds: SeenWithinArg = 300,
    ) -> list[Queue]:
        return await info.context.store.queues.list(info.context.principal, job_types,
                                                    seen_within_seconds)

    @strawberry.field(description="One job type's queue (counts zero if it has no jobs). Needs "
                      "the worker or admin role.")
    async def queue(self, info: Info, job_type: JobTypeArg,
                    seen_within_seconds: SeenWithinArg = 300) -> Queue:
        return await info.context.store.queues.get(info.context.principal, job_type,
                                                   seen_within_seconds)

    @strawberry.field(description="Workers seen lately, most recent first, with the jobs they "
                      "hold. Needs the worker or admin role.")
    async def workers(
        self,
        info: Info,
        seen_within_seconds: SeenWithinArg = 300,
        job_type: Annotated[str | None, strawberry.argument(
            description="Only workers taking this job type.")] = None,
    ) -> list[Worker]:
        return await info.context.store.workers.list(
            info.context.principal, seen_within=seen_within_seconds, job_type=job_type)
