"""The ``schedules`` collection: recurring job templates fired by cron expressions.

Exactly one job per schedule and fire time, however many processes fire at once: the
job's ``_id`` is derived from the schedule id and the fire time (a name-based UUID), so
a second insert of the same tick fails on ``_id`` itself (unique on every deployment,
sharded ones included). A process that loses that race creates nothing, and moving
``next_fire_at`` on is one conditional update on its old value, so it happens once.

Access control is the jobs' (read, write = pause/resume, admin = delete and change
access); the jobs a schedule creates take its template's access control and name the
schedule (``schedule_id``, ``scheduled_for``).
"""

from __future__ import annotations

import builtins
import uuid
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any, Literal

from pymongo import ASCENDING, DESCENDING, IndexModel, ReturnDocument
from pymongo.errors import DuplicateKeyError

from .access import Principal, admin_filter, read_filter, write_filter
from .cron import CronSpec, cron_spec
from .documents import access_update, bump_version, rename_id, with_access
from .errors import NotFoundError, ValidationError
from .job_documents import job_from_document, job_to_document
from .jobs import JobRepository, require_user
from .limits import Limits
from .models import AccessControl, SecretaryJob, new_id, utcnow
from .mongo_types import Collection
from .pagination import Page, PageRequest, fetch_page, filter_query, keyset_indexes
from .refusals import refuse
from .validation import check_document, check_text

MAX_CATCH_UP = 100
SCHEDULE_JOB_NAMESPACE = uuid.UUID("0b0c5b5e-8a44-4c1e-9f52-7d1c2a6a3f10")


class MisfirePolicy(StrEnum):
    SKIP = "SKIP"
    CATCH_UP = "CATCH_UP"


INDEXES = [
    IndexModel([("readers", ASCENDING), ("created_at", DESCENDING), ("_id", DESCENDING)],
               name="readers_created"),
    IndexModel([("created_at", DESCENDING), ("_id", DESCENDING)], name="created"),
    IndexModel([("paused", ASCENDING), ("created_at", DESCENDING), ("_id", DESCENDING)],
               name="paused_created"),
    # the scheduler: schedules whose next fire time has come (paused ones have none)
    IndexModel([("next_fire_at", ASCENDING)], name="due"),
]
INDEXES += keyset_indexes({"paused": "paused"}, {"": "", "readers": "readers"}, INDEXES)

_SCHEDULED = {"schedule_id": {"$exists": True}}
JOB_INDEXES = [
    # a schedule's jobs, for each branch of the jobs' read filter; partial, so jobs that
    # no schedule created cost these indexes nothing
    IndexModel([(prefix, ASCENDING) for prefix in prefixes]
               + [("created_at", DESCENDING), ("_id", DESCENDING)],
               name="_".join([*names, "created"]), partialFilterExpression=_SCHEDULED)
    for prefixes, names in ((["schedule_id"], ["schedule"]),
                            (["readers", "schedule_id"], ["readers", "schedule"]),
                            (["claimed_by", "schedule_id"], ["claimed", "schedule"]))
]
"""Indexes on ``jobs`` that serve ``Schedule.jobs``; declared here, created by
``ScheduleRepository.ensure_indexes``."""


@dataclass
class JobTemplate:
    job_type: str
    parameters: dict[str, Any] = field(default_factory=dict)
    access_control: AccessControl = field(default_factory=AccessControl)
    max_attempts: int | None = None
    priority: int = 0
    """The created jobs' priority (schedules stored before priorities existed: 0)."""


@dataclass
class Schedule:
    schedule_id: str
    name: str
    cron: str
    timezone: str
    job_template: JobTemplate
    misfire_policy: MisfirePolicy = MisfirePolicy.SKIP
    catch_up_limit: int = 10
    paused: bool = False
    access_control: AccessControl = field(default_factory=AccessControl)
    owner: str | None = None
    created_at: datetime = field(default_factory=utcnow)
    updated_at: datetime = field(default_factory=utcnow)
    next_fire_at: datetime | None = None
    """The oldest fire time not handled yet; None while paused."""
    last_fire_at: datetime | None = None
    """The newest fire time a job was created for."""
    skipped_fires: int = 0
    """Fire times the misfire policy let pass without a job (counted up to 10,000 a time)."""
    version: int = 0

    @property
    def spec(self) -> CronSpec:
        return CronSpec(self.cron, self.timezone)


