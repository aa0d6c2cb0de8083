"""``python -m bench.profile fanout``: the server's cost per subscriber, in-process.

The API runs under uvicorn in this process (as ``jobgraph serve`` runs it); its subscribers
run in a ``bench.subscribers`` process, which also makes the changes (straight into
MongoDB), so what is counted here is the server alone: per subscriber, what connecting and
subscribing cost (the WebSocket handshake, ``connection_init`` with its token, the
subscribe message, the initial state), and per delivery, what one change costs divided by
the subscribers it reached (the change stream, the fan-out, the frames).

Mixes of subscribers (``--mix``):

- ``same``: one user, one document, one job: the case shared execution is for;
- ``users``: a user each, the same document, on a public job (whose selection depends on
  nothing but the job: still shared);
- ``viewer``: a user each, a document that selects ``viewerCanWrite`` (caller-dependent:
  one execution per user, as without sharing);
- ``distinct``: one user, a job each (nothing in common: the worst case).

``--memory`` reports memory per idle subscriber instead (tracemalloc's traced bytes and
the RSS), ``--instructions`` counts instructions (callgrind; see ``bench/profile.py``).
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import os
import time
import tracemalloc
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from graph.auth.tokens import mint_token
from graph.config.settings import load_settings
from repository.database import Store, free_port, make_client
from repository.job_documents import job_to_document
from repository.models import AccessControl, AccessVisibility, SecretaryJob, new_id

from .measure import memory_kb
from .seed import READER
from .subscribers import Client

ROOT = Path(__file__).resolve().parent.parent

JOB_CHANGED = ("subscription Changed($id: ID!) { jobChanged(jobId: $id) { jobId status version "
               "progress { step percent } } }")
JOB_CHANGED_VIEWER = ("subscription Changed($id: ID!) { jobChanged(jobId: $id) { jobId status "
                      "version progress { step percent } viewerCanWrite } }")
MIXES = ("same", "users", "viewer", "distinct", "idle")


async def new_job(store: Store, public: bool) -> str:
    now = datetime.now(UTC)
    access = AccessControl(visibility=AccessVisibility.PUBLIC if public
                           else AccessVisibility.PRIVATE, read_access=[READER])
    job = SecretaryJob(job_id=new_id(), job_type="bench-fanout", created_at=now,
                       updated_at=now, access_control=access)
    await store.jobs.collection.insert_one(job_to_document(job))
    return job.job_id


async def subscriptions(store: Store, settings: Any, mix: str, count: int
                        ) -> tuple[list[dict[str, Any]], list[str]]:
    """What each subscriber sends, and the jobs they follow."""
    if mix == "distinct":
        jobs = [await new_job(store, public=False) for _ in range(count)]
        token = mint_token(settings, READER, (), ttl=24 * 3600)
        return [{"token": token, "query": JOB_CHANGED, "variables": {"id": job_id}}
                for job_id in jobs], jobs
    job_id = await new_job(store, public=mix != "same")
    if mix in ("same", "idle"):
        token = mint_token(settings, READER, (), ttl=24 * 3600)
        query = JOB_CHANGED if mix == "same" else None  # idle: connections alone
        return [{"token": token, "query": query, "variables": {"id": job_id}}
                for _ in range(count)], [job_id]
    query = JOB_CHANGED if mix == "users" else JOB_CHANGED_VIEWER
    return [{"token": mint_token(settings, f"bench-user-{n}", (), ttl=24 * 3600),
             "query": query, "variables": {"id": job_id}} for n in range(count)], [job_id]


class Meter:
    """CPU seconds, or instructions under callgrind, of one labelled window."""

    def __init__(self, instructions: bool) -> None:
        self.instructions = instructions
        self.started = 0.0
        self.system = 0.0
        """System (kernel) seconds of the last window, part of what ``stop`` returns."""
        if instructions:
            from .profile import callgrind

            callgrind("--instr=on")

    def start(self) -> None:
        if self.instructions:
            from .profile import callgrind

            callgrind("--zero")
        self.started = time.process_time()
        self.system = os.times().system

    def stop(self, label: str) -> float:
        if self.instructions:
            from .profile import callgrind, dumped_instructions

            callgrind(f"--dump={label}")
            return dumped_instructions(Path(os.environ["JOBGRAPH_CALLGRIND_DIR"]), label)
        self.system = os.times().system - self.system
        return time.process_time() - self.started


async def run(args: argparse.Namespace, uri: str, database: str) -> None:
    import uvicorn

    from graph.server.websocket_protocol import UVICORN_PROTOCOLS

    from .server import create_app

    # the subscribers of most mixes are one user, as many as the run has
    os.environ["JOBGRAPH_MAX_SUBSCRIPTIONS_PER_USER"] = str(args.subscribers + 10)
    settings = load_settings()
    client = make_client(uri)
    store = Store(client, database)
    await store.ensure_indexes()
    specs, jobs = await subscriptions(store, settings, args.mix, args.subscribers)
    port = free_port()
    app = create_app()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port,
                                           log_level="warning", lifespan="on",
                                           ws_ping_interval=None,
                                           ws_per_message_deflate=settings.websocket_compression,
                                           **UVICORN_PROTOCOLS))
    serving = asyncio.create_task(server.serve())
    while not server.started:
        if serving.done():
            serving.result()
        await asyncio.sleep(0.02)
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    processes = max(1, min(args.clients, len(specs)))
    clients = [await Client.start(str(ROOT), env) for _ in range(processes)]
    meter = Meter(args.instructions)
    url = f"ws://127.0.0.1:{port}/graphql"
    try:
        # a few subscribers first: the documents are parsed and validated, the code warm
        await clients[0].ask({"op": "open", "url": url, "subscriptions": specs[:2]})
        rest = specs[2:]
        shares = [rest[n::processes] for n in range(processes)]
        gc.collect()
        traced_before = rss_before = 0
        if args.memory:
            tracemalloc.start(1)
            traced_before = tracemalloc.get_traced_memory()[0]
            rss_before = memory_kb(os.getpid())["VmRSS"]
        connect_profile = None
        if args.cprofile_connect:
            import cProfile

            connect_profile = cProfile.Profile()
            connect_profile.enable()
        meter.start()
        await asyncio.gather(*(c.ask({"op": "open", "url": url, "subscriptions": share})
                               for c, share in zip(clients, shares, strict=True)))
        connect = meter.stop("connect")
        connect_system = meter.system
        if connect_profile is not None:
            import pstats

            connect_profile.disable()
            order = os.environ.get("JOBGRAPH_CPROFILE_SORT", "tottime")  # or cumulative
            pstats.Stats(connect_profile).sort_stats(order).print_stats(args.cprofile_connect)
        connected = len(rest)
        if args.memory:
            await asyncio.sleep(0.5)
            gc.collect()
            traced = (tracemalloc.get_traced_memory()[0] - traced_before) / connected
            snapshot = tracemalloc.take_snapshot()
            tracemalloc.stop()
            rss = (memory_kb(os.getpid())["VmRSS"] - rss_before) / connected
            print(f"fanout ({args.mix}, {connected} idle subscribers): traced "
                  f"{traced / 1024:.1f} KiB per subscriber, RSS {rss:.1f} KB per subscriber")
            if args.top:
                for stat in snapshot.statistics("lineno")[:args.top]:
                    print(f"  {stat.size / connected:8.0f} B/sub  {stat.traceback}")
            return
        total = len(specs)
        profiler = None
        if args.pyinstrument:
            from pyinstrument import Profiler

            profiler = Profiler(interval=0.0002, async_mode="disabled")
            profiler.start()
        meter.start()
        delays: list[float] = []
        for number in range(args.changes):
            percent = 10 + number
            for c in clients:
                await c.ask({"op": "expect", "field": "jobChanged", "key": "progress.percent",
                             "value": percent})
            changed = (await clients[0].ask({
                "op": "change", "mongodb_uri": uri, "database": database, "job_ids": jobs,
                "set": {"progress": {"step": "bench", "percent": percent,
                                     "message": None}}}))["at"]
            answers = await asyncio.gather(*(c.ask({"op": "collect", "timeout": 60})
                                             for c in clients))
            missing = sum(answer["missing"] for answer in answers)
            if missing:
                raise RuntimeError(f"{missing} of {total} subscribers missed change {number}")
            delays.extend(at - changed for answer in answers for at in answer["arrivals"])
        fanout = meter.stop("fanout")
        if profiler is not None:
            profiler.stop()
            print(profiler.output_text(unicode=False, color=False, show_all=False))
        unit, scale = ("k instructions", 1e-3) if args.instructions else ("us", 1e6)
        kernel = "" if args.instructions else (
            f" ({connect_system / connected * scale:.0f} of it in the kernel)")
        delays.sort()
        p99 = delays[min(len(delays) - 1, int(0.99 * len(delays)))] * 1000
        print(f"fanout ({args.mix}, {total} subscribers, {args.changes} changes, "
              f"{processes} client processes): connect + subscribe "
              f"{connect / connected * scale:.0f} {unit}/subscriber{kernel}, delivery "
              f"{fanout / (args.changes * total) * scale:.1f} {unit}/delivery, "
              f"p99 {p99:.0f} ms after the write")
    finally:
        for c in clients:
            await c.stop()
        server.should_exit = True
        await serving
        await client.drop_database(database)
        await client.close()
