"""Queue settings (the admin role): pause, resume, concurrency limit."""

from __future__ import annotations

from typing import Annotated

import strawberry

from graph.schema.core.context import Info

from .types import JobTypeArg, Queue


@strawberry.type
class QueueMutations:
    @strawberry.mutation(description="Pause a job type: claims that start from now on skip its "
                         "jobs (running ones go on). Needs the admin role.")
    async def pause_queue(self, info: Info, job_type: JobTypeArg) -> Queue:
        return await info.context.store.queues.pause(info.context.principal, job_type)

    @strawberry.mutation(description="Let claims take a paused job type's jobs again. Needs the "
                         "admin role.")
    async def resume_queue(self, info: Info, job_type: JobTypeArg) -> Queue:
        return await info.context.store.queues.resume(info.context.principal, job_type)

    @strawberry.mutation(
        description="Limit how many jobs of a type are PROCESSING at once, across all API "
        "processes (running jobs above a lowered limit go on; claims wait). Needs the admin "
        "role.")
    async def set_queue_concurrency(
        self,
        info: Info,
        job_type: JobTypeArg,
        max: Annotated[int | None, strawberry.argument(
            description="1 to 100000; null (or left out) removes the limit.")] = None,
    ) -> Queue:
        return await info.context.store.queues.set_concurrency(info.context.principal,
                                                               job_type, max)
