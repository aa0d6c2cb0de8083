"""Job queries: each resolver hands over to the repository."""

from __future__ import annotations

from typing import Annotated

import strawberry

from graph.schema.core.connections import (
    AFTER,
    BEFORE,
    FILTER,
    FIRST,
    LAST,
    ORDER_BY,
    Connection,
    paginate,
)
from graph.schema.core.context import Info
from repository.stats import job_stats

from .stats import JobStats, StatsWindowInput
from .types import JobFilterInput, JobIdArg, JobOrderInput, SecretaryJob


@strawberry.type
class JobQueries:
    @strawberry.field(description="One job by id. NOT_FOUND if it is missing or hidden from you.")
    async def job(self, info: Info, job_id: JobIdArg) -> SecretaryJob | None:
        return await info.context.store.jobs.get(info.context.principal, job_id)

    @strawberry.field(description="Jobs you may read, newest first unless `orderBy` says "
                      "otherwise.")
    async def jobs(
        self,
        info: Info,
        filter: Annotated[JobFilterInput | None, FILTER] = None,
        first: Annotated[int | None, FIRST] = None,
        after: Annotated[str | None, AFTER] = None,
        last: Annotated[int | None, LAST] = None,
        before: Annotated[str | None, BEFORE] = None,
        order_by: Annotated[JobOrderInput | None, ORDER_BY] = None,
    ) -> Connection[SecretaryJob]:
        return await paginate(info.context.store.jobs, info.context.principal,
                              (filter or JobFilterInput()).to_filter(), first, after, last, before,
                              (order_by or JobOrderInput()).to_order())

    @strawberry.field(description="Counts by status and job type, throughput per bucket and run "
                      "times of the jobs you may read that match the filter.")
    async def job_stats(
        self,
        info: Info,
        filter: Annotated[JobFilterInput | None, FILTER] = None,
        window: Annotated[StatsWindowInput | None, strawberry.argument(
            description="The window of throughput and durations (default: the last 24 "
            "hours, by the hour).")] = None,
    ) -> JobStats:
        stats = await job_stats(info.context.store.jobs.collection, info.context.principal,
                                (filter or JobFilterInput()).to_filter(),
                                (window or StatsWindowInput()).to_window())
        return stats  # the same fields
