"""Schedule queries."""

from __future__ import annotations

from typing import Annotated

import strawberry

from graph.schema.core.connections import AFTER, BEFORE, FILTER, FIRST, LAST, Connection, paginate
from graph.schema.core.context import Info

from .types import Schedule, ScheduleFilterInput, ScheduleIdArg


@strawberry.type
class ScheduleQueries:
    @strawberry.field(description="One schedule by id. NOT_FOUND if missing or hidden from you.")
    async def schedule(self, info: Info, schedule_id: ScheduleIdArg) -> Schedule | None:
        return await info.context.store.schedules.get(info.context.principal, schedule_id)

    @strawberry.field(description="Schedules you may read, newest first.")
    async def schedules(
        self,
        info: Info,
        filter: Annotated[ScheduleFilterInput | None, FILTER] = None,
        first: Annotated[int | None, FIRST] = None,
        after: Annotated[str | None, AFTER] = None,
        last: Annotated[int | None, LAST] = None,
        before: Annotated[str | None, BEFORE] = None,
    ) -> Connection[Schedule]:
        return await paginate(info.context.store.schedules, info.context.principal,
                              (filter or ScheduleFilterInput()).to_filter(), first, after, last,
                              before)