@dataclass(frozen=True)
class ScheduleFilter:
    paused: bool | None = None
    created_after: datetime | None = None
    created_before: datetime | None = None

    def query(self) -> dict[str, Any]:
        return filter_query({"paused": self.paused}, self.created_after, self.created_before)


@dataclass(frozen=True)
class Firing:
    """What one ``fire`` call did."""

    created: list[SecretaryJob]
    """Jobs this call inserted (another process may have inserted the others)."""
    fire_times: list[datetime]
    """Fire times that get a job (whoever inserted it)."""
    skipped: int
    """Fire times passed over by the misfire policy (counted by the call that advanced)."""
    advanced: bool


def schedule_to_document(schedule: Schedule) -> dict[str, Any]:
    template = schedule.job_template
    doc = {
        "_id": schedule.schedule_id,
        "name": schedule.name,
        "cron": schedule.cron,
        "timezone": schedule.timezone,
        "job_template": {
            "job_type": template.job_type,
            "parameters": template.parameters,
            "access_control": {"visibility": template.access_control.visibility.value,
                               "read_access": template.access_control.read_access,
                               "write_access": template.access_control.write_access,
                               "admin_access": template.access_control.admin_access},
            "max_attempts": template.max_attempts,
            "priority": template.priority,
        },
        "misfire_policy": schedule.misfire_policy.value,
        "catch_up_limit": schedule.catch_up_limit,
        "paused": schedule.paused,
        "owner": schedule.owner,
        "created_at": schedule.created_at,
        "updated_at": schedule.updated_at,
        "next_fire_at": schedule.next_fire_at,
        "last_fire_at": schedule.last_fire_at,
        "skipped_fires": schedule.skipped_fires,
        "version": schedule.version,
    }
    return with_access(doc, schedule.access_control)


def schedule_from_document(doc: dict[str, Any]) -> Schedule:
    data = rename_id(doc, "schedule_id")
    data["access_control"] = AccessControl(**data["access_control"])
    template = dict(data["job_template"])
    template["access_control"] = AccessControl(**template["access_control"])
    data["job_template"] = JobTemplate(**template)
    data["misfire_policy"] = MisfirePolicy(data["misfire_policy"])
    return Schedule(**data)


def scheduled_job_id(schedule_id: str, fire_time: datetime) -> str:
    """The one job id of a schedule's fire time: the unique key of a tick."""
    return str(uuid.uuid5(SCHEDULE_JOB_NAMESPACE, f"{schedule_id}@{fire_time.isoformat()}"))


