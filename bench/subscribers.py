"""WebSocket subscribers in a process of their own: ``python -m bench.subscribers``.

The fan-out measurements run the server in one process and its subscribers in one or more
of these, so that what the clients spend (reading frames, parsing JSON) never bills the
server, and, with several processes, no single client process is the bottleneck of a
delivery. Driven over stdin/stdout, one JSON object a line each way:

- ``{"op": "open", "url": ..., "protocol": ..., "subscriptions": [{"token", "query",
  "variables"}, ...], "concurrency": 64}``: one socket per subscription (connection_init,
  subscribe, the initial state read); answers ``{"opened": n, "seconds": s}``.
- ``{"op": "expect", "field": "jobChanged", "key": "progress.percent", "value": 7}``: arms
  every socket to time the first ``next`` whose ``data[field]`` has ``value`` at the
  dotted ``key``; answers
  ``{"armed": n}`` at once. The change itself is made by whoever drives this process.
- ``{"op": "collect", "timeout": 30}``: waits for the armed deliveries; answers
  ``{"arrivals": [perf_counter, ...], "missing": n}`` (``time.perf_counter`` is the
  system's monotonic clock, comparable between processes on one machine).
- ``{"op": "change", "mongodb_uri": ..., "database": ..., "job_ids": [...], "set": {...}}``:
  one direct update of each job in MongoDB (``$set`` and ``version`` + 1, as the API
  writes), so the server's cost is the change stream and the fan-out alone; answers
  ``{"at": t}`` (when the first write was sent).
- ``{"op": "close"}``: closes every socket; answers ``{"closed": n}`` and exits.
"""

from __future__ import annotations

import asyncio
import contextlib
import sys
import time
from typing import Any

import orjson


class Subscribers:
    def __init__(self) -> None:
        self.sockets: list[Any] = []
        self.listeners: list[asyncio.Task[None]] = []
        self.arrivals: list[float] = []
        self.done = asyncio.Event()
        self.expected = 0
        self.mongo: Any = None

    async def open(self, command: dict[str, Any]) -> dict[str, Any]:
        import websockets

        protocol = command.get("protocol", "graphql-transport-ws")
        gate = asyncio.Semaphore(command.get("concurrency", 64))
        subscribe_type = "subscribe" if protocol == "graphql-transport-ws" else "start"
        data_type = "next" if protocol == "graphql-transport-ws" else "data"

        async def open_one(spec: dict[str, Any]) -> Any:
            async with gate:
                socket = await websockets.connect(command["url"], subprotocols=[protocol],
                                                  open_timeout=120, ping_interval=None,
                                                  # offers permessage-deflate, as
                                                  # browsers and the npm ws client do
                                                  max_size=None)
                await socket.send(orjson.dumps({"type": "connection_init", "payload": {
                    "Authorization": f"Bearer {spec['token']}"}}).decode())
                ack = orjson.loads(await socket.recv())
                if ack["type"] != "connection_ack":
                    raise RuntimeError(f"not acknowledged: {ack}")
                if spec.get("query") is None:  # connected, nothing subscribed
                    return socket
                await socket.send(orjson.dumps({"id": spec.get("id", "1"),
                                                "type": subscribe_type, "payload": {
                    "query": spec["query"], "variables": spec.get("variables") or {}}}).decode())
                first = orjson.loads(await socket.recv())
                if first.get("type") != data_type or first["payload"].get("errors"):
                    raise RuntimeError(f"no initial state: {first}")
                return socket

        started = time.perf_counter()
        opened = await asyncio.gather(*(open_one(spec) for spec in command["subscriptions"]))
        self.sockets.extend(opened)
        return {"opened": len(opened), "seconds": round(time.perf_counter() - started, 3)}

    def expect(self, command: dict[str, Any]) -> dict[str, Any]:
        for task in self.listeners:
            task.cancel()
        self.arrivals = []
        self.done = asyncio.Event()
        self.expected = len(self.sockets)
        field, key, value = command["field"], command["key"], command["value"]

        async def listen(socket: Any) -> None:
            while True:
                message = orjson.loads(await socket.recv())
                if message.get("type") not in ("next", "data"):
                    continue
                found: Any = (message["payload"].get("data") or {}).get(field)
                for part in key.split("."):
                    found = found.get(part) if isinstance(found, dict) else None
                if found == value:
                    self.arrivals.append(time.perf_counter())
                    if len(self.arrivals) >= self.expected:
                        self.done.set()
                    return

        self.listeners = [asyncio.create_task(listen(socket)) for socket in self.sockets]
        if not self.sockets:
            self.done.set()
        return {"armed": len(self.sockets)}

    async def collect(self, command: dict[str, Any]) -> dict[str, Any]:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self.done.wait(), command.get("timeout", 30))
        return {"arrivals": self.arrivals, "missing": self.expected - len(self.arrivals)}

    async def change(self, command: dict[str, Any]) -> dict[str, Any]:
        from pymongo import AsyncMongoClient

        if self.mongo is None:
            self.mongo = AsyncMongoClient(command["mongodb_uri"])
            await self.mongo.admin.command("ping")
        collection = self.mongo[command["database"]][command.get("collection", "jobs")]
        at = time.perf_counter()
        await collection.update_many({"_id": {"$in": command["job_ids"]}},
                                     {"$set": command["set"], "$inc": {"version": 1}})
        return {"at": at}

    async def close(self) -> dict[str, Any]:
        for task in self.listeners:
            task.cancel()

        async def close_one(socket: Any) -> None:
            with contextlib.suppress(Exception):
                await socket.close()

        await asyncio.gather(*(close_one(socket) for socket in self.sockets))
        if self.mongo is not None:
            await self.mongo.close()
        return {"closed": len(self.sockets)}


