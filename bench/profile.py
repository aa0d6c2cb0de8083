"""``python -m bench.profile``: one scenario's requests in-process, straight into the ASGI
app (no sockets, no uvicorn), to see where the API's own CPU goes.

Prints the CPU per request of the GraphQL endpoint and of its bare baseline and, with
``--pyinstrument``, a profile of the GraphQL requests. ``--instructions`` counts
instructions per request instead, under valgrind's callgrind: slow, but the same from
run to run on a shared machine, where CPU time varies by 20% or more.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import secrets
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any

import orjson

from graph.auth.tokens import mint_token
from graph.config.settings import load_settings
from repository.database import EmbeddedServer, Store, make_client

from . import queries
from .seed import READER, seed_jobs
from .task_cpu import TaskCpu

BODIES = {
    "job": ("/bare/job", lambda ids: [{"query": queries.JOB, "variables": {"id": job_id}}
                                      for job_id in ids[:200]]),
    "page": ("/bare/jobs", lambda ids: [{"query": queries.JOBS_PAGE,
                                         "variables": {"first": 100}}]),
}


def scope_for(path: str, body: bytes, token: str) -> dict[str, Any]:
    return {
        "type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": "POST",
        "scheme": "http", "path": path, "raw_path": path.encode(), "query_string": b"",
        "root_path": "", "client": ("127.0.0.1", 40000), "server": ("127.0.0.1", 8000),
        "headers": [(b"host", b"bench"), (b"content-type", b"application/json"),
                    (b"accept", b"application/json"),
                    (b"authorization", f"Bearer {token}".encode()),
                    (b"content-length", str(len(body)).encode())],
    }


async def call(app: Any, path: str, body: bytes, token: str) -> bytes:
    delivered = False
    chunks: list[bytes] = []

    async def receive() -> dict[str, Any]:
        nonlocal delivered
        if not delivered:
            delivered = True
            return {"type": "http.request", "body": body, "more_body": False}
        await asyncio.Event().wait()
        return {"type": "http.disconnect"}

    async def send(message: dict[str, Any]) -> None:
        if message["type"] == "http.response.body":
            chunks.append(message.get("body", b""))

    await app(scope_for(path, body, token), receive, send)
    return b"".join(chunks)


async def drive(app: Any, path: str, bodies: list[bytes], token: str, requests: int,
                concurrency: int) -> None:
    queue = iter(range(requests))

    async def worker() -> None:
        for number in queue:
            answer = await call(app, path, bodies[number % len(bodies)], token)
            if b'"errors"' in answer:
                raise RuntimeError(answer[:500])

    await asyncio.gather(*(worker() for _ in range(concurrency)))


async def lifecycles(count: int, concurrency: int, lifecycle: Any) -> None:
    """``count`` worker lifecycles, ``concurrency`` at a time, each by a worker of its own."""
    queue = iter(range(count))

    async def worker(number: int) -> None:
        for _ in queue:
            await lifecycle(number)

    await asyncio.gather(*(worker(number) for number in range(concurrency)))


@dataclass
class Variant:
    name: str
    run: Callable[[int], Awaitable[None]]
    """Runs that many operations (requests, or lifecycles)."""
    in_app: bool = True
    """Whether it needs the app's lifespan (which also starts the hub and the reaper)."""


def variants(scenario: str, app: Any, store: Store, ids: list[str], settings: Any,
             concurrency: int) -> list[Variant]:
    if scenario == "worker":
        return worker_variants(app, store, settings, concurrency)
    token = mint_token(settings, READER, ())
    bare_path, make = BODIES[scenario]
    bodies = [orjson.dumps(body) for body in make(ids)]
    return [Variant(name, partial(drive, app, path, bodies, token, concurrency=concurrency))
            for name, path in (("bare", bare_path), ("graphql", "/graphql"))]


def worker_variants(app: Any, store: Store, settings: Any, concurrency: int) -> list[Variant]:
    """The worker scenario: direct repository calls (no app running: its change-stream
    consumer would bill its work to them) against the same steps over GraphQL."""
    from repository.access import Principal

    from .direct import lifecycle as direct_lifecycle
    from .load import _lifecycle

    async def direct(number: int) -> None:
        principal = Principal(f"profile-direct-{number}", frozenset({"worker"}))
        await direct_lifecycle(store.jobs, principal, f"profile-d{number}")

    tokens = [mint_token(settings, f"profile-worker-{n}", ("worker",))
              for n in range(concurrency)]

    async def graphql(number: int) -> None:
        async def step(query: str, variables: dict[str, Any]) -> dict[str, Any]:
            answer = await call(app, "/graphql", orjson.dumps(
                {"query": query, "variables": variables}), tokens[number])
            if b'"errors"' in answer:
                raise RuntimeError(answer[:500])
            return orjson.loads(answer)["data"]

        if not await _lifecycle(step, queries, f"profile-g{number}"):
            raise RuntimeError("a lifecycle failed")

    return [Variant("direct", lambda n: lifecycles(n, concurrency, direct), in_app=False),
            Variant("graphql", lambda n: lifecycles(n, concurrency, graphql))]


