"""The ``schedules`` collection: cron and time zones, one job per fire time however many
processes fire at once, the misfire policies, pause and resume, access control."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

import pytest

from repository.cron import cron_spec
from repository.database import Store
from repository.errors import ForbiddenError, NotFoundError, ValidationError
from repository.models import AccessControl, AccessVisibility
from repository.pagination import PageRequest
from repository.schedules import JobTemplate, MisfirePolicy, ScheduleFilter, scheduled_job_id

from .support import ALICE, ANON, BOB, CAROL, ROOT

T0 = datetime(2026, 3, 2, 8, 30, tzinfo=UTC)  # a Monday
HOURLY = "0 * * * *"


def template(**fields: object) -> JobTemplate:
    return JobTemplate(job_type="report", parameters={"kind": "daily"}, **fields)  # type: ignore[arg-type]


async def test_a_schedule_knows_its_next_fire_time_in_its_own_time_zone(store: Store) -> None:
    # when: 09:00 in Berlin (UTC+1 in March before the change) is 08:00 UTC
    schedule = await store.schedules.create(
        ALICE, name="morning", cron="0 9 * * *", timezone="Europe/Berlin",
        job_template=template(), now=T0)

    # then
    assert schedule.next_fire_at == datetime(2026, 3, 3, 8, 0, tzinfo=UTC)
    assert schedule.access_control.admin_access == ["alice"]
    assert (await store.schedules.get(ALICE, schedule.schedule_id)).next_fire_at == \
        schedule.next_fire_at


def test_daylight_saving_keeps_the_local_hour() -> None:
    spec = cron_spec("0 9 * * *", "Europe/Berlin")

    # when: across the change to summer time (29 March 2026)
    before, after = spec.upcoming(datetime(2026, 3, 28, 0, 0, tzinfo=UTC), 2)

    # then: 09:00 local is 08:00 UTC, then 07:00 UTC
    assert (before, after) == (datetime(2026, 3, 28, 8, 0, tzinfo=UTC),
                               datetime(2026, 3, 29, 7, 0, tzinfo=UTC))


def test_seconds_come_first_in_six_fields() -> None:
    spec = cron_spec("*/20 * * * * *", "UTC")

    assert spec.upcoming(datetime(2026, 1, 1, tzinfo=UTC), 3) == [
        datetime(2026, 1, 1, 0, 0, second, tzinfo=UTC) for second in (20, 40)] + [
        datetime(2026, 1, 1, 0, 1, tzinfo=UTC)]


@pytest.mark.parametrize(("cron", "timezone", "field"), [
    ("* * *", "UTC", "cron"),
    ("61 * * * *", "UTC", "cron"),
    ("0 0 31 2 *", "UTC", "cron"),
    ("@reboot", "UTC", "cron"),
    ("* * * * * * *", "UTC", "cron"),
    ("0 9 * * *", "Mars/Olympus", "timezone"),
    ("0 9 * * *", "../../etc/passwd", "timezone"),
])
async def test_bad_cron_or_time_zone_is_refused_by_name(store: Store, cron: str, timezone: str,
                                                        field: str) -> None:
    with pytest.raises(ValidationError) as raised:
        await store.schedules.create(ALICE, name="bad", cron=cron, timezone=timezone,
                                     job_template=template())
    assert raised.value.field == field
    assert await store.schedules.collection.count_documents({}) == 0


async def test_an_unusable_template_or_caller_is_refused(store: Store) -> None:
    with pytest.raises(ValidationError):
        await store.schedules.create(ALICE, name="x", cron=HOURLY,
                                     job_template=JobTemplate(job_type="r", max_attempts=0))
    with pytest.raises(ValidationError):
        await store.schedules.create(ALICE, name="x", cron=HOURLY,
                                     job_template=JobTemplate("r", {"$where": 1}))
    with pytest.raises(ForbiddenError):
        await store.schedules.create(ANON, name="x", cron=HOURLY, job_template=template())


async def test_two_processes_firing_at_once_create_one_job_per_tick(store: Store) -> None:
    # given: a schedule due at 09:00, seen by two schedulers at 09:00:01
    schedule = await store.schedules.create(ALICE, name="hourly", cron=HOURLY,
                                            job_template=template(), now=T0)
    now = datetime(2026, 3, 2, 9, 0, 1, tzinfo=UTC)
    [seen] = await store.schedules.due(now)

    # when
    first, second = await asyncio.gather(store.schedules.fire(seen, now),
                                         store.schedules.fire(seen, now))

    # then: one job, made by exactly one of them; the schedule moved on once
    jobs = await store.jobs.collection.find({"schedule_id": schedule.schedule_id}).to_list()
    assert len(jobs) == 1
    assert len(first.created) + len(second.created) == 1
    assert [first.advanced, second.advanced].count(True) == 1
    job = jobs[0]
    assert job["_id"] == scheduled_job_id(schedule.schedule_id, datetime(2026, 3, 2, 9, 0,
                                                                        tzinfo=UTC))
    assert job["scheduled_for"] == datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
    assert job["job_type"] == "report" and job["parameters"] == {"kind": "daily"}
    stored = await store.schedules.get(ALICE, schedule.schedule_id)
    assert stored.next_fire_at == datetime(2026, 3, 2, 10, 0, tzinfo=UTC)
    assert stored.last_fire_at == datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
    assert await store.schedules.due(now) == []


async def test_the_same_tick_fired_late_by_a_slow_process_creates_nothing(store: Store) -> None:
    # given: a scheduler fired 09:00; a slow one still holds the schedule as it was
    await store.schedules.create(ALICE, name="hourly", cron=HOURLY, job_template=template(),
                                 now=T0)
    now = datetime(2026, 3, 2, 9, 0, 2, tzinfo=UTC)
    [stale] = await store.schedules.due(now)
    await store.schedules.fire(stale, now)

    # when
    late = await store.schedules.fire(stale, now + timedelta(seconds=3))

    # then
    assert late.created == [] and not late.advanced
    assert await store.jobs.collection.count_documents({}) == 1


async def test_skip_passes_over_missed_ticks_after_downtime(store: Store) -> None:
    # given: down from 08:30 to 13:20; ticks at 09, 10, 11, 12 and 13 were missed
    schedule = await store.schedules.create(ALICE, name="hourly", cron=HOURLY,
                                            job_template=template(), now=T0)
    now = datetime(2026, 3, 2, 13, 20, tzinfo=UTC)

    # when: 13:00 is 20 minutes old, beyond a grace of 60 s
    firing = await store.schedules.fire((await store.schedules.due(now))[0], now, grace=60)

    # then
    assert firing.created == [] and firing.skipped == 5
    stored = await store.schedules.get(ALICE, schedule.schedule_id)
    assert stored.next_fire_at == datetime(2026, 3, 2, 14, 0, tzinfo=UTC)
    assert stored.skipped_fires == 5 and stored.last_fire_at is None


async def test_skip_still_fires_a_tick_within_the_grace(store: Store) -> None:
    await store.schedules.create(ALICE, name="hourly", cron=HOURLY, job_template=template(),
                                 now=T0)
    now = datetime(2026, 3, 2, 11, 0, 30, tzinfo=UTC)

    firing = await store.schedules.fire((await store.schedules.due(now))[0], now, grace=60)

    assert firing.fire_times == [datetime(2026, 3, 2, 11, 0, tzinfo=UTC)]
    assert len(firing.created) == 1 and firing.skipped == 2


async def test_catch_up_fires_the_newest_missed_ticks_up_to_its_limit(store: Store) -> None:
    # given: five missed ticks, a catch-up limit of three
    schedule = await store.schedules.create(
        ALICE, name="hourly", cron=HOURLY, job_template=template(),
        misfire_policy=MisfirePolicy.CATCH_UP, catch_up_limit=3, now=T0)
    now = datetime(2026, 3, 2, 13, 20, tzinfo=UTC)

    # when
    firing = await store.schedules.fire((await store.schedules.due(now))[0], now)

    # then: 11, 12 and 13 o'clock, oldest first; 9 and 10 skipped
    expected = [datetime(2026, 3, 2, hour, 0, tzinfo=UTC) for hour in (11, 12, 13)]
    assert [job.scheduled_for for job in firing.created] == expected
    assert firing.skipped == 2
    page = await store.schedules.jobs_of(ALICE, schedule.schedule_id, PageRequest(first=10))
    assert sorted(job.scheduled_for for job in page.items) == expected  # type: ignore[type-var]
    assert {job.schedule_id for job in page.items} == {schedule.schedule_id}


async def test_a_paused_schedule_is_never_due_and_resumes_from_now(store: Store) -> None:
    schedule = await store.schedules.create(ALICE, name="hourly", cron=HOURLY,
                                            job_template=template(), now=T0)

    paused = await store.schedules.pause(ALICE, schedule.schedule_id)
    assert paused.paused and paused.next_fire_at is None
    assert await store.schedules.due(datetime(2030, 1, 1, tzinfo=UTC)) == []

    # when: resumed at 15:10, the ticks of the pause are not misfires
    resumed = await store.schedules.resume(ALICE, schedule.schedule_id,
                                           now=datetime(2026, 3, 2, 15, 10, tzinfo=UTC))

    # then
    assert not resumed.paused
    assert resumed.next_fire_at == datetime(2026, 3, 2, 16, 0, tzinfo=UTC)
    again = await store.schedules.resume(ALICE, schedule.schedule_id)
    assert again.next_fire_at == resumed.next_fire_at  # resuming a running one: no change


async def test_schedules_follow_the_access_rules_of_jobs(store: Store) -> None:
    # given: bob may read alice's schedule, carol may not
    schedule = await store.schedules.create(
        ALICE, name="shared", cron=HOURLY, job_template=template(),
        access_control=AccessControl(read_access=["bob"]), now=T0)
    sid = schedule.schedule_id

    # then
    assert (await store.schedules.get(BOB, sid)).name == "shared"
    with pytest.raises(NotFoundError):
        await store.schedules.get(CAROL, sid)
    with pytest.raises(ForbiddenError):
        await store.schedules.pause(BOB, sid)
    with pytest.raises(NotFoundError):
        await store.schedules.pause(CAROL, sid)
    with pytest.raises(ForbiddenError):
        await store.schedules.delete(BOB, sid)
    assert await store.schedules.count(BOB, ScheduleFilter()) == 1
    assert await store.schedules.count(CAROL, ScheduleFilter()) == 0
    assert await store.schedules.count(ROOT, ScheduleFilter(paused=False)) == 1

    public = await store.schedules.set_access(ALICE, sid, AccessControl(
        AccessVisibility.PUBLIC, admin_access=["alice"]))
    assert public.access_control.visibility is AccessVisibility.PUBLIC
    assert (await store.schedules.get(ANON, sid)).schedule_id == sid

    deleted = await store.schedules.delete(ALICE, sid)
    assert deleted.schedule_id == sid
    with pytest.raises(NotFoundError):
        await store.schedules.get(ALICE, sid)


async def test_the_created_jobs_take_the_template_access(store: Store) -> None:
    # given: the template shares its jobs with carol, the schedule itself with bob
    schedule = await store.schedules.create(
        ALICE, name="shared", cron=HOURLY,
        job_template=template(access_control=AccessControl(read_access=["carol"])),
        access_control=AccessControl(read_access=["bob"]), now=T0)
    now = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
    await store.schedules.fire((await store.schedules.due(now))[0], now)

    # then: carol reads the job, bob does not; alice (the owner) administers it
    for caller, count in ((CAROL, 1), (BOB, 0), (ALICE, 1)):
        assert await store.schedules.count_jobs(caller, schedule.schedule_id) == count
    [job] = (await store.schedules.jobs_of(ALICE, schedule.schedule_id,
                                           PageRequest(first=5))).items
    assert job.access_control.admin_access == ["alice"] and job.owner == "alice"


async def test_the_created_jobs_take_the_template_priority(store: Store) -> None:
    # given: a template with a priority, and one stored before templates had any
    schedule = await store.schedules.create(ALICE, name="urgent", cron=HOURLY,
                                            job_template=template(priority=5), now=T0)
    older = await store.schedules.create(ALICE, name="old", cron=HOURLY,
                                         job_template=template(), now=T0)
    await store.schedules.collection.update_one({"_id": older.schedule_id},
                                                {"$unset": {"job_template.priority": 1}})
    with pytest.raises(ValidationError) as raised:
        await store.schedules.create(ALICE, name="x", cron=HOURLY,
                                     job_template=template(priority=5000))
    assert raised.value.field == "priority"

    # when
    now = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
    for due in await store.schedules.due(now):
        await store.schedules.fire(due, now)

    # then
    priorities = {job["schedule_id"]: job["priority"]
                  async for job in store.jobs.collection.find({})}
    assert priorities == {schedule.schedule_id: 5, older.schedule_id: 0}
