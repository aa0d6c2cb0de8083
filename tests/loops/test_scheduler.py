"""The scheduler loop with a clock the test controls: fires what is due, applies each
schedule's misfire policy after downtime, reports to metrics, and keeps going when one
schedule cannot fire."""

from __future__ import annotations

from datetime import UTC, datetime

from graph.loops.scheduler import Scheduler
from graph.server.metrics import Metrics
from repository.access import Principal
from repository.database import Store
from repository.schedules import JobTemplate, MisfirePolicy

ALICE = Principal("alice")
CREATED = datetime(2026, 6, 1, 6, 30, tzinfo=UTC)


class Clock:
    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now


def sample(metrics: Metrics, name: str) -> float:
    return metrics.registry.get_sample_value(name) or 0.0


async def test_after_downtime_skip_and_catch_up_do_as_configured(store: Store) -> None:
    # given: two hourly schedules made at 06:30, one skipping, one catching up (at most 2)
    skip = await store.schedules.create(ALICE, name="skip", cron="0 * * * *",
                                        job_template=JobTemplate("a"), now=CREATED)
    catch_up = await store.schedules.create(
        ALICE, name="catch up", cron="0 * * * *", job_template=JobTemplate("b"),
        misfire_policy=MisfirePolicy.CATCH_UP, catch_up_limit=2, now=CREATED)
    clock = Clock(datetime(2026, 6, 1, 7, 0, 0, 500000, tzinfo=UTC))
    metrics = Metrics()
    scheduler = Scheduler(store.schedules, interval=1, grace=30, metrics=metrics, clock=clock)

    # when: on time at 07:00, then nothing runs until 11:45
    await scheduler.tick()
    clock.now = datetime(2026, 6, 1, 11, 45, tzinfo=UTC)
    await scheduler.tick()

    # then: skip fired 07:00 only; catch-up fired 07:00, then 10:00 and 11:00
    async def ticks(schedule_id: str) -> list[int]:
        jobs = await store.jobs.collection.find({"schedule_id": schedule_id}).to_list()
        return sorted(job["scheduled_for"].hour for job in jobs)
    assert await ticks(skip.schedule_id) == [7]
    assert await ticks(catch_up.schedule_id) == [7, 10, 11]
    assert (await store.schedules.get(ALICE, skip.schedule_id)).skipped_fires == 4
    assert (await store.schedules.get(ALICE, catch_up.schedule_id)).skipped_fires == 2
    assert sample(metrics, "jobgraph_schedule_fires_total") == 4
    assert sample(metrics, "jobgraph_schedule_skipped_fires_total") == 6
    assert scheduler.fired == 4

    # and: nothing is due until noon
    assert await scheduler.tick() == []


async def test_one_broken_schedule_does_not_stop_the_others(store: Store) -> None:
    # given: a schedule whose stored template can no longer make a job
    broken = await store.schedules.create(ALICE, name="broken", cron="0 * * * *",
                                          job_template=JobTemplate("a"), now=CREATED)
    await store.schedules.collection.update_one({"_id": broken.schedule_id},
                                                {"$set": {"job_template.max_attempts": 0}})
    fine = await store.schedules.create(ALICE, name="fine", cron="0 * * * *",
                                        job_template=JobTemplate("b"), now=CREATED)
    scheduler = Scheduler(store.schedules, interval=1, grace=30,
                          clock=Clock(datetime(2026, 6, 1, 7, 0, 1, tzinfo=UTC)))

    # when
    firings = await scheduler.tick()

    # then
    assert len(firings) == 1
    assert await store.jobs.collection.count_documents({"schedule_id": fine.schedule_id}) == 1
