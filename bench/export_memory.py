"""Memory of an export: the API process's resident memory while it streams 100,000 jobs.

    python -m bench.export_memory                      # 100,000 jobs, NDJSON and CSV
    python -m bench.export_memory --jobs 20000 --formats ndjson

Serves an empty embedded database with uvicorn in a process of its own, then seeds
``--jobs`` jobs (1,000 of them of type "small") straight into it, and reports that
process's RSS: idle, the peak while exporting the 1,000 "small" jobs (the baseline),
and the peak while exporting every job, sampled every 20 ms; with the ratios. An export
that held its rows would grow with them; a streamed one stays where the baseline is.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx

from graph.auth.tokens import mint_token
from graph.config.settings import load_settings
from repository.database import EmbeddedServer, Store, free_port, make_client
from repository.jobs import job_to_document
from repository.models import AccessControl, JobProgress, JobStatus, SecretaryJob, new_id

from .big_logs import rss_mb

SECRET = "export-memory-secret-that-is-long-enough-for-hs256-0123"
READER = "bench-reader"
SMALL = 1000
CHUNK = 1000


EXPORT_INDEXES = {"_id_", "readers_created", "readers_type_created"}
"""What the reader's two exports are served by (all jobs, the "small" ones)."""


async def seed(store: Store, count: int) -> None:
    for index in await (await store.jobs.collection.list_indexes()).to_list():
        if index["name"] not in EXPORT_INDEXES:
            await store.jobs.collection.drop_index(index["name"])
    now = datetime.now(UTC).replace(microsecond=0)
    access = AccessControl(read_access=[READER], admin_access=["bench-owner"])
    statuses = tuple(JobStatus)
    chunk = []
    for number in range(count):
        created = now - timedelta(milliseconds=number)
        chunk.append(job_to_document(SecretaryJob(
            job_id=new_id(), job_type="small" if number < SMALL else "bulk",
            status=statuses[number % len(statuses)],
            parameters={"document": f"doc-{number}.pdf", "pages": number % 50},
            created_at=created, updated_at=created,
            progress=JobProgress("ocr", number % 101, "reading pages"),
            access_control=access, owner="bench-owner", attempts=1)))
        if len(chunk) >= CHUNK:
            await store.jobs.collection.insert_many(chunk, ordered=False)
            chunk = []
    if chunk:
        await store.jobs.collection.insert_many(chunk, ordered=False)


class Sampler:
    """The peak RSS of a process while something runs."""

    def __init__(self, pid: int) -> None:
        self.pid = pid
        self.peak = 0.0
        self._task: asyncio.Task[None] | None = None

    async def _sample(self) -> None:
        while True:
            self.peak = max(self.peak, rss_mb(self.pid))
            await asyncio.sleep(0.02)

    def __enter__(self) -> Sampler:
        self.peak = rss_mb(self.pid)
        self._task = asyncio.get_running_loop().create_task(self._sample())
        return self

    def __exit__(self, *exc: object) -> None:
        assert self._task is not None
        self._task.cancel()


async def export(client: httpx.AsyncClient, pid: int, bearer: str, fmt: str,
                 job_filter: dict[str, str] | None) -> tuple[int, float, float, int]:
    """(rows, peak MB, seconds, bytes) of one export read to its end."""
    params = {"format": fmt}
    if job_filter is not None:
        params["filter"] = json.dumps(job_filter)
    rows = size = 0
    started = time.monotonic()
    with Sampler(pid) as sampler:
        async with client.stream("GET", "/export/jobs", params=params,
                                 headers={"Authorization": bearer}) as response:
            response.raise_for_status()
            async for chunk in response.aiter_bytes():
                rows += chunk.count(b"\n")
                size += len(chunk)
    if fmt == "csv":
        rows -= 1  # the header
    return rows, sampler.peak, time.monotonic() - started, size


async def run(jobs: int, formats: list[str]) -> None:
    with tempfile.TemporaryDirectory() as scratch:
        server = EmbeddedServer(data_dir=Path(scratch) / "db")
        uri = await asyncio.to_thread(server.start)
        database = "export_memory"
        started = time.monotonic()
        port = free_port()
        env = {**os.environ, "JOBGRAPH_MONGODB_URI": uri, "JOBGRAPH_DATABASE": database,
               "JOBGRAPH_JWT_SECRET": SECRET, "JOBGRAPH_LOG_LEVEL": "WARNING",
               "JOBGRAPH_DISPATCHER": "false", "JOBGRAPH_MONGODB_TIMEOUT_MS": "120000"}
        api_log = (Path(scratch) / "api.log").open("wb")
        process = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "uvicorn", "graph.server.app:create_app", "--factory",
            "--host", "127.0.0.1", "--port", str(port), "--log-level", "warning", env=env,
            stdout=api_log, stderr=api_log)
        settings = load_settings(jwt_secret=SECRET)
        bearer = f"Bearer {mint_token(settings, READER, [], 7200)}"
        mongo = make_client(uri, timeout_ms=120_000)
        store = Store(mongo, database)
        try:
            async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}",
                                         timeout=600) as client:
                async with asyncio.timeout(600):
                    while True:
                        with contextlib.suppress(httpx.HTTPError):
                            if (await client.get("/readyz")).status_code == 200:
                                break
                        await asyncio.sleep(0.5)
                print(f"export_memory: API ready after {time.monotonic() - started:.0f} s; "
                      f"{rss_mb(process.pid):.1f} MB", flush=True)
                await seed(store, jobs)
                print(f"export_memory: seeded {jobs:,} jobs after "
                      f"{time.monotonic() - started:.0f} s; {rss_mb(process.pid):.1f} MB",
                      flush=True)
                async with asyncio.timeout(3600):  # the history writer catches up
                    while True:
                        if await store.history.collection.estimated_document_count() >= jobs:
                            break
                        await asyncio.sleep(1)
                await asyncio.sleep(2)
                idle = rss_mb(process.pid)
                print(f"export_memory: history caught up after "
                      f"{time.monotonic() - started:.0f} s", flush=True)
                print(f"{'export':<24}{'rows':>9}{'peak RSS MB':>13}{'x idle':>8}"
                      f"{'x 1,000':>9}{'seconds':>9}{'MB sent':>9}")
                print(f"{'(idle)':<24}{'':>9}{idle:>13.1f}{1.0:>8.2f}")
                for fmt in formats:
                    small = await export(client, process.pid, bearer, fmt, {"jobType": "small"})
                    everything = await export(client, process.pid, bearer, fmt, None)
                    for label, (rows, peak, seconds, size) in (
                            (f"{fmt} 1,000 (baseline)", small), (f"{fmt} all", everything)):
                        print(f"{label:<24}{rows:>9,}{peak:>13.1f}{peak / idle:>8.2f}"
                              f"{peak / small[1]:>9.2f}{seconds:>9.1f}{size / 1e6:>9.1f}",
                              flush=True)
                print(f"export_memory: after the exports {rss_mb(process.pid):.1f} MB")
        finally:
            await mongo.close()
            process.terminate()
            with contextlib.suppress(ProcessLookupError):
                await asyncio.wait_for(process.wait(), 30)
            await asyncio.to_thread(server.stop)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.export_memory", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--jobs", type=int, default=100_000)
    parser.add_argument("--formats", nargs="+", default=["ndjson", "csv"],
                        choices=["ndjson", "csv"])
    args = parser.parse_args(argv)
    asyncio.run(run(args.jobs, args.formats))


if __name__ == "__main__":
    main(sys.argv[1:])