async def serve() -> None:
    loop = asyncio.get_running_loop()
    reader = asyncio.StreamReader(limit=2**28)  # a line holds every subscription
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)
    subscribers = Subscribers()
    while True:
        line = await reader.readline()
        if not line:
            await subscribers.close()
            return
        command = orjson.loads(line)
        op = command["op"]
        try:
            if op == "open":
                answer = await subscribers.open(command)
            elif op == "expect":
                answer = subscribers.expect(command)
            elif op == "collect":
                answer = await subscribers.collect(command)
            elif op == "change":
                answer = await subscribers.change(command)
            elif op == "close":
                answer = await subscribers.close()
            else:
                answer = {"error": f"unknown op {op!r}"}
        except Exception as exc:  # told to the driver, which stops the measurement
            answer = {"error": f"{type(exc).__name__}: {exc}"[:2000]}
        sys.stdout.buffer.write(orjson.dumps(answer) + b"\n")
        sys.stdout.buffer.flush()
        if op == "close":
            return


class Client:
    """The driver's side: one ``python -m bench.subscribers`` process."""

    def __init__(self, process: asyncio.subprocess.Process) -> None:
        self.process = process

    @classmethod
    async def start(cls, cwd: str, env: dict[str, str] | None = None) -> Client:
        process = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "bench.subscribers", cwd=cwd, env=env,
            stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE, limit=2**28)
        return cls(process)

    async def ask(self, command: dict[str, Any]) -> dict[str, Any]:
        assert self.process.stdin is not None and self.process.stdout is not None
        self.process.stdin.write(orjson.dumps(command) + b"\n")
        await self.process.stdin.drain()
        line = await self.process.stdout.readline()
        if not line:
            raise RuntimeError("the subscribers' process exited")
        answer = orjson.loads(line)
        if "error" in answer:
            raise RuntimeError(f"subscribers: {answer['error']}")
        return answer

    async def stop(self) -> None:
        if self.process.returncode is None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self.ask({"op": "close"}), 30)
            with contextlib.suppress(ProcessLookupError):
                self.process.kill()
        await self.process.wait()


def main() -> int:
    try:
        import uvloop

        uvloop.run(serve())
    except ImportError:
        asyncio.run(serve())
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
