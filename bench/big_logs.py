"""Memory with big logs: a job at the documented maxima, many subscribers, one append a second.

    python -m bench.big_logs                          # 100 subscriptions, 60 s
    python -m bench.big_logs --subscriptions 20 --seconds 20

One job holds ``JOBGRAPH_MAX_LOGS_PER_JOB`` (1,000) entries of 4,000 characters. The
subscribers (10 to a socket) follow it with ``jobChanged { logSeq logs(last: 1000) }``
and read everything they are sent, while one entry a second is appended. It reports the
API process's resident memory (start, peak, and after every socket closed), the
embedded database's, and the size of its data directory, every ``--every`` seconds.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx
import websockets
from websockets.typing import Subprotocol

from graph.auth.tokens import mint_token
from graph.config.settings import load_settings
from repository.database import EmbeddedServer, free_port

SECRET = "big-logs-secret-that-is-long-enough-for-hs256-0123456789"
MESSAGE_LENGTH = 4000
FOLLOW = """subscription($id: ID!) {
  jobChanged(jobId: $id) { version logSeq logs(last: 1000) { seq message } } }"""
APPEND = """mutation($id: ID!, $entries: [LogEntryInput!]!) {
  appendJobLogs(jobId: $id, entries: $entries) { logSeq } }"""


def rss_mb(pid: int) -> float:
    """Resident memory of a process, in MB (Linux)."""
    with contextlib.suppress(OSError):
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return float("nan")


def tree_mb(path: Path) -> float:
    return sum(f.stat().st_size for f in path.rglob("*") if f.is_file()) / 1e6


class Graph:
    def __init__(self, url: str, settings: Any) -> None:
        self.client = httpx.AsyncClient(base_url=url, timeout=120)
        self.settings = settings

    def bearer(self, user: str, roles: tuple[str, ...] = ()) -> str:
        return f"Bearer {mint_token(self.settings, user, list(roles))}"

    async def data(self, query: str, variables: dict[str, Any], user: str = "alice",
                   roles: tuple[str, ...] = ()) -> dict[str, Any]:
        response = await self.client.post("/graphql", json={
            "query": query, "variables": variables},
            headers={"Authorization": self.bearer(user, roles)})
        body = response.json()
        if body.get("errors"):
            raise RuntimeError(body["errors"])
        return body["data"]


async def subscriber_socket(url: str, bearer: str, job_id: str, count: int,
                            received: list[int], ready: asyncio.Event) -> None:
    async with websockets.connect(url, subprotocols=[Subprotocol("graphql-transport-ws")],
                                  max_size=None, ping_interval=None) as socket:
        await socket.send(json.dumps({"type": "connection_init",
                                      "payload": {"Authorization": bearer}}))
        json.loads(await socket.recv())
        for n in range(count):
            await socket.send(json.dumps({"id": str(n), "type": "subscribe", "payload": {
                "query": FOLLOW, "variables": {"id": job_id}}}))
        firsts = 0
        async for raw in socket:
            message = json.loads(raw)
            if message.get("type") == "next":
                received[0] += 1
                firsts += 1
                if firsts == count:
                    ready.set()
            elif message.get("type") in ("error", "complete"):
                received[1] += 1


async def run(subscriptions: int, seconds: float, every: float, per_socket: int = 10) -> None:
    with tempfile.TemporaryDirectory() as scratch:
        data_dir = Path(scratch) / "db"
        server = EmbeddedServer(data_dir=data_dir)
        uri = await asyncio.to_thread(server.start)
        assert server.process is not None
        database_pid = server.process.pid
        port = free_port()
        env = {**os.environ, "JOBGRAPH_MONGODB_URI": uri, "JOBGRAPH_DATABASE": "big_logs",
               "JOBGRAPH_JWT_SECRET": SECRET, "JOBGRAPH_LOG_LEVEL": "WARNING",
               "JOBGRAPH_MAX_SUBSCRIPTIONS_PER_PROCESS": str(subscriptions + 10)}
        api_log = (Path(scratch) / "api.log").open("wb")
        process = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "uvicorn", "graph.server.app:create_app", "--factory",
            "--host", "127.0.0.1", "--port", str(port), "--log-level", "warning", env=env,
            stdout=api_log, stderr=api_log)
        graph = Graph(f"http://127.0.0.1:{port}", load_settings(jwt_secret=SECRET))
        sockets: list[asyncio.Task[None]] = []
        try:
            async with asyncio.timeout(60):
                while True:
                    with contextlib.suppress(httpx.HTTPError):
                        if (await graph.client.get("/readyz")).status_code == 200:
                            break
                    await asyncio.sleep(0.2)
            job_id = (await graph.data(
                'mutation { createJob(input: {jobType: "big"}) { jobId } }', {}))[
                "createJob"]["jobId"]
            await graph.data('mutation { claimJob(jobTypes: ["big"]) { jobId } }', {},
                             "worker", ("worker",))
            line = "x" * MESSAGE_LENGTH
            for _ in range(10):
                await graph.data(APPEND, {"id": job_id, "entries": [
                    {"level": "INFO", "message": line}] * 100}, "worker", ("worker",))
            print(f"big_logs: job filled (1,000 entries of {MESSAGE_LENGTH} characters); "
                  f"API {rss_mb(process.pid):.0f} MB, database {rss_mb(database_pid):.0f} MB, "
                  f"data {tree_mb(data_dir):.0f} MB", flush=True)
            received = [0, 0]
            readies = []
            for start in range(0, subscriptions, per_socket):
                ready = asyncio.Event()
                readies.append(ready)
                sockets.append(asyncio.create_task(subscriber_socket(
                    f"ws://127.0.0.1:{port}/graphql", graph.bearer("alice"), job_id,
                    min(per_socket, subscriptions - start), received, ready)))
            async with asyncio.timeout(300):
                await asyncio.gather(*(ready.wait() for ready in readies))
            start_rss = rss_mb(process.pid)
            print(f"big_logs: {subscriptions} subscriptions ready; API {start_rss:.0f} MB",
                  flush=True)
            peak, began, next_report, appended = start_rss, time.monotonic(), every, 0
            while (elapsed := time.monotonic() - began) < seconds:
                await graph.data(APPEND, {"id": job_id, "entries": [
                    {"level": "INFO", "message": line}]}, "worker", ("worker",))
                appended += 1
                peak = max(peak, rss_mb(process.pid))
                if elapsed >= next_report:
                    next_report += every
                    print(f"big_logs: {elapsed:5.0f} s  appends {appended}  events "
                          f"{received[0]}  ended {received[1]}  API {rss_mb(process.pid):.0f} "
                          f"MB  database {rss_mb(database_pid):.0f} MB  data "
                          f"{tree_mb(data_dir):.0f} MB", flush=True)
                await asyncio.sleep(max(0.0, appended - (time.monotonic() - began)))
            for task in sockets:
                task.cancel()
            await asyncio.gather(*sockets, return_exceptions=True)
            await asyncio.sleep(10)
            print(f"big_logs: API start {start_rss:.0f} MB, peak {peak:.0f} MB, 10 s after "
                  f"the sockets closed {rss_mb(process.pid):.0f} MB; database "
                  f"{rss_mb(database_pid):.0f} MB, data {tree_mb(data_dir):.0f} MB; "
                  f"{appended} appends, {received[0]} events delivered, {received[1]} "
                  "subscriptions ended by the server", flush=True)
        finally:
            for task in sockets:
                task.cancel()
            await graph.client.aclose()
            process.terminate()
            await process.wait()
            api_log.close()
            errors = (Path(scratch) / "api.log").read_text(errors="replace").count('"ERROR"')
            print(f"big_logs: the API process logged {errors} lines at ERROR", flush=True)
            await asyncio.to_thread(server.stop)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.big_logs", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--subscriptions", type=int, default=100)
    parser.add_argument("--seconds", type=float, default=60.0)
    parser.add_argument("--every", type=float, default=10.0, help="seconds between reports")
    args = parser.parse_args(argv)
    asyncio.run(run(args.subscriptions, args.seconds, args.every))


if __name__ == "__main__":
    main()
