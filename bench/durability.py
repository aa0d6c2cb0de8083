"""What the embedded database's sync-on-commit costs: ``python -m bench.durability``.

Runs the same writes against a durable embedded server (every commit journaled to
disk before it is acknowledged) and one without ``--sync-on-commit``: sequential job
lifecycles (create, claim, two log appends, complete), the same with 8 at once, and
batches of 100 jobs. Prints writes per second and the median lifecycle for each.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import statistics
import tempfile
import time
from collections.abc import AsyncIterator
from pathlib import Path

from repository.access import Principal
from repository.batches import JobSpec
from repository.database import EmbeddedServer, Store, make_client

USER = Principal("bench", frozenset({"worker"}))
WRITES_PER_LIFECYCLE = 5


async def lifecycle(store: Store, job_type: str) -> float:
    started = time.perf_counter()
    await store.jobs.create(USER, job_type=job_type)
    job = await store.jobs.claim(USER, [job_type])
    assert job is not None
    for _ in range(2):
        await store.jobs.append_logs(USER, job.job_id, [("info", "step")])
    await store.jobs.complete(USER, job.job_id, {"ok": True})
    return time.perf_counter() - started


@contextlib.asynccontextmanager
async def scratch_store(database: str, *, durable: bool) -> AsyncIterator[Store]:
    """A store on an embedded server of its own, in a directory removed afterwards."""
    with tempfile.TemporaryDirectory(prefix=f"jobgraph-{database}-") as scratch:
        server = EmbeddedServer(data_dir=Path(scratch) / "db", durable=durable)
        await asyncio.to_thread(server.start)
        client = make_client(server.uri)
        try:
            store = Store(client, database)
            await store.ensure_indexes()
            yield store
        finally:
            await client.close()
            await asyncio.to_thread(server.stop)


async def measure(durable: bool, lifecycles: int, batches: int) -> dict[str, float]:
    async with scratch_store("durability", durable=durable) as store:
        started = time.perf_counter()
        durations = [await lifecycle(store, "seq") for _ in range(lifecycles)]
        sequential = time.perf_counter() - started

        async def worker(number: int) -> None:
            for _ in range(lifecycles // 8):
                await lifecycle(store, f"par-{number}")

        started = time.perf_counter()
        await asyncio.gather(*(worker(number) for number in range(8)))
        concurrent = time.perf_counter() - started

        started = time.perf_counter()
        for _ in range(batches):
            await store.batches.create(USER, batch_name="b", jobs=[JobSpec("b")] * 100)
        batched = time.perf_counter() - started
    return {
        "sequential writes/s": lifecycles * WRITES_PER_LIFECYCLE / sequential,
        "median lifecycle ms": statistics.median(durations) * 1000,
        "8 concurrent writes/s": (lifecycles // 8) * 8 * WRITES_PER_LIFECYCLE / concurrent,
        "batch of 100 ms": batched / batches * 1000,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--lifecycles", type=int, default=200)
    parser.add_argument("--batches", type=int, default=10)
    options = parser.parse_args()
    results = {name: asyncio.run(measure(durable, options.lifecycles, options.batches))
               for name, durable in (("durable", True), ("not durable", False))}
    print(f"{'':24}" + "".join(f"{name:>14}" for name in results))
    for metric in results["durable"]:
        print(f"{metric:24}" + "".join(f"{values[metric]:14.1f}"
                                       for values in results.values()))


if __name__ == "__main__":
    main()
