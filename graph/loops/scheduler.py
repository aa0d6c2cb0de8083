"""The scheduler: every API process runs one. Each tick reads the schedules whose next
fire time has come and fires them; a fire time's job has one id and moving a schedule
on is conditional, so any number of processes together create one job per tick."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from datetime import datetime
from typing import Any

from graph.support import tasks
from repository.database import DatabaseError
from repository.models import utcnow
from repository.schedules import Firing, ScheduleRepository

logger = logging.getLogger("jobgraph.scheduler")


class Scheduler:
    def __init__(self, schedules: ScheduleRepository, *, interval: float, grace: float,
                 metrics: Any = None, clock: Callable[[], datetime] = utcnow) -> None:
        self.schedules = schedules
        self.interval = interval
        self.grace = grace
        self.metrics = metrics
        """Optional ``graph.server.metrics.Metrics``: fires and skipped fire times."""
        self.clock = clock
        self.fired = 0
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="jobgraph-scheduler")

    async def stop(self) -> None:
        task, self._task = self._task, None
        if task is not None:
            await tasks.stop([task])

    async def tick(self) -> list[Firing]:
        """Fire every schedule that is due now (by ``clock``)."""
        now = self.clock()
        firings = []
        for schedule in await self.schedules.due(now):
            try:
                firing = await self.schedules.fire(schedule, now, grace=self.grace)
            except DatabaseError:
                raise
            except Exception:  # one broken schedule must not stop the others
                logger.exception("schedule %s could not fire", schedule.schedule_id)
                continue
            firings.append(firing)
            self.fired += len(firing.created)
            for job in firing.created:
                logger.info("schedule %s created job %s for %s", schedule.schedule_id,
                            job.job_id, job.scheduled_for.isoformat()
                            if job.scheduled_for else None)
            if firing.skipped:
                logger.warning("schedule %s skipped %d missed fire time(s) (misfire policy %s)",
                               schedule.schedule_id, firing.skipped,
                               schedule.misfire_policy.value)
            if self.metrics is not None:
                self.metrics.schedule_fired(len(firing.created), firing.skipped)
        return firings

    async def _run(self) -> None:
        while True:
            try:
                await self.tick()
            except DatabaseError as exc:
                tasks.reraise_if_cancelled(exc)
                logger.warning("scheduler could not reach the database: %s",
                               str(exc).splitlines()[0])
            except Exception as exc:
                tasks.reraise_if_cancelled(exc)
                logger.exception("scheduler failed; it will try again")
            await asyncio.sleep(self.interval)
