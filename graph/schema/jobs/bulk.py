"""Bulk job mutations by list filter (``repository.bulk_jobs``): the same ``JobFilterInput``
as the ``jobs`` list, so every filter it gains works here too."""

from __future__ import annotations

from typing import Annotated

import strawberry

from graph.schema.core.context import Info
from repository.bulk_jobs import BulkJobs, BulkResult

from .types import JobFilterInput

BULK_FILTER = strawberry.argument(description="Which jobs: the `jobs` list's filter (none: "
                                  "every job you may read).")
LIMIT = strawberry.argument(description="The most jobs to act on in this call (default and "
                            "maximum: `JOBGRAPH_MAX_BULK_JOBS`, 1000 unless configured).")


@strawberry.type(description="What a bulk operation did.")
class BulkJobResult:
    matched: int = strawberry.field(description="Jobs it selected (at most `limit`): those "
                                    "the filter lists for you that the operation applies to.")
    changed: int = strawberry.field(description="Of those, the jobs it changed (a job that "
                                    "changed meanwhile, e.g. was claimed, may not be).")
    more: bool = strawberry.field(description="More jobs remain beyond `limit`: call again "
                                  "(repeating is safe; what is done is not redone).")

    @classmethod
    def of(cls, result: BulkResult) -> BulkJobResult:
        return cls(matched=result.matched, changed=result.changed, more=result.more)


@strawberry.type
class BulkJobMutations:
    @strawberry.mutation(description="`retryJob` for each FAILED job the filter selects that "
                         "you may write and that was not failed for good; newest first.")
    async def retry_jobs(
        self, info: Info, filter: Annotated[JobFilterInput | None, BULK_FILTER] = None,
        limit: Annotated[int | None, LIMIT] = None,
    ) -> BulkJobResult:
        context = info.context
        return BulkJobResult.of(await BulkJobs(context.store.jobs).retry(
            context.principal, (filter or JobFilterInput()).to_filter(), limit))

    @strawberry.mutation(description="`cancelJob` for each PENDING or PROCESSING job the "
                         "filter selects that you may write and nobody asked to cancel yet: a "
                         "PENDING job is FAILED with CANCELLED at once, a PROCESSING one gets "
                         "`cancelRequested`; newest first.")
    async def cancel_jobs(
        self, info: Info, filter: Annotated[JobFilterInput | None, BULK_FILTER] = None,
        reason: Annotated[str | None, strawberry.argument(
            description="Why, for the workers and the record.")] = None,
        limit: Annotated[int | None, LIMIT] = None,
    ) -> BulkJobResult:
        context = info.context
        return BulkJobResult.of(await BulkJobs(context.store.jobs).cancel(
            context.principal, (filter or JobFilterInput()).to_filter(), reason, limit))

    @strawberry.mutation(description="`deleteJob` for each job the filter selects that you "
                         "administer; newest first.")
    async def delete_jobs(
        self, info: Info, filter: Annotated[JobFilterInput | None, BULK_FILTER] = None,
        limit: Annotated[int | None, LIMIT] = None,
    ) -> BulkJobResult:
        context = info.context
        return BulkJobResult.of(await BulkJobs(context.store.jobs).delete(
            context.principal, (filter or JobFilterInput()).to_filter(), limit))
