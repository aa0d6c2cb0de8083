"""The lease reaper, for jobs and documentation jobs: every API process runs one; the
repositories' compare-and-set makes it safe for several to run at once."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import Any

from graph.support import tasks
from repository.database import DatabaseError
from repository.documentation_jobs import DocumentationJobRepository
from repository.jobs import JobRepository

logger = logging.getLogger("jobgraph.reaper")


class Reaper:
    def __init__(self, jobs: JobRepository, interval: float,
                 documentation_jobs: DocumentationJobRepository | None = None) -> None:
        self.jobs = jobs
        self.documentation_jobs = documentation_jobs
        self.interval = interval
        self.reaped = 0
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="jobgraph-reaper")

    async def stop(self) -> None:
        task, self._task = self._task, None
        if task is not None:
            await tasks.stop([task])

    async def sweep(self) -> int:
        """Reap until no expired lease is left; the number of jobs handled (documentation
        jobs included)."""
        handled = await self._drain(self.jobs.reap_expired_leases, "job",
                                    lambda job: job.max_attempts)
        if self.documentation_jobs is not None:
            handled += await self._drain(self.documentation_jobs.reap_expired_leases,
                                         "documentation job",
                                         lambda job: job.retry_policy.max_attempts)
        self.reaped += handled
        return handled

    async def _drain(self, reap: Callable[[], Awaitable[list[Any]]], kind: str,
                     most: Callable[[Any], int]) -> int:
        handled = 0
        while True:
            batch = await reap()
            handled += len(batch)
            for job in batch:
                logger.warning("lease expired: %s %s is now %s (attempt %d of %d)", kind,
                               job.job_id, job.status.value, job.attempts, most(job))
            if len(batch) < 100:
                return handled

    async def _run(self) -> None:
        while True:
            try:
                await self.sweep()
            except DatabaseError as exc:
                tasks.reraise_if_cancelled(exc)
                logger.warning("lease reaper could not reach the database: %s",
                               str(exc).splitlines()[0])
            except Exception as exc:
                tasks.reraise_if_cancelled(exc)
                logger.exception("lease reaper failed; it will try again")
            await asyncio.sleep(self.interval)