class ScheduleRepository:
    def __init__(self, collection: Collection, jobs: JobRepository,
                 limits: Limits | None = None) -> None:
        self.collection = collection
        self.jobs = jobs
        self.limits = limits or jobs.limits

    async def ensure_indexes(self) -> None:
        await self.collection.create_indexes(INDEXES)
        await self.jobs.collection.create_indexes(JOB_INDEXES)

    # -- creation and reads ---------------------------------------------------

    async def create(
        self,
        principal: Principal,
        *,
        name: str,
        cron: str,
        timezone: str = "UTC",
        job_template: JobTemplate,
        misfire_policy: MisfirePolicy = MisfirePolicy.SKIP,
        catch_up_limit: int = 10,
        access_control: AccessControl | None = None,
        paused: bool = False,
        now: datetime | None = None,
    ) -> Schedule:
        require_user(principal)
        check_text("name", name, max_length=self.limits.max_text_length)
        spec = cron_spec(cron, timezone)
        if not 1 <= catch_up_limit <= MAX_CATCH_UP:
            raise ValidationError("catchUpLimit", f"must be between 1 and {MAX_CATCH_UP}")
        # the template must make a valid job now, not fail at every tick later
        self.jobs.new_job(principal, job_type=job_template.job_type,
                          parameters=job_template.parameters,
                          access_control=job_template.access_control,
                          max_attempts=job_template.max_attempts,
                          priority=job_template.priority)
        check_document("jobTemplate.parameters", job_template.parameters,
                       max_bytes=self.limits.max_payload_bytes)
        now = now or utcnow()
        schedule = Schedule(
            schedule_id=new_id(), name=name, cron=spec.expression, timezone=spec.timezone,
            job_template=job_template, misfire_policy=MisfirePolicy(misfire_policy),
            catch_up_limit=catch_up_limit, paused=paused,
            access_control=(access_control or AccessControl()).with_admin(principal.user_id),
            owner=principal.user_id, created_at=now, updated_at=now,
            next_fire_at=None if paused else spec.next_after(now))
        await self.collection.insert_one(schedule_to_document(schedule))
        return schedule

    async def get(self, principal: Principal, schedule_id: str) -> Schedule:
        doc = await self.collection.find_one({"_id": schedule_id, **read_filter(principal)})
        if doc is None:
            raise NotFoundError(f"schedule {schedule_id!r} not found")
        return schedule_from_document(doc)

    async def get_many(self, principal: Principal, schedule_ids: list[str]
                       ) -> dict[str, Schedule]:
        query = {"_id": {"$in": list(schedule_ids)}, **read_filter(principal)}
        return {doc["_id"]: schedule_from_document(doc)
                async for doc in self.collection.find(query)}

    def _list_query(self, principal: Principal, schedule_filter: ScheduleFilter
                    ) -> dict[str, Any]:
        return {**schedule_filter.query(), **read_filter(principal)}

    async def list(self, principal: Principal, schedule_filter: ScheduleFilter,
                   page: PageRequest) -> Page[Schedule]:
        page = page.validated(self.limits.max_page_size)
        return await fetch_page(self.collection, self._list_query(principal, schedule_filter),
                                page, schedule_from_document)

    async def count(self, principal: Principal, schedule_filter: ScheduleFilter) -> int:
        return await self.collection.count_documents(
            self._list_query(principal, schedule_filter))

    def _jobs_query(self, principal: Principal, schedule_id: str) -> dict[str, Any]:
        return {"schedule_id": schedule_id, **read_filter(principal, claimable=True)}

    async def jobs_of(self, principal: Principal, schedule_id: str, page: PageRequest
                      ) -> Page[SecretaryJob]:
        """The jobs a schedule created that the caller may read, newest first."""
        page = page.validated(self.limits.max_page_size)
        return await fetch_page(self.jobs.collection, self._jobs_query(principal, schedule_id),
                                page, job_from_document)

    async def count_jobs(self, principal: Principal, schedule_id: str) -> int:
        return await self.jobs.collection.count_documents(
            self._jobs_query(principal, schedule_id))

    # -- changes --------------------------------------------------------------

    async def pause(self, principal: Principal, schedule_id: str) -> Schedule:
        return await self._update(principal, schedule_id, {"$set": {
            "paused": True, "next_fire_at": None}}, "write", "pause")

    async def resume(self, principal: Principal, schedule_id: str,
                     now: datetime | None = None) -> Schedule:
        """Fires from the next tick after now: the paused time is not a misfire. Resuming
        a running schedule changes nothing."""
        current = await self.get(principal, schedule_id)
        next_fire = current.spec.next_after(now or utcnow())
        return await self._update(principal, schedule_id, {"$set": {
            "paused": False, "next_fire_at": next_fire}}, "write", "resume",
            extra={"paused": True})

    async def set_access(self, principal: Principal, schedule_id: str,
                         access: AccessControl) -> Schedule:
        return await self._update(principal, schedule_id, {"$set": access_update(access)},
                                  "admin", "change the access control of")

    async def delete(self, principal: Principal, schedule_id: str) -> Schedule:
        """The schedule goes; the jobs it created stay (they name it still)."""
        doc = await self.collection.find_one_and_delete(
            {"_id": schedule_id, **admin_filter(principal)})
        if doc is None:
            await refuse(self.collection, principal, schedule_id, kind="schedule",
                         action="delete", need="admin")
        return schedule_from_document(doc)

    async def _update(self, principal: Principal, schedule_id: str, update: dict[str, Any],
                      need: Literal["write", "admin"], action: str,
                      extra: dict[str, Any] | None = None) -> Schedule:
        permission = admin_filter(principal) if need == "admin" else write_filter(principal)
        update = {**update, "$set": {**update["$set"], "updated_at": utcnow()}}
        doc = await self.collection.find_one_and_update(
            {"_id": schedule_id, **permission, **(extra or {})}, bump_version(update),
            return_document=ReturnDocument.AFTER)
        if doc is None and extra:  # already in the state asked for: nothing to change
            doc = await self.collection.find_one({"_id": schedule_id, **permission})
        if doc is None:
            await refuse(self.collection, principal, schedule_id, kind="schedule",
                         action=action, need=need)
        return schedule_from_document(doc)

    # -- firing (the scheduler) -------------------------------------------------

    async def due(self, now: datetime, *, limit: int = 100) -> builtins.list[Schedule]:
        """Unpaused schedules whose next fire time has come, the longest waiting first."""
        docs = await self.collection.find(
            {"next_fire_at": {"$lte": now}}, sort=[("next_fire_at", ASCENDING)], limit=limit,
        ).to_list()
        return [schedule_from_document(doc) for doc in docs]

    def fire_times(self, schedule: Schedule, now: datetime, grace: float
                   ) -> tuple[builtins.list[datetime], int]:
        """The fire times up to ``now`` that get a job, and how many are skipped.

        SKIP: only the newest missed time, and only if it is at most ``grace`` seconds
        old (a scheduler a moment late still fires). CATCH_UP: the newest
        ``catch_up_limit`` missed times, oldest first.
        """
        first = schedule.next_fire_at
        if first is None or first > now:
            return [], 0
        spec = schedule.spec
        if schedule.misfire_policy is MisfirePolicy.CATCH_UP:
            chosen = spec.recent(first, now, schedule.catch_up_limit)
        else:
            chosen = [tick for tick in spec.recent(first, now, 1)
                      if now - tick <= timedelta(seconds=grace)]
        skipped = spec.count_between(first, chosen[0] if chosen else now + timedelta(
            milliseconds=1))
        return chosen, skipped

    async def fire(self, schedule: Schedule, now: datetime, *, grace: float = 60.0) -> Firing:
        """Create the jobs of the fire times that have come, then move ``next_fire_at`` on.

        Safe to run in several processes at once: each fire time's job has one id, and
        the move is conditional on the ``next_fire_at`` this call read.
        """
        times, skipped = self.fire_times(schedule, now, grace)
        created = []
        for tick in times:
            job = await self._create_job(schedule, tick)
            if job is not None:
                created.append(job)
        update: dict[str, Any] = {
            "$set": {"next_fire_at": schedule.spec.next_after(now), "updated_at": utcnow()},
            "$inc": {"skipped_fires": skipped}}
        if times:
            update["$max"] = {"last_fire_at": times[-1]}
        result = await self.collection.update_one(
            {"_id": schedule.schedule_id, "next_fire_at": schedule.next_fire_at},
            bump_version(update))
        return Firing(created, times, skipped if result.modified_count else 0,
                      bool(result.modified_count))

    async def _create_job(self, schedule: Schedule, tick: datetime) -> SecretaryJob | None:
        template = schedule.job_template
        owner = Principal(schedule.owner)
        job = self.jobs.new_job(owner, job_type=template.job_type,
                                parameters=template.parameters,
                                access_control=template.access_control,
                                max_attempts=template.max_attempts,
                                priority=template.priority)
        job = replace(job, job_id=scheduled_job_id(schedule.schedule_id, tick),
                      schedule_id=schedule.schedule_id, scheduled_for=tick)
        try:
            await self.jobs.collection.insert_one(job_to_document(job))
        except DuplicateKeyError:
            return None  # another process created this fire time's job first
        return job