async def measure(variant: Variant, operations: int, instructions: bool,
                  tasks: TaskCpu | None = None) -> float:
    """CPU seconds (or instructions, under callgrind) per operation; with ``tasks``, it
    prints what the app's background tasks took of it."""
    if tasks is not None and variant.in_app:
        before = tasks.snapshot()
        cost = await measure(variant, operations, instructions)
        print(f"  {variant.name}: {cost * 1e6:.0f} us/op, of it {tasks.report(before, operations)}"
              if not instructions else f"  {variant.name}: {tasks.report(before, operations)}",
              flush=True)
        return cost
    if instructions:
        callgrind("--zero")
        await variant.run(operations)
        callgrind(f"--dump={variant.name}")
        return dumped_instructions(Path(os.environ["JOBGRAPH_CALLGRIND_DIR"]),
                                   variant.name) / operations
    started = time.process_time()
    await variant.run(operations)
    return (time.process_time() - started) / operations


async def measure_all(app: Any, found: list[Variant], args: argparse.Namespace
                      ) -> dict[str, float]:
    """Each variant's best of ``rounds`` (one round under callgrind: it repeats exactly),
    those without the app first."""
    best: dict[str, float] = {}
    rounds = 1 if args.instructions else args.rounds
    if args.instructions:
        callgrind("--instr=on")
    for in_app in (False, True):
        group = [variant for variant in found if variant.in_app is in_app]
        if not group:
            continue
        async with contextlib.AsyncExitStack() as stack:
            if in_app:
                await stack.enter_async_context(app.router.lifespan_context(app))
            for variant in group:  # warm up
                await variant.run(max(2, args.requests // 20))
            for _ in range(rounds):  # alternate, keep the best of each: less noise
                for variant in group:
                    cost = await measure(variant, args.requests, args.instructions,
                                         args.task_cpu)
                    best[variant.name] = min(best.get(variant.name, cost), cost)
    if args.instructions:
        callgrind("--instr=off")
    return best


def report(scenario: str, best: dict[str, float], instructions: bool) -> None:
    (base_name, base), (name, cost) = best.items()
    unit = "k instructions" if instructions else " us"
    scale = 1e-3 if instructions else 1e6
    print(f"{scenario}: {base_name} {base * scale:.0f}{unit}/op, {name} {cost * scale:.0f}"
          f"{unit}/op, ratio {cost / base:.2f}")


def callgrind(*options: str) -> None:
    subprocess.run(["callgrind_control", *options, str(os.getpid())], check=True,
                   stdout=subprocess.DEVNULL)


def dumped_instructions(directory: Path, label: str) -> int:
    """The instruction count of the callgrind dump made with ``--dump=label``."""
    for path in directory.glob("callgrind.*"):
        text = path.read_text(errors="replace")
        if f"desc: Trigger: dump {label}\n" in text:
            return int(next(line for line in text.splitlines()
                            if line.startswith("summary:")).split()[1])
    raise RuntimeError(f"callgrind wrote no dump named {label!r} in {directory}")


def under_callgrind(argv: list[str]) -> int:
    """Run this command again under callgrind, instrumenting only what is counted."""
    directory = Path(tempfile.mkdtemp(prefix="jobgraph-callgrind-"))
    command = ["valgrind", "--tool=callgrind", "--instr-atstart=no",
               f"--callgrind-out-file={directory}/callgrind.%p", sys.executable,
               "-m", "bench.profile", *argv]
    code = subprocess.run(command, env={**os.environ, "JOBGRAPH_CALLGRIND_DIR": str(directory)},
                          stderr=subprocess.DEVNULL).returncode
    print(f"callgrind files (callgrind_annotate reads them): {directory}")
    return code


async def main(args: argparse.Namespace, uri: str) -> None:
    secret = secrets.token_hex(32)
    database = f"jobgraph_profile_{uuid.uuid4().hex[:6]}"
    os.environ.update({"JOBGRAPH_MONGODB_URI": uri, "JOBGRAPH_DATABASE": database,
                       "JOBGRAPH_JWT_SECRET": secret, "JOBGRAPH_LOG_LEVEL": args.log_level})
    if args.scenario == "fanout":
        from . import fanout

        await fanout.run(args, uri, database)
        return
    if args.scenario == "idle":
        await idle(args.seconds)
        return
    from .server import create_app

    client = make_client(uri)
    store = Store(client, database)
    await store.ensure_indexes()
    ids = [] if args.scenario == "worker" else await seed_jobs(store, 300)
    app = create_app()
    found = variants(args.scenario, app, store, ids, load_settings(), args.concurrency)
    report(args.scenario, await measure_all(app, found, args), args.instructions)
    if args.pyinstrument:
        from pyinstrument import Profiler

        async with app.router.lifespan_context(app):
            profiler = Profiler(interval=0.0002, async_mode="disabled")
            profiler.start()
            await found[-1].run(args.requests)
            profiler.stop()
        print(profiler.output_text(unicode=False, color=False, show_all=False,
                                   short_mode=False))
    await client.drop_database(database)
    await client.close()


async def idle(seconds: float) -> None:
    """What a process serving nothing costs: its CPU and the commands its background loops
    send (the hub, the history writer, the scheduler, the webhook loops, the reaper), per
    second; a load pays it too, billed per operation as it goes slower."""
    from collections import Counter

    from pymongo import monitoring

    from .server import create_app

    sent: Counter[str] = Counter()

    class Listener(monitoring.CommandListener):
        def started(self, event: monitoring.CommandStartedEvent) -> None:
            target = event.command.get(event.command_name)
            sent[f"{event.command_name} {target if isinstance(target, str) else ''}".strip()] += 1

        def succeeded(self, event: monitoring.CommandSucceededEvent) -> None:
            pass

        def failed(self, event: monitoring.CommandFailedEvent) -> None:
            pass

    monitoring.register(Listener())
    app = create_app()
    async with app.router.lifespan_context(app):
        await asyncio.sleep(2)  # past the start-up's own work
        sent.clear()
        started = time.process_time()
        await asyncio.sleep(seconds)
        cpu = time.process_time() - started
    print(f"idle: {cpu / seconds * 1e3:.1f} ms CPU a second, "
          f"{sum(sent.values()) / seconds:.1f} commands a second")
    for name, count in sent.most_common():
        print(f"  {count / seconds:5.2f}/s {name}")


def run() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.profile", description=__doc__)
    parser.add_argument("scenario", choices=[*sorted(BODIES), "worker", "fanout", "idle"],
                        help="fanout: connect, subscribe and deliver (see bench/fanout.py); "
                             "idle: what a process serving nothing costs a second")
    parser.add_argument("--seconds", type=float, default=10.0, help="idle: how long")
    parser.add_argument("--requests", type=int, default=300,
                        help="operations per measurement (lifecycles for worker)")
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--pyinstrument", action="store_true")
    parser.add_argument("--log-level", default="WARNING")
    parser.add_argument("--instructions", action="store_true",
                        help="count instructions per request under valgrind (callgrind)")
    parser.add_argument("--tasks", action="store_true",
                        help="print the CPU time of the app's background tasks (the hub's "
                             "change stream, the history writer) per operation")
    fan = parser.add_argument_group("fanout")
    fan.add_argument("--subscribers", type=int, default=300)
    fan.add_argument("--mix", choices=["same", "users", "viewer", "distinct", "idle"],
                     default="same", help="who subscribes to what (see bench/fanout.py)")
    fan.add_argument("--changes", type=int, default=5, help="changes delivered (measured)")
    fan.add_argument("--clients", type=int, default=2, help="subscriber processes")
    fan.add_argument("--memory", action="store_true",
                     help="memory per idle subscriber (tracemalloc, RSS) instead")
    fan.add_argument("--top", type=int, default=0,
                     help="with --memory: the allocation sites holding the most")
    fan.add_argument("--cprofile-connect", type=int, default=0, metavar="N",
                     help="cProfile the connect + subscribe window: its N costliest calls")
    args = parser.parse_args()
    args.task_cpu = None
    if args.tasks:
        args.task_cpu = TaskCpu()
        args.task_cpu.install()
    if args.instructions and "JOBGRAPH_CALLGRIND_DIR" not in os.environ:
        raise SystemExit(under_callgrind(sys.argv[1:]))
    uri = os.environ.get("JOBGRAPH_MONGODB_URI")
    server = None
    if uri is None:
        server = EmbeddedServer(data_dir=Path(tempfile.mkdtemp(prefix="jobgraph-prof-")) / "db")
        uri = server.start()
    try:
        import uvloop

        uvloop.run(main(args, uri))
    finally:
        if server is not None:
            server.stop()


if __name__ == "__main__":
    run()
