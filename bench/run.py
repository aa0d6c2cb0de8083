"""``python -m bench``: start the database (embedded unless JOBGRAPH_MONGODB_URI), the API
under uvicorn (one worker, as ``jobgraph serve`` runs it) with the bare baseline mounted,
seed, drive every scenario from a separate load process, print a table and write JSON."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import platform
import secrets
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson

from graph.auth.tokens import mint_token
from graph.config.settings import Settings, load_settings
from repository.database import EmbeddedServer, Store, free_port, make_client

from . import queries
from .load import HttpConnection, request_bytes
from .measure import cpu, memory_kb, percentiles
from .report import render_table, verdicts
from .seed import GROWTH_FILTER, READER, seed_jobs

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "bench" / "results"


@dataclass
class Plan:
    quick: bool
    duration: float
    warmup: float
    rounds: int
    read_clients: int = 32
    page_clients: int = 8
    workers: int = 16
    subscribers: tuple[int, ...] = (1000, 10_000)
    changes: int = 5
    subscriber_processes: int = max(1, min(8, (os.cpu_count() or 2) // 2))
    scale_workers: int = max(2, min(8, (os.cpu_count() or 2) // 4))
    growth: tuple[int, int] = (1000, 100_000)
    jobs: int = 1000
    scale_warmup: float = 2.0
    """The scaling scenario's warm-up: every worker process of the server warms up."""

    @classmethod
    def from_args(cls, args: argparse.Namespace) -> Plan:
        if args.quick:
            # small enough for the suite (tests/test_bench.py), where it runs beside the
            # other tests on 2 cores and only shows that every scenario runs: short
            # windows, fewer jobs and workers, no long warm-up for scaling (~25 s)
            plan = cls(quick=True, duration=0.6, warmup=0.4, rounds=1, subscribers=(200,),
                       changes=2, jobs=300, growth=(300, 600), workers=8, scale_warmup=0.4)
        else:
            plan = cls(quick=False, duration=8.0, warmup=2.0, rounds=2)
        if args.duration:
            plan.duration = args.duration
        if args.subscribers:
            plan.subscribers = tuple(args.subscribers)
        if args.growth_jobs:
            plan.growth = (plan.jobs, args.growth_jobs)
        if args.scale_workers:
            plan.scale_workers = args.scale_workers
        return plan


