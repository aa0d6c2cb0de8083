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
import os
import secrets
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

import orjson

from graph.auth import mint_token
from graph.settings import load_settings
from repository.database import EmbeddedServer, Store, make_client

from . import queries
from .seed import READER, seed_jobs

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
                concurrency: int) -> float:
    """CPU seconds of this process per request."""
    queue = iter(range(requests))

    async def worker() -> None:
        for number in queue:
            answer = await call(app, path, bodies[number % len(bodies)], token)
            if b'"errors"' in answer:
                raise RuntimeError(answer[:500])

    started = time.process_time()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    return (time.process_time() - started) / requests


async def measure_cpu(app: Any, bare_path: str, bodies: list[bytes], token: str,
                      args: argparse.Namespace) -> None:
    bare = graphql = float("inf")
    for _ in range(args.rounds):  # alternate, keep the best of each: less noise
        bare = min(bare, await drive(app, bare_path, bodies, token, args.requests,
                                     args.concurrency))
        graphql = min(graphql, await drive(app, "/graphql", bodies, token, args.requests,
                                           args.concurrency))
    print(f"{args.scenario}: bare {bare * 1e6:.0f} us/request, graphql "
          f"{graphql * 1e6:.0f} us/request, ratio {graphql / bare:.2f}")
    if args.pyinstrument:
        from pyinstrument import Profiler

        profiler = Profiler(interval=0.0002, async_mode="disabled")
        profiler.start()
        await drive(app, "/graphql", bodies, token, args.requests, args.concurrency)
        profiler.stop()
        print(profiler.output_text(unicode=False, color=False, show_all=False,
                                   short_mode=False))


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


async def count_instructions(app: Any, bare_path: str, bodies: list[bytes], token: str,
                             args: argparse.Namespace) -> None:
    directory = Path(os.environ["JOBGRAPH_CALLGRIND_DIR"])
    counts = {}
    callgrind("--instr=on")
    for name, path in (("bare", bare_path), ("graphql", "/graphql")):
        callgrind("--zero")
        await drive(app, path, bodies, token, args.requests, args.concurrency)
        callgrind(f"--dump={name}")
        counts[name] = dumped_instructions(directory, name) / args.requests
    callgrind("--instr=off")
    print(f"{args.scenario}: bare {counts['bare'] / 1e3:.0f}k instructions/request, graphql "
          f"{counts['graphql'] / 1e3:.0f}k, ratio {counts['graphql'] / counts['bare']:.2f}")


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
    from .server import create_app

    client = make_client(uri)
    store = Store(client, database)
    await store.ensure_indexes()
    ids = await seed_jobs(store, 300)
    token = mint_token(load_settings(), READER, ())
    bare_path, make = BODIES[args.scenario]
    bodies = [orjson.dumps(body) for body in make(ids)]
    app = create_app()
    async with app.router.lifespan_context(app):
        for path in (bare_path, "/graphql"):  # warm up
            await drive(app, path, bodies, token, 20, args.concurrency)
        if args.instructions:
            await count_instructions(app, bare_path, bodies, token, args)
        else:
            await measure_cpu(app, bare_path, bodies, token, args)
    await client.drop_database(database)
    await client.close()


def run() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.profile", description=__doc__)
    parser.add_argument("scenario", choices=sorted(BODIES))
    parser.add_argument("--requests", type=int, default=300)
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--pyinstrument", action="store_true")
    parser.add_argument("--log-level", default="WARNING")
    parser.add_argument("--instructions", action="store_true",
                        help="count instructions per request under valgrind (callgrind)")
    args = parser.parse_args()
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
