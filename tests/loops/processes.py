"""API processes as users run them (uvicorn subprocesses on the suite's database), with
the loops tuned for tests, that a test may kill outright (SIGKILL) and start again."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass

import httpx

from repository.database import free_port
from tests.helpers.graphql import TEST_METRICS_TOKEN, TEST_SECRET

STARTUP_DEADLINE = 60.0
FAST_LOOPS = {
    "JOBGRAPH_SCHEDULER_INTERVAL_SECONDS": "0.2",
    "JOBGRAPH_WEBHOOK_ALLOW_PRIVATE": "true",
    "JOBGRAPH_WEBHOOK_TIMEOUT_SECONDS": "2",
    "JOBGRAPH_WEBHOOK_LEASE_SECONDS": "4",
    "JOBGRAPH_WEBHOOK_RETRY_SECONDS": "0.3",
    "JOBGRAPH_WEBHOOK_POLL_SECONDS": "0.2",
}


@dataclass
class ApiProcess:
    process: asyncio.subprocess.Process
    url: str

    async def kill(self) -> None:
        """SIGKILL: no shutdown, no lease released, requests in flight cut off."""
        self.process.kill()
        await self.process.wait()

    async def stop(self) -> None:
        if self.process.returncode is None:
            self.process.terminate()
            try:
                await asyncio.wait_for(self.process.wait(), 20)
            except TimeoutError:
                self.process.kill()
                await self.process.wait()


async def start_api(mongo_uri: str, database: str) -> ApiProcess:
    port = free_port()
    env = {**os.environ, **FAST_LOOPS, "JOBGRAPH_MONGODB_URI": mongo_uri,
           "JOBGRAPH_DATABASE": database, "JOBGRAPH_JWT_SECRET": TEST_SECRET,
           "JOBGRAPH_METRICS_TOKEN": TEST_METRICS_TOKEN, "JOBGRAPH_LOG_LEVEL": "WARNING"}
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "uvicorn", "graph.server.app:create_app", "--factory",
        "--host", "127.0.0.1", "--port", str(port), "--log-level", "warning",
        env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    api = ApiProcess(process, f"http://127.0.0.1:{port}")
    try:
        async with httpx.AsyncClient(base_url=api.url) as probe, asyncio.timeout(
                STARTUP_DEADLINE):
            while True:
                if process.returncode is not None:
                    raise AssertionError(f"the API process exited with {process.returncode}")
                try:
                    if (await probe.get("/readyz")).status_code == 200:
                        return api
                except httpx.HTTPError:
                    pass
                await asyncio.sleep(0.1)
    except BaseException:
        await api.stop()
        raise


@asynccontextmanager
async def api_processes(mongo_uri: str, database: str, count: int
                        ) -> AsyncIterator[list[ApiProcess]]:
    started: list[ApiProcess] = []
    try:
        for _ in range(count):
            started.append(await start_api(mongo_uri, database))
        yield started
    finally:
        for api in started:
            await api.stop()
