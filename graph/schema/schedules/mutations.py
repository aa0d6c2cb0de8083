"""Schedule mutations. Each returns the schedule as it is after the change."""

from __future__ import annotations

from typing import Annotated

import strawberry

from graph.schema.core.access import AccessArg, access_or_none
from graph.schema.core.context import Info

from .types import CreateScheduleInput, Schedule, ScheduleIdArg


@strawberry.type
class ScheduleMutations:
    @strawberry.mutation(description="Create a schedule; you become its admin, and its jobs "
                         "are created on your behalf.")
    async def create_schedule(
        self, info: Info,
        input: Annotated[CreateScheduleInput, strawberry.argument(
            description="The new schedule.")],
    ) -> Schedule:
        return await info.context.store.schedules.create(
            info.context.principal, name=input.name, cron=input.cron, timezone=input.timezone,
            job_template=input.job_template.to_model(), misfire_policy=input.misfire_policy,
            catch_up_limit=input.catch_up_limit, paused=input.paused,
            access_control=access_or_none(input.access_control))

    @strawberry.mutation(description="Stop a schedule from creating jobs (writers of the "
                         "schedule).")
    async def pause_schedule(self, info: Info, schedule_id: ScheduleIdArg) -> Schedule:
        return await info.context.store.schedules.pause(info.context.principal, schedule_id)

    @strawberry.mutation(description="Start a paused schedule again from its next fire time "
                         "after now; the paused time is not caught up (writers).")
    async def resume_schedule(self, info: Info, schedule_id: ScheduleIdArg) -> Schedule:
        return await info.context.store.schedules.resume(info.context.principal, schedule_id)

    @strawberry.mutation(description="Delete a schedule (admins of it); the jobs it created "
                         "stay. Returns what was deleted.")
    async def delete_schedule(self, info: Info, schedule_id: ScheduleIdArg) -> Schedule:
        return await info.context.store.schedules.delete(info.context.principal, schedule_id)

    @strawberry.mutation(description="Replace a schedule's access control (admins of it).")
    async def set_schedule_access(
        self, info: Info, schedule_id: ScheduleIdArg, access_control: AccessArg
    ) -> Schedule:
        return await info.context.store.schedules.set_access(
            info.context.principal, schedule_id, access_control.to_model())
