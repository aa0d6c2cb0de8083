"""``jobgraph serve`` as a user runs it (its uvicorn options, its logging), in a subprocess
on the suite's database, with everything it prints kept for the test to read."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path

import httpx

from repository.database import free_port

from .graphql import TEST_SECRET
from .live import LiveServer

STARTUP_DEADLINE = 60.0


class Served(LiveServer):
    def __init__(self, port: int, output: Path) -> None:
        super().__init__(None, port)
        self.output = output

    def lines(self) -> list[str]:
        return self.output.read_text().splitlines()


def serve_environment(**variables: str) -> dict[str, str]:
    """This process's environment without its ``JOBGRAPH_*`` variables, plus ``variables``
    and the suite's JWT secret."""
    env = {key: value for key, value in os.environ.items() if not key.startswith("JOBGRAPH_")}
    return env | {"JOBGRAPH_JWT_SECRET": TEST_SECRET, **variables}


async def until_ready(served: Served, exit_code: Callable[[], int | None]) -> None:
    """Until ``/readyz`` answers 200; fails at once if the server exits meanwhile."""
    async with httpx.AsyncClient(base_url=served.url) as probe, asyncio.timeout(
            STARTUP_DEADLINE):
        while True:
            if exit_code() is not None:
                raise AssertionError(f"jobgraph serve exited with {exit_code()}: "
                                     f"{' '.join(served.lines())}")
            try:
                if (await probe.get("/readyz")).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            await asyncio.sleep(0.1)


@asynccontextmanager
async def jobgraph_serve(mongo_uri: str, database: str, output: Path, **environment: str
                         ) -> AsyncIterator[Served]:
    """``python -m graph.commands.cli serve`` until the block ends; ``environment`` adds
    ``JOBGRAPH_*`` variables (names without the prefix, e.g. ``MAX_BODY_BYTES="65536"``)."""
    port = free_port()
    env = serve_environment(
        JOBGRAPH_MONGODB_URI=mongo_uri, JOBGRAPH_DATABASE=database,
        **{f"JOBGRAPH_{name.upper()}": value for name, value in environment.items()})
    sink = output.open("w")
    try:
        process = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "graph.commands.cli", "serve", "--host", "127.0.0.1",
            "--port", str(port), env=env, stdout=sink, stderr=subprocess.STDOUT)
    finally:
        sink.close()
    served = Served(port, output)
    try:
        await until_ready(served, lambda: process.returncode)
        yield served
    finally:
        if process.returncode is None:
            process.terminate()
            try:
                await asyncio.wait_for(process.wait(), 30)
            except TimeoutError:
                process.kill()
                await process.wait()
