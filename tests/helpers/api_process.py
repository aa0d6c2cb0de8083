"""A second API process (uvicorn in a subprocess) on the suite's database, so that a test
can subscribe on one process and send mutations to another, as in production."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import httpx

from graph.config.settings import Settings
from repository.database import free_port

from .live import LiveServer

STARTUP_DEADLINE = 60.0


@asynccontextmanager
async def api_process(settings: Settings, mongo_uri: str) -> AsyncIterator[LiveServer]:
    """``graph.app:create_app`` served by its own uvicorn process until the block ends."""
    port = free_port()
    env = {**os.environ, "JOBGRAPH_MONGODB_URI": mongo_uri,
           "JOBGRAPH_DATABASE": settings.database,
           "JOBGRAPH_JWT_SECRET": settings.jwt_secret or "", "JOBGRAPH_LOG_LEVEL": "WARNING"}
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "uvicorn", "graph.server.app:create_app", "--factory",
        "--host", "127.0.0.1", "--port", str(port), "--log-level", "warning",
        env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    server = LiveServer(None, port)
    try:
        async with httpx.AsyncClient(base_url=server.url) as probe, asyncio.timeout(
                STARTUP_DEADLINE):
            while True:
                if process.returncode is not None:
                    raise AssertionError(f"the API process exited with {process.returncode}")
                try:
                    if (await probe.get("/readyz")).status_code == 200:
                        break
                except httpx.HTTPError:
                    pass
                await asyncio.sleep(0.1)
        yield server
    finally:
        if process.returncode is None:
            process.terminate()
            try:
                await asyncio.wait_for(process.wait(), 20)
            except TimeoutError:
                process.kill()
                await process.wait()
