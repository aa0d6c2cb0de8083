"""Documentation job queries."""

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
from repository.stats import documentation_job_stats

from .stats import DocumentationJobStats
from .types import (
    DocumentationJob,
    DocumentationJobFilterInput,
    DocumentationJobIdArg,
    DocumentationJobOrderInput,
)


@strawberry.type
class DocumentationJobQueries:
    @strawberry.field(description="One documentation job by id. NOT_FOUND if missing or hidden.")
    async def documentation_job(
        self, info: Info, job_id: DocumentationJobIdArg
    ) -> DocumentationJob | None:
        return await info.context.store.documentation_jobs.get(info.context.principal, job_id)

    @strawberry.field(description="Documentation jobs you may read, newest first unless "
                      "`orderBy` says otherwise.")
    async def documentation_jobs(
        self,
        info: Info,
        filter: Annotated[DocumentationJobFilterInput | None, FILTER] = None,
        first: Annotated[int | None, FIRST] = None,
        after: Annotated[str | None, AFTER] = None,
        last: Annotated[int | None, LAST] = None,
        before: Annotated[str | None, BEFORE] = None,
        order_by: Annotated[DocumentationJobOrderInput | None, ORDER_BY] = None,
    ) -> Connection[DocumentationJob]:
        return await paginate(info.context.store.documentation_jobs, info.context.principal,
                              (filter or DocumentationJobFilterInput()).to_filter(), first, after,
                              last, before, (order_by or DocumentationJobOrderInput()).to_order())

    @strawberry.field(description="Counts by status and tokens used per repository and per "
                      "model of the documentation jobs you may read that match the filter.")
    async def documentation_job_stats(
        self,
        info: Info,
        filter: Annotated[DocumentationJobFilterInput | None, FILTER] = None,
    ) -> DocumentationJobStats:
        return await documentation_job_stats(  # the same fields
            info.context.store.documentation_jobs.collection, info.context.principal,
            (filter or DocumentationJobFilterInput()).to_filter())
