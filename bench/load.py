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


async def run_subscribers(spec: dict[str, Any]) -> dict[str, Any]:
    """``count`` WebSocket subscribers of one job; then one status change, timed to each."""
    import websockets
    from websockets.typing import Subprotocol

    from . import queries

    pid, count = spec["server_pid"], spec["count"]
    sockets: list[Any] = []
    gate = asyncio.Semaphore(64)
    init = orjson.dumps({"type": "connection_init",
                         "payload": {"Authorization": f"Bearer {spec['token']}"}}).decode()
    subscribe = orjson.dumps({"id": "1", "type": "subscribe", "payload": {
        "query": queries.JOB_CHANGED, "variables": {"id": spec["job_id"]}}}).decode()

    async def open_one() -> Any:
        async with gate:
            socket = await websockets.connect(spec["ws_url"],
                                              subprotocols=[Subprotocol("graphql-transport-ws")],
                                              open_timeout=60, ping_interval=None,
                                              max_size=None, compression=None)
            await socket.send(init)
            ack = orjson.loads(await socket.recv())
            if ack["type"] != "connection_ack":
                raise RuntimeError(f"not acknowledged: {ack}")
            await socket.send(subscribe)
            first = orjson.loads(await socket.recv())
            if first.get("type") != "next" or first["payload"].get("errors"):
                raise RuntimeError(f"no initial state: {first}")
            return socket

    memory_before = memory_kb(pid)
    cpu_before = cpu(pid)
    started = time.perf_counter()
    sockets = await asyncio.gather(*(open_one() for _ in range(count)))
    connect_s = time.perf_counter() - started
    await asyncio.sleep(0.5)  # let the server settle before reading its memory
    memory_subscribed = memory_kb(pid)
    cursors_subscribed = await _open_cursors(spec)

    arrivals: list[float] = []
    received = asyncio.Event()
    missing = {"n": count}

    async def await_change(socket: Any) -> None:
        while True:
            message = orjson.loads(await socket.recv())
            if message.get("type") == "next" and (
                    message["payload"]["data"]["jobChanged"]["status"] == spec["new_status"]):
                arrivals.append(time.perf_counter())
                missing["n"] -= 1
                if missing["n"] == 0:
                    received.set()
                return

    listeners = [asyncio.create_task(await_change(socket)) for socket in sockets]
    stream_seen: list[float] = []
    watcher = asyncio.create_task(_watch(spec, stream_seen))
    await asyncio.sleep(0.5)  # the watcher's stream is open
    cpu_event0 = cpu(pid)
    changed_at = time.perf_counter()
    await _trigger(spec)
    answered_at = time.perf_counter()
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(received.wait(), spec.get("timeout", 30))
    cpu_event1 = cpu(pid)
    watcher.cancel()
    for task in listeners:
        task.cancel()
    await asyncio.gather(*(_close(socket) for socket in sockets))
    delays = [arrival - changed_at for arrival in arrivals]
    return {
        "subscribers": count,
        "delivered": len(arrivals),
        "connect_s": round(connect_s, 2),
        "connect_cpu_per_subscriber_us": round(
            (cpu_event0.total - cpu_before.total) / count * 1e6, 1),
        "fanout_cpu_s": round(cpu_event1.total - cpu_event0.total, 3),
        **percentiles(delays),
        "min_ms": round(min(delays) * 1000, 3) if delays else None,
        "max_ms": round(max(delays) * 1000, 3) if delays else None,
        "trigger_ms": round((answered_at - changed_at) * 1000, 3),
        "change_stream_ms": round((stream_seen[0] - changed_at) * 1000, 3)
        if stream_seen else None,
        "memory_before_kb": memory_before["VmRSS"],
        "memory_subscribed_kb": memory_subscribed["VmRSS"],
        "open_cursors_subscribed": cursors_subscribed,
        "server_memory_kb": memory_kb(pid),
    }


async def _open_cursors(spec: dict[str, Any]) -> int | None:
    from pymongo import AsyncMongoClient

    client: AsyncMongoClient = AsyncMongoClient(spec["mongodb_uri"])
    try:
        status = await client.admin.command("serverStatus")
        return status.get("metrics", {}).get("cursor", {}).get("open", {}).get("total")
    except Exception:
        return None
    finally:
        await client.close()


async def _watch(spec: dict[str, Any], seen: list[float]) -> None:
    """The database's own delivery: a bare change stream on the job, in this process."""
    from pymongo import AsyncMongoClient

    client: AsyncMongoClient = AsyncMongoClient(spec["mongodb_uri"])
    try:
        stream = await client[spec["database"]]["jobs"].watch(
            [{"$match": {"documentKey._id": spec["job_id"]}}])
        async with stream:
            async for _change in stream:
                seen.append(time.perf_counter())
                return
    finally:
        await client.close()


async def _trigger(spec: dict[str, Any]) -> None:
    from . import queries

    connection = HttpConnection(spec["host"], spec["port"])
    await connection.open()
    try:
        status, body = await connection.send(request_bytes(
            "/graphql", {"query": queries.FAIL_JOB, "variables": {"id": spec["job_id"]}},
            spec["owner_token"]))
        if status != 200 or b'"errors"' in body:
            raise RuntimeError(f"the status change failed: {status} {body[:300]!r}")
    finally:
        await connection.close()


async def _close(socket: Any) -> None:
    with contextlib.suppress(Exception):
        await socket.close()


RUNNERS = {"http": run_http, "workers": run_workers, "subscribers": run_subscribers}


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
