"""The CPU time of the app's background tasks (the hub's change stream, the history
writer), for ``python -m bench.profile worker --tasks``: a lifecycle over GraphQL is billed
their work too, and the ratio alone does not say how much of it is theirs.

Each named task's coroutine is wrapped when it is created, and ``time.thread_time()`` is
summed around each of its steps (what runs between two of its awaits). What the event
loop does for it in between (reading its sockets) is not counted.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Coroutine, Generator, Iterable
from typing import Any

NAMES = ("jobgraph-hub", "jobgraph-history")


class _Timed:
    """Awaits ``coroutine``, adding the CPU time of each of its steps to ``usage``."""

    def __init__(self, coroutine: Coroutine[Any, Any, Any], name: str, usage: TaskCpu) -> None:
        self.coroutine, self.name, self.usage = coroutine, name, usage

    def __await__(self) -> Generator[Any, Any, Any]:
        return self

    def __iter__(self) -> _Timed:
        return self

    def __next__(self) -> Any:
        return self.send(None)

    def send(self, value: Any) -> Any:
        return self._step(self.coroutine.send, value)

    def throw(self, *error: Any) -> Any:
        return self._step(self.coroutine.throw, *error)

    def close(self) -> None:
        self.coroutine.close()

    def _step(self, advance: Any, *value: Any) -> Any:
        started = time.thread_time()
        try:
            return advance(*value)
        finally:
            self.usage.seconds[self.name] += time.thread_time() - started
            self.usage.steps[self.name] += 1


class TaskCpu:
    def __init__(self, names: Iterable[str] = NAMES) -> None:
        self.names = frozenset(names)
        self.seconds: dict[str, float] = dict.fromkeys(self.names, 0.0)
        self.steps: dict[str, int] = dict.fromkeys(self.names, 0)

    def install(self) -> Callable[[], None]:
        """From now on, tasks created with one of ``names`` are timed; returns the undo."""
        create = asyncio.create_task

        def create_task(coroutine: Any, **options: Any) -> asyncio.Task[Any]:
            name = options.get("name")
            if name in self.names:
                timed = _Timed(coroutine, name, self)

                async def run() -> Any:
                    return await timed

                coroutine = run()
            return create(coroutine, **options)

        asyncio.create_task = create_task  # type: ignore[assignment]

        def undo() -> None:
            asyncio.create_task = create

        return undo

    def snapshot(self) -> dict[str, tuple[float, int]]:
        return {name: (self.seconds[name], self.steps[name]) for name in self.names}

    def report(self, before: dict[str, tuple[float, int]], operations: int) -> str:
        parts = []
        for name in sorted(self.names):
            seconds = self.seconds[name] - before[name][0]
            steps = self.steps[name] - before[name][1]
            parts.append(f"{name} {seconds / operations * 1e6:.0f} us/op ({steps} steps)")
        return ", ".join(parts)
