"""``bench.profile --tasks`` (``bench/task_cpu.py``): the CPU time of the app's named
background tasks, summed over their steps; other tasks are left alone."""

from __future__ import annotations

import asyncio
import time

import pytest

from bench.task_cpu import TaskCpu


def busy(seconds: float) -> None:
    until = time.thread_time() + seconds
    while time.thread_time() < until:
        pass


async def test_a_named_tasks_steps_are_timed_and_others_are_not() -> None:
    usage = TaskCpu(["timed"])
    undo = usage.install()
    try:
        async def work() -> str:
            busy(0.02)
            await asyncio.sleep(0)
            busy(0.02)
            return "done"

        before = usage.snapshot()
        assert await asyncio.create_task(work(), name="timed") == "done"
        assert await asyncio.create_task(work(), name="other") == "done"
    finally:
        undo()
    seconds, steps = usage.snapshot()["timed"]
    assert 0.04 <= seconds - before["timed"][0] < 0.08  # its own two steps, not the other's
    assert steps - before["timed"][1] >= 2
    assert "timed" in usage.report(before, 1) and asyncio.create_task.__module__ == "asyncio.tasks"


async def test_an_error_and_a_cancel_reach_the_timed_task() -> None:
    usage = TaskCpu(["timed"])
    undo = usage.install()
    try:
        async def fail() -> None:
            await asyncio.sleep(0)
            raise ValueError("boom")

        with pytest.raises(ValueError, match="boom"):
            await asyncio.create_task(fail(), name="timed")
        waiting = asyncio.create_task(asyncio.Event().wait(), name="timed")
        await asyncio.sleep(0)
        waiting.cancel()
        await asyncio.gather(waiting, return_exceptions=True)
        assert waiting.cancelled()
    finally:
        undo()
