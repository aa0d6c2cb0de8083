"""GraphQL types of schedules. Resolvers receive repository models directly."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Annotated, Any, cast

import strawberry
from strawberry.scalars import JSON

from graph.schema.core.access import AccessControl, AccessControlInput, access_or_none
from graph.schema.core.connections import (
    AFTER,
    BEFORE,
    FIRST,
    LAST,
    Connection,
    page_request,
    to_connection,
)
from graph.schema.core.context import Context, Info
from graph.schema.core.enums import described_enum
from graph.schema.core.node import Node, global_id
from repository.access import rights
from repository.errors import ValidationError
from repository.models import AccessControl as AccessControlModel
from repository.models import utcnow
from repository.schedules import JobTemplate as JobTemplateModel
from repository.schedules import MisfirePolicy, ScheduleFilter
from repository.schedules import Schedule as ScheduleModel

if TYPE_CHECKING:
    from graph.schema.jobs.types import SecretaryJob

described_enum(MisfirePolicy, "What a schedule does about fire times missed while no "
               "scheduler ran (downtime) or it ran late.", {
                   "SKIP": "Let them pass: only the newest missed time still fires, and only "
                   "if it is at most JOBGRAPH_SCHEDULE_MISFIRE_GRACE_SECONDS old.",
                   "CATCH_UP": "Create a job for each missed time, the newest `catchUpLimit` "
                   "of them, oldest first.",
               })

ScheduleIdArg = Annotated[strawberry.ID, strawberry.argument(
    description="The schedule's `scheduleId`.")]
MAX_NEXT_FIRE_TIMES = 100


@strawberry.type(description="The job a schedule creates at each fire time.")
class JobTemplate:
    job_type: str = strawberry.field(description="Kind of job to create.")
    parameters: JSON = strawberry.field(description="Input for the worker, the same each time.")
    access_control: AccessControl = strawberry.field(
        description="Who may see and change the jobs (the schedule's owner is their admin).")
    max_attempts: int | None = strawberry.field(
        description="Claims allowed per job; null: the server's default.")
    priority: int = strawberry.field(
        description="The jobs' priority: claimed before jobs of lower priority.")


@strawberry.type(description="Creates a job from its template at every fire time of a cron "
                 "expression, in a time zone; one job per fire time, however many API "
                 "processes run.")
class Schedule(Node):
    schedule_id: strawberry.ID = strawberry.field(description="Unique schedule identifier.")

    @strawberry.field(description="Global id (Relay's Node); `scheduleId` stays its own id.")  # type: ignore[misc]  # Node's id field, here a resolver
    @staticmethod
    def id(root: ScheduleModel) -> strawberry.ID:
        return global_id("Schedule", root.schedule_id)

    @classmethod
    def is_type_of(cls, obj: Any, _info: Any) -> bool:
        return isinstance(obj, ScheduleModel | cls)

    name: str = strawberry.field(description="A name for people.")
    cron: str = strawberry.field(
        description="Cron expression: 5 fields, 6 with seconds first, or an alias (@hourly).")
    timezone: str = strawberry.field(description="IANA time zone the expression is read in.")
    job_template: JobTemplate = strawberry.field(description="The job created at each fire.")
    misfire_policy: MisfirePolicy = strawberry.field(
        description="What happens to fire times missed during downtime.")
    catch_up_limit: int = strawberry.field(
        description="With CATCH_UP, the most missed fire times that still get a job.")
    paused: bool = strawberry.field(description="A paused schedule creates nothing.")
    access_control: AccessControl = strawberry.field(
        description="Who may see (read), pause and resume (write), delete (admin) it.")
    owner: str | None = strawberry.field(
        description="User who created it; its jobs are created on their behalf.")
    created_at: datetime = strawberry.field(description="When the schedule was created.")
    updated_at: datetime = strawberry.field(description="When it last changed.")
    next_fire_at: datetime | None = strawberry.field(
        description="The next fire time not handled yet; null while paused.")
    last_fire_at: datetime | None = strawberry.field(
        description="The newest fire time a job was created for.")
    skipped_fires: int = strawberry.field(
        description="Fire times its misfire policy let pass without a job.")
    version: int = strawberry.field(description="Incremented by every change of the schedule.")

    @strawberry.field(description="Whether you may pause and resume it (`writeAccess`, "
                      "`adminAccess` or the admin role).")
    @staticmethod
    def viewer_can_write(root: ScheduleModel, info: Info) -> bool:
        return rights(info.context.principal, root.access_control).write

    @strawberry.field(description="Whether you may delete it and change its access control "
                      "(`adminAccess` or the admin role).")
    @staticmethod
    def viewer_can_admin(root: ScheduleModel, info: Info) -> bool:
        return rights(info.context.principal, root.access_control).admin

    @strawberry.field(description="Whether `deleteSchedule` would be accepted: as "
                      "`viewerCanAdmin`.")
    @staticmethod
    def viewer_can_delete(root: ScheduleModel, info: Info) -> bool:
        return rights(info.context.principal, root.access_control).admin

    @strawberry.field(description="The coming fire times, from now (none while paused).")
    @staticmethod
    def next_fire_times(
        root: ScheduleModel,
        count: Annotated[int, strawberry.argument(
            description=f"How many (1 to {MAX_NEXT_FIRE_TIMES}).")] = 5,
    ) -> list[datetime]:
        if not 1 <= count <= MAX_NEXT_FIRE_TIMES:
            raise ValidationError("count", f"must be between 1 and {MAX_NEXT_FIRE_TIMES}")
        if root.paused:
            return []
        start = max(utcnow(), root.next_fire_at) if root.next_fire_at else utcnow()
        return root.spec.upcoming(start - timedelta(milliseconds=1), count)

    @strawberry.field(description="The jobs this schedule created that you may read, newest "
                      "first.")
    @staticmethod
    async def jobs(
        root: ScheduleModel,
        info: Info,
        first: Annotated[int | None, FIRST] = None,
        after: Annotated[str | None, AFTER] = None,
        last: Annotated[int | None, LAST] = None,
        before: Annotated[str | None, BEFORE] = None,
    ) -> Connection[Annotated[SecretaryJob, strawberry.lazy("..jobs.types")]]:
        store, principal = info.context.store, info.context.principal
        page = await store.schedules.jobs_of(principal, root.schedule_id,
                                             page_request(first, after, last, before))
        connection = to_connection(page, lambda: store.schedules.count_jobs(
            principal, root.schedule_id))
        return connection


@strawberry.input(description="The job a schedule creates at each fire time.")
class JobTemplateInput:
    job_type: str = strawberry.field(description='Kind of job, e.g. "report".')
    parameters: JSON | None = strawberry.field(default=None, description="Input for the worker.")
    access_control: AccessControlInput | None = strawberry.field(
        default=None, description="Who may see and change the jobs; you are added as admin.")
    max_attempts: int | None = strawberry.field(
        default=None, description="Claims allowed per job before a failure is final.")
    priority: int = strawberry.field(
        default=0, description="-1000 to 1000, default 0: the jobs are claimed before jobs "
        "of lower priority.")

    def to_model(self) -> JobTemplateModel:
        parameters = cast(dict[str, Any] | None, self.parameters)  # JSON: any value, as before
        return JobTemplateModel(self.job_type, dict(parameters or {}),
                                access_or_none(self.access_control) or AccessControlModel(),
                                self.max_attempts, self.priority)


@strawberry.input(description="A new schedule.")
class CreateScheduleInput:
    name: str = strawberry.field(description="A name for people.")
    cron: str = strawberry.field(
        description='Cron expression, e.g. "0 9 * * MON-FRI"; 6 fields put seconds first.')
    job_template: JobTemplateInput = strawberry.field(description="The job to create each time.")
    timezone: str = strawberry.field(default="UTC",
                                     description="IANA time zone, e.g. Europe/Berlin.")
    misfire_policy: MisfirePolicy = strawberry.field(
        default=MisfirePolicy.SKIP, description="What to do about fire times missed during "
        "downtime.")
    catch_up_limit: int = strawberry.field(
        default=10, description="With CATCH_UP, the most missed fire times that still get a "
        "job (1 to 100).")
    paused: bool = strawberry.field(default=False, description="Create it paused.")
    access_control: AccessControlInput | None = strawberry.field(
        default=None, description="Who may see and change the schedule; you are added as "
        "admin.")


@strawberry.input(description="Which schedules to list.")
class ScheduleFilterInput:
    paused: bool | None = strawberry.field(default=None, description="Only paused (or running).")
    created_after: datetime | None = strawberry.field(
        default=None, description="Created strictly after this instant.")
    created_before: datetime | None = strawberry.field(
        default=None, description="Created strictly before this instant.")

    def to_filter(self) -> ScheduleFilter:
        return ScheduleFilter(self.paused, self.created_after, self.created_before)


async def fetch_schedules(context: Context, schedule_ids: list[str]) -> dict[str, ScheduleModel]:
    """``node(id:)`` for schedules: the readable ones among ``schedule_ids``."""
    return await context.store.schedules.get_many(context.principal, schedule_ids)