class Bench:
    def __init__(self, plan: Plan, scenarios: list[str], output: Path,
                 profile_server: Path | None = None) -> None:
        self.plan = plan
        self.profile_server = profile_server
        self.scenarios = scenarios
        self.output = output
        self.database = f"jobgraph_bench_{uuid.uuid4().hex[:8]}"
        self.secret = secrets.token_hex(32)
        self.settings: Settings = load_settings(jwt_secret=self.secret, database=self.database)
        self.uri = os.environ.get("JOBGRAPH_MONGODB_URI")
        self.real_mongodb = self.uri is not None
        self.embedded: EmbeddedServer | None = None
        self.server: subprocess.Popen[bytes] | None = None
        self.server_pid = 0
        self.port = 0
        self.served = False
        """Whether the server now running has had a load (a fresh one has not)."""
        self.peak_rss_kb = 0
        """The highest peak RSS of the servers stopped so far (each scenario may restart it)."""
        self.results: dict[str, Any] = {}
        self.work = Path(tempfile.mkdtemp(prefix="jobgraph-bench-"))

    def token(self, user: str, *roles: str) -> str:
        return mint_token(self.settings, user, roles, ttl=24 * 3600)

    # -- processes ------------------------------------------------------------

    def start_database(self) -> None:
        if self.uri is None:
            self.embedded = EmbeddedServer(data_dir=self.work / "db")
            self.uri = self.embedded.start()

    def start_server(self, workers: int = 1) -> None:
        assert self.uri is not None  # start_database ran first
        self.port = free_port()
        # the fan-out's subscribers are one user, as many as the largest run
        most = str(max(self.plan.subscribers, default=1) + 10)
        env = {**os.environ, "JOBGRAPH_MONGODB_URI": self.uri, "JOBGRAPH_DATABASE": self.database,
               "JOBGRAPH_JWT_SECRET": self.secret, "JOBGRAPH_MAX_SUBSCRIPTIONS_PER_USER": most,
               "JOBGRAPH_MAX_SUBSCRIPTIONS_PER_PROCESS": most,
               "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT),
                                                           os.environ.get("PYTHONPATH")]))}
        RESULTS.mkdir(parents=True, exist_ok=True)
        log = (RESULTS / "server.log").open("wb")
        profiler = []
        if self.profile_server is not None:  # sampled on-CPU stacks, see README
            beside = Path(sys.executable).with_name("py-spy")
            profiler = [str(beside) if beside.exists() else "py-spy", "record", "--rate", "250",
                        "--format", "raw", "--output", str(self.profile_server), "--"]
        self.server = subprocess.Popen(
            [*profiler, sys.executable, "-m", "bench.server", "--port", str(self.port),
             "--workers", str(workers)],
            env=env, cwd=ROOT, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
        self.server_pid = self.server.pid
        self.served = False
        log.close()
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if profiler and self.server_pid == self.server.pid:
                self.server_pid = _child_of(self.server.pid) or self.server.pid
            if self.server.poll() is not None:
                raise RuntimeError(f"the server exited; see {RESULTS / 'server.log'}")
            with contextlib.suppress(OSError):
                import urllib.request

                with urllib.request.urlopen(f"http://127.0.0.1:{self.port}/readyz",
                                            timeout=2) as answer:
                    if answer.status == 200:
                        return
            time.sleep(0.1)
        raise RuntimeError("the server did not become ready within 60 s")

    def stop(self) -> None:
        self.stop_server()
        if self.embedded is not None:
            self.embedded.stop()
        shutil.rmtree(self.work, ignore_errors=True)

    def stop_server(self) -> None:
        if self.server is not None and self.server.poll() is None:
            with contextlib.suppress(OSError):
                self.peak_rss_kb = max(self.peak_rss_kb, memory_kb(self.server_pid)["VmHWM"])
            if 0 < self.server_pid != self.server.pid:  # under py-spy, which writes at the end
                with contextlib.suppress(OSError):
                    os.kill(self.server_pid, signal.SIGTERM)
            else:
                self.server.terminate()
            try:
                self.server.wait(20)
            except subprocess.TimeoutExpired:
                self.server.kill()

    async def load(self, spec: dict[str, Any], module: str = "bench.load") -> dict[str, Any]:
        self.served = True
        path = self.work / f"spec-{uuid.uuid4().hex[:6]}.json"
        path.write_bytes(orjson.dumps({"host": "127.0.0.1", "port": self.port,
                                       "server_pid": self.server_pid,
                                       **spec}))
        process = await asyncio.create_subprocess_exec(
            sys.executable, "-m", module, str(path), cwd=ROOT,
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
            env={**os.environ, "PYTHONPATH": str(ROOT)})
        out, err = await process.communicate()
        if process.returncode != 0:
            raise RuntimeError(f"{module} failed:\n{err.decode()[-3000:]}")
        return orjson.loads(out)

    # -- the run ----------------------------------------------------------------

    async def run(self) -> dict[str, Any]:
        started = time.time()
        try:
            self.start_database()
            assert self.uri is not None
            client = make_client(self.uri)
            store = self.store = Store(client, self.database)
            await store.ensure_indexes()
            self.start_server()
            if "worker" in self.scenarios:
                # First, on an empty collection: SecantusDB scans the collection for the
                # lifecycle's updates (their filter holds an $or of access lists), so with
                # seeded jobs there it would measure little but its own scans.
                self.results["worker"] = await self.worker_run()
            self.job_ids = await seed_jobs(store, self.plan.jobs)
            await self.check_baselines_answer_the_same()
            if "growth" in self.scenarios:
                small = await self.growth_run()
            if "job" in self.scenarios:
                self.results["job"] = await self.compare_http(
                    "/bare/job", [{"query": queries.JOB, "variables": {"id": job_id}}
                                  for job_id in self.job_ids[:500]], self.plan.read_clients)
            if "page" in self.scenarios:
                self.results["page"] = await self.compare_http(
                    "/bare/jobs", [{"query": queries.JOBS_PAGE, "variables": {"first": 100}}],
                    self.plan.page_clients)
                self.results["page"]["round_trips"] = await self.round_trips()
            if "scaling" in self.scenarios:
                self.results["scaling"] = await self.scaling_run()
            if "subscriptions" in self.scenarios:
                # a fresh process (the scaling scenario leaves one), so its memory growth
                # is the subscribers' alone
                if self.served and not self.profile_server:
                    self.stop_server()
                    self.start_server()
                self.results["subscriptions"] = await self.subscription_runs(store)
            if "growth" in self.scenarios:
                small_size, large_size = self.plan.growth
                await store.jobs.collection.delete_many({"job_type": {"$regex": "^bench-"}})
                have = await store.jobs.collection.count_documents({})
                await seed_jobs(store, large_size - have, batches=0, start=have)
                large = await self.growth_run()
                self.results["growth"] = {
                    "small": {"jobs": small_size, **small},
                    "large": {"jobs": large_size, **large},
                    "plan": await self.growth_plan(store),
                }
            self.stop_server()  # its peak too
            self.results["server"] = {"peak_rss_kb": self.peak_rss_kb}
            if self.embedded is None:  # our own database goes with its directory: a drop
                await client.drop_database(self.database)  # there took ~24 s of a quick run
            await client.close()
        finally:
            self.stop()
        (RESULTS / "raw.json").write_bytes(orjson.dumps(self.results, option=orjson.OPT_INDENT_2))
        report = {
            "meta": self.meta(time.time() - started),
            "scenarios": verdicts(self.results, real_mongodb=self.real_mongodb),
            "server": self.results.get("server", {}),
        }
        return report

    async def check_baselines_answer_the_same(self) -> None:
        """The bare endpoints must return exactly what GraphQL returns, or they prove nothing."""
        token = self.token(READER)
        cases = [("/bare/job", {"query": queries.JOB, "variables": {"id": self.job_ids[0]}}),
                 ("/bare/jobs", {"query": queries.JOBS_PAGE, "variables": {"first": 100}})]
        connection = HttpConnection("127.0.0.1", self.port)
        await connection.open()
        try:
            for path, body in cases:
                _, service = await connection.send(request_bytes("/graphql", body, token))
                _, bare = await connection.send(request_bytes(path, body, token))
                if orjson.loads(service) != orjson.loads(bare):
                    raise RuntimeError(f"{path} does not answer like GraphQL:\n"
                                       f"graphql: {service[:600]!r}\nbare: {bare[:600]!r}")
        finally:
            await connection.close()

    async def compare_http(self, bare_path: str, bodies: list[dict[str, Any]],
                     clients: int) -> dict[str, Any]:
        token = self.token(READER)
        runs: dict[str, list[dict[str, Any]]] = {"baseline": [], "service": []}
        for _ in range(self.plan.rounds):
            for variant, path in (("baseline", bare_path), ("service", "/graphql")):
                runs[variant].append(await self.load({
                    "kind": "http", "path": path, "bodies": bodies, "token": token,
                    "clients": clients, "duration": self.plan.duration,
                    "warmup": self.plan.warmup}))
        return {"clients": clients, **{variant: merge(found) for variant, found in runs.items()}}

    async def worker_run(self) -> dict[str, Any]:
        tokens = [self.token(f"bench-worker-{n}", "worker") for n in range(self.plan.workers)]
        common = {"workers": self.plan.workers, "duration": self.plan.duration,
                  "warmup": self.plan.warmup}
        service, baseline = [], []
        jobs = self.store.jobs.collection
        for _ in range(self.plan.rounds):  # each on an empty collection, as explained above
            service.append(await self.load({"kind": "workers", "tokens": tokens, **common}))
            await jobs.delete_many({})
            baseline.append(await self.load({"mongodb_uri": self.uri,
                                             "database": self.database, **common},
                                            module="bench.direct"))
            await jobs.delete_many({})
        return {"workers": self.plan.workers, "baseline": merge(baseline),
                "service": merge(service)}

    async def subscription_runs(self, store: Store) -> dict[str, Any]:
        idle_cursors = await open_cursors(store)
        runs = {}
        for count in self.plan.subscribers:
            runs[str(count)] = {**await self.fanout_run(store, count),
                                "open_cursors_idle": idle_cursors}
            await asyncio.sleep(1.0)  # let the server close the sockets
        return runs

    async def fanout_run(self, store: Store, count: int) -> dict[str, Any]:
        """``count`` subscribers of one job in ``bench.subscribers`` processes (their CPU is
        not the server's), then ``changes`` writes straight into MongoDB, each timed from
        the write to every subscriber's frame; the server's CPU for connecting and for each
        change is read from /proc around each."""
        from datetime import UTC, datetime

        from repository.job_documents import job_to_document
        from repository.models import AccessControl, SecretaryJob, new_id

        from .subscribers import Client

        job = SecretaryJob(job_id=new_id(), job_type=f"bench-fanout-{count}",
                           created_at=datetime.now(UTC), updated_at=datetime.now(UTC),
                           access_control=AccessControl(read_access=[READER]))
        await store.jobs.collection.insert_one(job_to_document(job))
        spec = {"token": self.token(READER), "query": queries.JOB_CHANGED,
                "variables": {"id": job.job_id}}
        url = f"ws://127.0.0.1:{self.port}/graphql"
        env = {**os.environ, "PYTHONPATH": str(ROOT)}
        processes = max(1, min(self.plan.subscriber_processes, count))
        clients = [await Client.start(str(ROOT), env) for _ in range(processes)]
        try:
            # one subscriber first, uncounted: the document is parsed and validated
            await clients[0].ask({"op": "open", "url": url, "subscriptions": [spec]})
            rest = count - 1
            shares = [rest // processes + (n < rest % processes) for n in range(processes)]
            memory_before = memory_kb(self.server_pid)["VmRSS"]
            cpu_before, started = cpu(self.server_pid), time.perf_counter()
            await asyncio.gather(*(c.ask({"op": "open", "url": url,
                                          "subscriptions": [spec] * share})
                                   for c, share in zip(clients, shares, strict=True)))
            connect_cpu = cpu(self.server_pid).total - cpu_before.total
            connect_s = time.perf_counter() - started
            await asyncio.sleep(0.5)  # settled, before reading its memory
            memory_subscribed = memory_kb(self.server_pid)["VmRSS"]
            cursors_subscribed = await open_cursors(store)
            delays: list[float] = []
            database_ms: list[float] = []
            fanout_cpu, delivered = 0.0, 0
            for number in range(self.plan.changes):
                percent = 10 + number
                for c in clients:
                    await c.ask({"op": "expect", "field": "jobChanged",
                                 "key": "progress.percent", "value": percent})
                stream = await store.jobs.collection.watch(
                    [{"$match": {"documentKey._id": job.job_id}}])
                seen = asyncio.create_task(arrival(stream))
                before = cpu(self.server_pid)
                changed = (await clients[0].ask({
                    "op": "change", "mongodb_uri": self.uri, "database": self.database,
                    "job_ids": [job.job_id],
                    "set": {"progress": {"step": "bench", "percent": percent,
                                         "message": None}}}))["at"]
                answers = await asyncio.gather(*(c.ask({"op": "collect", "timeout": 60})
                                                 for c in clients))
                fanout_cpu += cpu(self.server_pid).total - before.total
                with contextlib.suppress(Exception):  # only a figure beside the delays
                    database_ms.append((await asyncio.wait_for(seen, 10) - changed) * 1000)
                await stream.close()
                for answer in answers:
                    delivered += len(answer["arrivals"])
                    delays.extend(at - changed for at in answer["arrivals"])
        finally:
            for c in clients:
                await c.stop()
        deliveries = count * self.plan.changes
        return {
            "subscribers": count,
            "changes": self.plan.changes,
            "client_processes": processes,
            "delivered": delivered,
            "expected": deliveries,
            "connect_s": round(connect_s, 2),
            "connect_cpu_per_subscriber_us": round(connect_cpu / max(1, count - 1) * 1e6, 1),
            "fanout_cpu_s": round(fanout_cpu, 3),
            "cpu_per_delivery_us": round(fanout_cpu / deliveries * 1e6, 1),
            **percentiles(delays),
            "max_ms": round(max(delays) * 1000, 3) if delays else None,
            # when a bare change stream in the driver saw each write: the database's part
            "database_ms": round(sorted(database_ms)[len(database_ms) // 2], 1)
            if database_ms else None,
            "memory_before_kb": memory_before,
            "memory_subscribed_kb": memory_subscribed,
            "memory_per_subscriber_kb": round(
                (memory_subscribed - memory_before) / max(1, count - 1), 1),
            "open_cursors_subscribed": cursors_subscribed,
        }

    async def scaling_run(self) -> dict[str, Any]:
        """Job by id served by 1 and by N uvicorn worker processes (``jobgraph serve
        --workers N``: each its own event loop and change stream), driven by several load
        processes; rounds alternate. Throughput with N over throughput with 1."""
        bodies = [{"query": queries.JOB, "variables": {"id": job_id}}
                  for job_id in self.job_ids[:500]]
        token = self.token(READER)
        sizes = (1, self.plan.scale_workers)
        runs: dict[int, list[dict[str, Any]]] = {workers: [] for workers in sizes}
        cursors: dict[int, int | None] = {}
        for _ in range(self.plan.rounds):
            for workers in sizes:
                self.stop_server()
                self.start_server(workers)
                await settled(self.server_pid)
                loaders = max(1, min(workers, 4))
                found = await asyncio.gather(*(self.load({
                    "kind": "http", "path": "/graphql", "bodies": bodies, "token": token,
                    "clients": self.plan.read_clients * workers // loaders,
                    "duration": self.plan.duration, "warmup": self.plan.scale_warmup})
                    for _ in range(loaders)))
                cursors[workers] = await open_cursors(self.store)
                runs[workers].append({
                    "loaders": loaders,
                    "clients": self.plan.read_clients * workers // loaders * loaders,
                    "requests": sum(run["requests"] for run in found),
                    "throughput_per_s": sum(run["throughput_per_s"] for run in found),
                    "cpu_per_op_us": round(
                        sum(run["server_cpu_s"] for run in found) / len(found)
                        / max(1, sum(run["requests"] for run in found)) * 1e6, 1),
                    **{key: max(run[key] for run in found)
                       for key in ("p50_ms", "p95_ms", "p99_ms")},
                    "failures": sum(run["failures"] for run in found)})
        self.stop_server()
        self.start_server()
        return {str(workers): {
            "workers": workers, "open_cursors": cursors[workers], **found[-1],
            "throughput_per_s": round(sum(run["throughput_per_s"] for run in found)
                                      / len(found), 1),
            "rounds": [run["throughput_per_s"] for run in found]}
            for workers, found in runs.items()}

    async def growth_run(self) -> dict[str, Any]:
        body = {"query": queries.GROWTH_PAGE, "variables": GROWTH_FILTER}
        return await self.load({"kind": "http", "path": "/graphql", "bodies": [body],
                          "token": self.token(READER), "clients": 2,
                          "duration": self.plan.duration, "warmup": self.plan.warmup})

    async def growth_plan(self, store: Store) -> dict[str, Any]:
        """How MongoDB answers the growth page (explain): a blocking SORT stage or not."""
        from graph.schema.jobs.types import JobFilterInput
        from repository.access import Principal
        from repository.models import JobStatus
        from repository.pagination import PageRequest, keyset_query

        job_filter = JobFilterInput(status=JobStatus.COMPLETED, job_type="pdf").to_filter()
        query, sort = keyset_query(store.jobs._list_query(Principal(READER), job_filter),
                                   PageRequest(first=50))
        try:
            explained = await store.db.command(
                "explain", {"find": "jobs", "filter": query, "sort": dict(sort), "limit": 51},
                verbosity="executionStats")
        except Exception as exc:
            return {"explain": f"unavailable: {type(exc).__name__}"}
        text = orjson.dumps(explained.get("queryPlanner", {})).decode()
        stats = explained.get("executionStats", {})
        return {"blocking_sort": '"stage":"SORT"' in text,
                "keys_examined": stats.get("totalKeysExamined"),
                "docs_examined": stats.get("totalDocsExamined"),
                "returned": stats.get("nReturned")}

    async def round_trips(self) -> dict[str, int]:
        """Database commands one page costs, at three page sizes (counted in-process)."""
        import httpx
        from pymongo import monitoring

        from graph.server.app import create_app

        class Counter(monitoring.CommandListener):
            """Commands on the bench database, less the API's own change stream."""

            def __init__(self, database: str) -> None:
                self.database = database
                self.count = 0
                self.stream_requests: set[int] = set()
                self.stream_cursors: set[Any] = set()

            def started(self, event: monitoring.CommandStartedEvent) -> None:
                name, command = event.command_name, event.command
                if event.database_name != self.database or name in ("endSessions", "ping"):
                    return
                if name == "aggregate" and "$changeStream" in str(command.get("pipeline")):
                    self.stream_requests.add(event.request_id)
                elif not (name == "getMore" and command.get("getMore") in self.stream_cursors):
                    self.count += 1

            def succeeded(self, event: monitoring.CommandSucceededEvent) -> None:
                if event.request_id in self.stream_requests:
                    self.stream_cursors.add(event.reply.get("cursor", {}).get("id"))

            def failed(self, event: monitoring.CommandFailedEvent) -> None:
                pass

        counter = Counter(self.database)
        # no scheduler, webhook loops or periodic reaper: on a busy machine one of them
        # queried during each of the three tries and a page seemed to cost more
        quiet = self.settings.model_copy(update={
            "log_level": "WARNING", "reaper_interval_seconds": 3600, "dispatcher": False})
        app = create_app(quiet, mongodb_uri=self.uri,
                         client_options={"event_listeners": [counter]})
        found = {}
        headers = {"Authorization": f"Bearer {self.token(READER)}"}
        async with app.router.lifespan_context(app), httpx.AsyncClient(
                transport=httpx.ASGITransport(app=app), base_url="http://bench") as client:
            for size in (10, 50, 100):
                counts = []
                for _ in range(3):  # the least of three: the reaper's start-up sweep
                    counter.count = 0
                    answer = await client.post("/graphql", headers=headers, json={
                        "query": queries.JOBS_PAGE, "variables": {"first": size}})
                    assert "errors" not in answer.json(), answer.text
                    counts.append(counter.count)
                found[str(size)] = min(counts)
        return found

    def meta(self, seconds: float) -> dict[str, Any]:
        import importlib.metadata as metadata

        def version(name: str) -> str | None:
            try:
                return metadata.version(name)
            except metadata.PackageNotFoundError:
                return None

        return {
            "mode": "quick" if self.plan.quick else "full",
            "database": "real MongoDB (JOBGRAPH_MONGODB_URI)" if self.real_mongodb
            else "embedded SecantusDB",
            "cpus": os.cpu_count(), "machine": platform.machine(),
            "python": platform.python_version(),
            "versions": {name: version(name) for name in (
                "strawberry-graphql", "graphql-core", "starlette", "uvicorn", "uvloop",
                "httptools", "pymongo", "orjson", "SecantusDB")},
            "duration_s": self.plan.duration, "rounds": self.plan.rounds,
            "seconds": round(seconds, 1),
            "finished": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        }


def _child_of(pid: int) -> int | None:
    """The server under py-spy: py-spy's child process."""
    try:
        with open(f"/proc/{pid}/task/{pid}/children") as handle:
            children = handle.read().split()
    except OSError:
        return None
    return int(children[0]) if children else None


async def settled(pid: int, seconds: float = 60.0) -> None:
    """Until the server's processes are done starting: their CPU use falls to a trickle
    (the first worker answering /readyz says nothing of the others)."""
    deadline = time.monotonic() + seconds
    last = cpu(pid).total
    while time.monotonic() < deadline:
        await asyncio.sleep(0.5)
        now = cpu(pid).total
        if now - last < 0.1:
            return
        last = now


async def arrival(stream: Any) -> float:
    """When the stream's next event arrived."""
    await stream.next()
    return time.perf_counter()


async def open_cursors(store: Store) -> int | None:
    try:
        status = await store.client.admin.command("serverStatus")
    except Exception:
        return None
    return status.get("metrics", {}).get("cursor", {}).get("open", {}).get("total")


def merge(runs: list[dict[str, Any]]) -> dict[str, Any]:
    """Rounds of one variant: CPU per op over all of them, the other figures of the median."""
    if len(runs) == 1:
        return runs[0]
    ops_key = "requests" if "requests" in runs[0] else "lifecycles"
    cpu_key = "server_cpu_s" if "server_cpu_s" in runs[0] else "process_cpu_s"
    counted = [run for run in runs if run[ops_key]] or runs  # a stalled round says nothing
    ops = sum(run[ops_key] for run in counted)
    cpu_s = sum(run[cpu_key] for run in counted)
    middle = sorted(counted, key=lambda run: run["cpu_per_op_us"] or 0)[len(counted) // 2]
    return {**middle, ops_key: ops, cpu_key: round(cpu_s, 3),
            "cpu_per_op_us": round(cpu_s / ops * 1e6, 1) if ops else None,
            "rounds": [run["cpu_per_op_us"] for run in runs]}


SCENARIOS = ["job", "page", "worker", "scaling", "subscriptions", "growth"]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    parser.add_argument("--quick", action="store_true",
                        help="every scenario, small (~30 s): that each runs")
    parser.add_argument("--only", nargs="+", choices=SCENARIOS, help="run only these")
    parser.add_argument("--duration", type=float, help="seconds per measured run")
    parser.add_argument("--subscribers", type=int, nargs="+", help="fan-out sizes")
    parser.add_argument("--growth-jobs", type=int, help="jobs stored for the large growth run")
    parser.add_argument("--scale-workers", type=int,
                        help="worker processes of the scaling run (default: CPUs / 4, 2 to 8)")
    parser.add_argument("--json", type=Path, help="where to write the JSON report")
    parser.add_argument("--profile-server", type=Path, metavar="RAW",
                        help="run the server under py-spy, writing its samples here")
    args = parser.parse_args(argv)
    plan = Plan.from_args(args)
    stamp = time.strftime("%Y%m%d-%H%M%S")
    output = args.json or RESULTS / f"bench-{stamp}{'-quick' if plan.quick else ''}.json"
    bench = Bench(plan, args.only or SCENARIOS, output, args.profile_server)
    report = asyncio.run(bench.run())
    output.parent.mkdir(parents=True, exist_ok=True)
    output.write_bytes(orjson.dumps(report, option=orjson.OPT_INDENT_2))
    print(render_table(report))
    print(f"\nJSON: {output}")
    return 0
