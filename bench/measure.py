"""Readings of another process from /proc (Linux): CPU time and memory."""

from __future__ import annotations

import asyncio
import math
import os
from collections.abc import Callable
from dataclasses import dataclass

TICKS = os.sysconf("SC_CLK_TCK")


@dataclass(frozen=True)
class CpuReading:
    user: float
    system: float

    @property
    def total(self) -> float:
        return self.user + self.system


def cpu(pid: int) -> CpuReading:
    """User and system CPU seconds of every thread of ``pid`` and of its live descendants
    (``uvicorn --workers N`` serves from child processes) so far."""
    user = system = 0.0
    for member in [pid, *descendants(pid)]:
        try:
            with open(f"/proc/{member}/stat") as handle:
                data = handle.read()
        except OSError:  # it ended in between
            continue
        fields = data[data.rindex(")") + 2:].split()
        user += int(fields[11]) / TICKS
        system += int(fields[12]) / TICKS
    return CpuReading(user, system)


def descendants(pid: int) -> list[int]:
    """Live processes below ``pid``, from each one's parent in /proc."""
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as handle:
                data = handle.read()
        except OSError:
            continue
        parent = int(data[data.rindex(")") + 2:].split()[1])
        children.setdefault(parent, []).append(int(entry))
    found, pending = [], [pid]
    while pending:
        below = children.get(pending.pop(), [])
        found.extend(below)
        pending.extend(below)
    return found


def memory_kb(pid: int) -> dict[str, int]:
    """VmRSS (now) and VmHWM (peak) in KiB."""
    found = {}
    with open(f"/proc/{pid}/status") as handle:
        for line in handle:
            if line.startswith(("VmRSS:", "VmHWM:")):
                name, value = line.split(":", 1)
                found[name] = int(value.split()[0])
    return found


def percentiles(samples: list[float]) -> dict[str, float]:
    """p50/p95/p99 in milliseconds (nearest rank)."""
    if not samples:
        return {"p50_ms": 0.0, "p95_ms": 0.0, "p99_ms": 0.0}
    ordered = sorted(samples)

    def rank(q: float) -> float:
        index = min(len(ordered) - 1, max(0, math.ceil(q * len(ordered)) - 1))
        return round(ordered[index] * 1000, 3)

    return {"p50_ms": rank(0.50), "p95_ms": rank(0.95), "p99_ms": rank(0.99)}


POLL_SECONDS = 0.05


async def measured_window(duration: float, done: Callable[[], int], minimum: int) -> None:
    """Wait ``duration`` seconds, then on until ``minimum`` operations were counted (at most
    ten times as long): on a slow machine a short window may otherwise end before a single
    operation of the slowest scenario did, and its cost per operation would be unknown."""
    await asyncio.sleep(duration)
    for _ in range(math.ceil(9 * duration / POLL_SECONDS)):  # polled: counts have no event
        if done() >= minimum:
            return
        await asyncio.sleep(POLL_SECONDS)
