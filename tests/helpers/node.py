"""Run a client program (a Node script of tests/clients, a README snippet) against a live
server and read what it prints.

Each Node script takes one JSON argument (its spec) and prints one JSON object per line
(an event it received, an error it got); it ends when it is done or when its stdin closes.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from .tools import NODE_CLIENTS, require_node_packages

DEADLINE = 30.0
"""Generous: Node starts in ~0.3 s, but two busy cores are shared with the database."""


class Script:
    """A running client program; what it prints, line by line."""

    def __init__(self, process: asyncio.subprocess.Process, name: str) -> None:
        self.process = process
        self.name = name

    async def line(self, deadline: float = DEADLINE) -> str:
        """The next non-empty line it prints; fails with its stderr if it ends first."""
        assert self.process.stdout is not None
        async with asyncio.timeout(deadline):
            while True:
                raw = await self.process.stdout.readline()
                if not raw:
                    await self.process.wait()
                    raise AssertionError(f"{self.name} ended (exit {self.process.returncode}) "
                                         f"without another line: {await self._stderr()}")
                if raw.strip():
                    return raw.decode().strip()

    async def next(self, deadline: float = DEADLINE) -> dict[str, Any]:
        """The next line it prints, which must be a JSON object."""
        raw = await self.line(deadline)
        try:
            return json.loads(raw)
        except ValueError:
            raise AssertionError(f"{self.name} printed a line that is not JSON: {raw!r}"
                                 ) from None

    async def until(self, done: Callable[[dict[str, Any]], bool],
                    deadline: float = DEADLINE) -> list[dict[str, Any]]:
        """Every line up to and including the first for which ``done`` holds."""
        seen = []
        async with asyncio.timeout(deadline):
            while True:
                seen.append(await self.next())
                if done(seen[-1]):
                    return seen

    async def finish(self, *, interrupt: bool) -> int:
        """End it: close its stdin (a script of ours then disposes of its client), or for a
        program that runs until stopped (a README snippet), interrupt its process group."""
        if self.process.stdin is not None and not self.process.stdin.is_closing():
            self.process.stdin.close()
        if interrupt:
            self._signal(signal.SIGTERM)
        try:
            return await asyncio.wait_for(self.process.wait(), DEADLINE)
        except TimeoutError:
            self._signal(signal.SIGKILL)
            return await self.process.wait()

    def _signal(self, number: int) -> None:
        if self.process.returncode is not None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.process.pid, number)  # its children too (curl under bash)

    async def _stderr(self) -> str:
        assert self.process.stderr is not None
        return (await self.process.stderr.read()).decode(errors="replace")[-2000:]


@asynccontextmanager
async def run_script(name: str, *argv: str, cwd: Path | None = None,
                     env: dict[str, str] | None = None, interrupt: bool = True
                     ) -> AsyncIterator[Script]:
    """Run ``argv`` until the block ends; then interrupt it, or with ``interrupt=False``
    close its stdin and let it end by itself (killed if it lingers)."""
    process = await asyncio.create_subprocess_exec(
        *argv, cwd=cwd, env=env, stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE, limit=2**24,
        start_new_session=True)
    script = Script(process, name)
    try:
        yield script
    finally:
        await script.finish(interrupt=interrupt)


def node_script(name: str, spec: dict[str, Any] | None = None, *, code: str | None = None,
                env: dict[str, str] | None = None) -> Any:
    """Run tests/clients/``name`` with ``spec``, or the module source ``code`` (a README
    snippet), from tests/clients so that its imports resolve to the pinned packages."""
    node = require_node_packages()
    if code is not None:
        argv = [node, "--input-type=module", "-e", code]
    else:
        argv = [node, str(NODE_CLIENTS / name), json.dumps(spec or {})]
    return run_script(name, *argv, cwd=NODE_CLIENTS, env=env, interrupt=code is not None)
