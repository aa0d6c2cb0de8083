"""The lease reaper: every API process runs one; the repository's compare-and-set
makes it safe for several to run at once."""

from __future__ import annotations

import asyncio
import contextlib
import logging

from repository.database import DatabaseError
from repository.jobs import JobRepository

logger = logging.getLogger("jobgraph.reaper")


class Reaper:
    def __init__(self, jobs: JobRepository, interval: float) -> None:
        self.jobs = jobs
        self.interval = interval
        self.reaped = 0
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="jobgraph-reaper")

    async def stop(self) -> None:
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    async def sweep(self) -> int:
        """Reap until no expired lease is left; the number of jobs handled."""
        handled = 0
        while True:
            batch = await self.jobs.reap_expired_leases()
            handled += len(batch)
            for job in batch:
                logger.warning("claim ended (lease expired or deadline passed): job %s is now "
                               "%s (attempt %d of %d)", job.job_id, job.status.value,
                               job.attempts, job.max_attempts)
            if len(batch) < 100:
                self.reaped += handled
                return handled

    async def _run(self) -> None:
        while True:
            try:
                await self.sweep()
            except DatabaseError as exc:
                logger.warning("lease reaper could not reach the database: %s",
                               str(exc).splitlines()[0])
            except Exception:
                logger.exception("lease reaper failed; it will try again")
            await asyncio.sleep(self.interval)
