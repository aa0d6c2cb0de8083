"""The load process: ``python -m bench.load SPEC.json`` prints one JSON result.

It runs apart from the server (its own process, its own cores' share) and reads the
server's CPU time from /proc at the start and end of the measured window itself.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import sys
import time
from collections.abc import Callable, Coroutine
from typing import Any

import orjson

from .measure import cpu, measured_window, memory_kb, percentiles


class HttpConnection:
    """A minimal keep-alive HTTP/1.1 client: little CPU, so the server gets the cores."""

    def __init__(self, host: str, port: int) -> None:
        self.host, self.port = host, port
        self.reader: asyncio.StreamReader | None = None
        self.writer: asyncio.StreamWriter | None = None

    async def open(self) -> None:
        self.reader, self.writer = await asyncio.open_connection(self.host, self.port)

    async def send(self, raw: bytes) -> tuple[int, bytes]:
        assert self.reader is not None and self.writer is not None
        self.writer.write(raw)
        head = await self.reader.readuntil(b"\r\n\r\n")
        lines = head.split(b"\r\n")
        status = int(lines[0].split(b" ", 2)[1])
        length = 0
        for line in lines[1:]:
            name, _, value = line.partition(b":")
            if name.lower() == b"content-length":
                length = int(value)
        body = await self.reader.readexactly(length) if length else b""
        return status, body

    async def close(self) -> None:
        if self.writer is not None:
            self.writer.close()
            with contextlib.suppress(Exception):
                await self.writer.wait_closed()


def request_bytes(path: str, body: dict[str, Any], token: str) -> bytes:
    payload = orjson.dumps(body)
    head = (f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
            f"Accept: application/json\r\nAuthorization: Bearer {token}\r\n"
            f"Content-Length: {len(payload)}\r\n\r\n")
    return head.encode() + payload


class Failures:
    def __init__(self) -> None:
        self.count = 0
        self.sample: str | None = None

    def check(self, status: int, body: bytes) -> bool:
        if status == 200 and b'"errors"' not in body:
            return True
        self.count += 1
        if self.sample is None:
            self.sample = f"{status} {body[:300]!r}"
        return False


class Window:
    """The measured window: server CPU and wall time between start() and stop()."""

    def __init__(self, pid: int) -> None:
        self.pid = pid
        self.measuring = False

    def start(self) -> None:
        self.cpu0, self.wall0 = cpu(self.pid), time.perf_counter()
        self.measuring = True

    def stop(self) -> dict[str, float]:
        self.measuring = False
        cpu1, wall1 = cpu(self.pid), time.perf_counter()
        return {"server_cpu_s": round(cpu1.total - self.cpu0.total, 3),
                "server_user_s": round(cpu1.user - self.cpu0.user, 3),
                "server_system_s": round(cpu1.system - self.cpu0.system, 3),
                "wall_s": round(wall1 - self.wall0, 3)}


def _summary(window: dict[str, float], samples: list[float], failures: Failures, pid: int,
             unit: str) -> dict[str, Any]:
    count = len(samples)
    return {
        unit: count,
        "cpu_per_op_us": round(window["server_cpu_s"] / count * 1e6, 1) if count else None,
        "throughput_per_s": round(count / window["wall_s"], 1) if window["wall_s"] else 0.0,
        **percentiles(samples),
        **window,
        "failures": failures.count,
        "failure_sample": failures.sample,
        "server_memory_kb": memory_kb(pid),
    }


async def run_http(spec: dict[str, Any]) -> dict[str, Any]:
    """``clients`` connections, each sending the next request as soon as it has an answer."""
    raws = [request_bytes(spec["path"], body, spec["token"]) for body in spec["bodies"]]
    window = Window(spec["server_pid"])
    samples: list[float] = []
    failures = Failures()
    deadline = time.perf_counter() + spec["warmup"]
    cycle = itertools.cycle(raws)

    async def client() -> None:
        connection = HttpConnection(spec["host"], spec["port"])
        await connection.open()
        try:
            while time.perf_counter() < end_of["run"]:
                raw = next(cycle)
                started = time.perf_counter()
                status, body = await connection.send(raw)
                if window.measuring:
                    if failures.check(status, body):
                        samples.append(time.perf_counter() - started)
                elif status != 200:
                    failures.check(status, body)
        finally:
            await connection.close()

    end_of = {"run": float("inf")}
    tasks = [asyncio.create_task(client()) for _ in range(spec["clients"])]
    await asyncio.sleep(max(0.0, deadline - time.perf_counter()))
    window.start()
    await measured_window(spec["duration"], lambda: len(samples), spec["clients"])
    result = window.stop()
    end_of["run"] = 0.0
    await asyncio.gather(*tasks)
    return _summary(result, samples, failures, spec["server_pid"], "requests")


async def run_workers(spec: dict[str, Any]) -> dict[str, Any]:
    """Workers over HTTP: create, claim, 3 progress updates, 2 log appends, complete."""
    from . import queries

    window = Window(spec["server_pid"])
    lifecycles: list[float] = []
    failures = Failures()
    state = {"stop": False}

    async def worker(number: int) -> None:
        token = spec["tokens"][number]
        job_type = f"bench-w{number}"
        connection = HttpConnection(spec["host"], spec["port"])
        await connection.open()

        async def call(query: str, variables: dict[str, Any]) -> dict[str, Any] | None:
            status, body = await connection.send(request_bytes(
                "/graphql", {"query": query, "variables": variables}, token))
            if not failures.check(status, body):
                return None
            return orjson.loads(body)["data"]

        try:
            while not state["stop"]:
                started = time.perf_counter()
                ok = await _lifecycle(call, queries, job_type)
                if ok and window.measuring:
                    lifecycles.append(time.perf_counter() - started)
        finally:
            await connection.close()

    tasks = [asyncio.create_task(worker(n)) for n in range(spec["workers"])]
    await asyncio.sleep(spec["warmup"])
    window.start()
    await measured_window(spec["duration"], lambda: len(lifecycles), spec["workers"])
    result = window.stop()
    state["stop"] = True
    await asyncio.gather(*tasks)
    summary = _summary(result, lifecycles, failures, spec["server_pid"], "lifecycles")
    summary["requests_per_lifecycle"] = 8
    return summary


async def _lifecycle(call: Any, queries: Any, job_type: str) -> bool:
    created = await call(queries.CREATE_JOB, {"type": job_type})
    if created is None:
        return False
    claimed = await call(queries.CLAIM_JOB, {"types": [job_type]})
    if claimed is None or claimed["claimJob"] is None:
        return False
    job_id = claimed["claimJob"]["jobId"]
    for percent in (25, 50, 75):
        if await call(queries.UPDATE_PROGRESS, {"id": job_id, "percent": percent}) is None:
            return False
    for _ in range(2):
        if await call(queries.APPEND_LOGS, {"id": job_id}) is None:
            return False
    return await call(queries.COMPLETE_JOB, {"id": job_id}) is not None


RUNNERS = {"http": run_http, "workers": run_workers}


def run_spec(argv: list[str], run: Callable[[dict[str, Any]], Coroutine[Any, Any, Any]]) -> int:
    """A bench subprocess: read the JSON spec named on the command line, run it, print the
    result as JSON."""
    with open(argv[1], "rb") as handle:
        spec = orjson.loads(handle.read())
    try:
        import uvloop

        result = uvloop.run(run(spec))
    except ImportError:
        result = asyncio.run(run(spec))
    sys.stdout.buffer.write(orjson.dumps(result))
    return 0


def main(argv: list[str]) -> int:
    return run_spec(argv, lambda spec: RUNNERS[spec["kind"]](spec))


if __name__ == "__main__":
    raise SystemExit(main(sys.argv))
