"""How the embedded database slows as jobs pile up: ``python -m bench.embedded_scale``.

SecantusDB plans any filter with a top-level ``$or`` as a collection scan, and a worker's
filters have one: its lifecycle writes (the lease rule: the holder, or a writer that never
claimed the job) and its reads by id (what it may read, or what it holds). A reader's read
by id has none and stays an index lookup. Prints the median of each at growing numbers of
jobs, so that a developer can tell when to move to MongoDB (which uses its indexes for
both). Not durable (no fsync per commit), so what grows is the scan alone.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import time
from collections.abc import Awaitable, Callable
from typing import Any

from repository.access import Principal
from repository.database import Store
from repository.models import AccessControl, JobProgress

from .durability import scratch_store
from .seed import READER, seed_jobs

WORKER = Principal("bench-scale-worker", frozenset({"worker"}))


async def median_ms(call: Callable[[], Awaitable[Any]], times: int) -> float:
    durations = []
    for _ in range(times):
        started = time.perf_counter()
        await call()
        durations.append(time.perf_counter() - started)
    return statistics.median(durations) * 1000


async def at_size(store: Store, size: int, times: int) -> dict[str, float]:
    """A fresh job of the worker's, claimed, then each call ``times`` times."""
    job_type = f"scale-{size}"
    await store.jobs.create(WORKER, job_type=job_type,
                            access_control=AccessControl(read_access=[READER]))
    job = await store.jobs.claim(WORKER, [job_type])
    assert job is not None
    job_id, percent = job.job_id, iter(range(10**6))
    return {
        "jobs": size,
        "worker's progress ms": await median_ms(lambda: store.jobs.update_progress(
            WORKER, job_id, JobProgress("step", next(percent) % 100, "going")), times),
        "worker's job by id ms": await median_ms(lambda: store.jobs.get(WORKER, job_id), times),
        "reader's job by id ms": await median_ms(
            lambda: store.jobs.get(Principal(READER), job_id), times),
    }


async def measure(sizes: list[int], times: int) -> list[dict[str, float]]:
    rows = []
    async with scratch_store("scale", durable=False) as store:
        have = 0
        for size in sizes:
            if size > have:
                await seed_jobs(store, size - have, batches=0, start=have)
                have = size
            rows.append(await at_size(store, size, times))
            print(rows[-1], flush=True)
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[0, 1000, 5000])
    parser.add_argument("--times", type=int, default=9, help="calls per median")
    options = parser.parse_args()
    rows = asyncio.run(measure(options.sizes, options.times))
    names = [name for name in rows[0] if name != "jobs"]
    print(f"{'jobs':>8}" + "".join(f"{name:>24}" for name in names))
    for row in rows:
        print(f"{row['jobs']:>8}" + "".join(f"{row[name]:>24.1f}" for name in names))


if __name__ == "__main__":
    main()
