"""The worker baseline: ``python -m bench.direct SPEC.json``, the lifecycle's steps as
direct repository calls in one process (no HTTP, no GraphQL), timed by its own CPU."""

from __future__ import annotations

import asyncio
import os
import sys
import time
from typing import Any

from repository.access import Principal
from repository.database import Store, make_client
from repository.jobs import JobRepository
from repository.models import JobProgress

from .load import run_spec
from .measure import measured_window, percentiles


def _cpu_seconds() -> float:
    times = os.times()
    return times.user + times.system


async def lifecycle(jobs: JobRepository, principal: Principal, job_type: str) -> None:
    """The worker scenario's steps, as direct repository calls."""
    await jobs.create(principal, job_type=job_type, parameters={"source": "bench"})
    job = await jobs.claim(principal, [job_type])
    assert job is not None
    for percent in (25, 50, 75):
        await jobs.update_progress(principal, job.job_id, JobProgress("work", percent, "going"))
    for _ in range(2):
        await jobs.append_logs(principal, job.job_id, [("info", "step done")])
    await jobs.complete(principal, job.job_id, {"ok": True})


async def run(spec: dict[str, Any]) -> dict[str, Any]:
    client = make_client(spec["mongodb_uri"])
    store = Store(client, spec["database"])
    jobs = store.jobs
    lifecycles: list[float] = []
    window = {"measuring": False, "stop": False}

    async def worker(number: int) -> None:
        principal = Principal(f"bench-direct-{number}", frozenset({"worker"}))
        while not window["stop"]:
            started = time.perf_counter()
            await lifecycle(jobs, principal, f"bench-d{number}")
            if window["measuring"]:
                lifecycles.append(time.perf_counter() - started)

    tasks = [asyncio.create_task(worker(n)) for n in range(spec["workers"])]
    await asyncio.sleep(spec["warmup"])
    window["measuring"] = True
    cpu0, wall0 = _cpu_seconds(), time.perf_counter()
    await measured_window(spec["duration"], lambda: len(lifecycles), spec["workers"])
    cpu1, wall1 = _cpu_seconds(), time.perf_counter()
    window["measuring"] = False
    window["stop"] = True
    await asyncio.gather(*tasks)
    await client.close()
    count = len(lifecycles)
    return {
        "lifecycles": count,
        "cpu_per_op_us": round((cpu1 - cpu0) / count * 1e6, 1) if count else None,
        "throughput_per_s": round(count / (wall1 - wall0), 1),
        **percentiles(lifecycles),
        "process_cpu_s": round(cpu1 - cpu0, 3),
        "wall_s": round(wall1 - wall0, 3),
    }


def main(argv: list[str]) -> int:
    return run_spec(argv, run)


if __name__ == "__main__":
    raise SystemExit(main(sys.argv))
