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
from .measure import memory_kb
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
    subscribers: tuple[int, ...] = (1000, 5000)
    growth: tuple[int, int] = (1000, 100_000)
    jobs: int = 1000

    @classmethod
    def from_args(cls, args: argparse.Namespace) -> Plan:
        if args.quick:
            plan = cls(quick=True, duration=1.5, warmup=0.7, rounds=1, subscribers=(200,),
                       growth=(1000, 3000))
        else:
            plan = cls(quick=False, duration=8.0, warmup=2.0, rounds=2)
        if args.duration:
            plan.duration = args.duration
        if args.subscribers:
            plan.subscribers = tuple(args.subscribers)
        if args.growth_jobs:
            plan.growth = (plan.jobs, args.growth_jobs)
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
        self.results: dict[str, Any] = {}
        self.work = Path(tempfile.mkdtemp(prefix="jobgraph-bench-"))

    def token(self, user: str, *roles: str) -> str:
        return mint_token(self.settings, user, roles, ttl=24 * 3600)

    # -- processes ------------------------------------------------------------

    def start_database(self) -> None:
        if self.uri is None:
            self.embedded = EmbeddedServer(data_dir=self.work / "db")
            self.uri = self.embedded.start()

    def start_server(self) -> None:
        assert self.uri is not None  # start_database ran first
        self.port = free_port()
        env = {**os.environ, "JOBGRAPH_MONGODB_URI": self.uri, "JOBGRAPH_DATABASE": self.database,
               "JOBGRAPH_JWT_SECRET": self.secret,
               # the fan-out's subscribers are one user, as many as the largest run
               "JOBGRAPH_MAX_SUBSCRIPTIONS_PER_USER": str(max(self.plan.subscribers, default=1)),
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
            [*profiler, sys.executable, "-m", "uvicorn", "bench.server:create_app", "--factory",
             "--host", "127.0.0.1", "--port", str(self.port), "--workers", "1",
             "--no-access-log", "--log-level", "warning"],
            env=env, cwd=ROOT, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
        self.server_pid = self.server.pid
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
            if "subscriptions" in self.scenarios:
                # a fresh process, so its memory growth is the subscribers' alone
                self.results["server"] = {"peak_rss_kb": memory_kb(self.server_pid)["VmHWM"]}
                if not self.profile_server:
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
            peak = max(memory_kb(self.server_pid)["VmHWM"],
                       self.results.get("server", {}).get("peak_rss_kb", 0))
            self.results["server"] = {"peak_rss_kb": peak}
            await client.drop_database(self.database)
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
        from datetime import UTC, datetime

        from repository.job_documents import job_to_document
        from repository.models import AccessControl, SecretaryJob, new_id

        idle_cursors = await open_cursors(store)
        idle_memory = memory_kb(self.server_pid)["VmRSS"]
        runs = {}
        for count in self.plan.subscribers:
            job_type = f"bench-fanout-{count}"
            job = SecretaryJob(job_id=new_id(), job_type=job_type,
                               created_at=datetime.now(UTC), updated_at=datetime.now(UTC),
                               access_control=AccessControl(read_access=[READER]))
            await store.jobs.collection.insert_one(job_to_document(job))
            result = await self.load({
                "kind": "subscribers", "count": count, "job_id": job.job_id,
                "job_type": job_type, "new_status": "FAILED",
                "ws_url": f"ws://127.0.0.1:{self.port}/graphql", "token": self.token(READER),
                # an admin: its write filter is {_id} alone, which SecantusDB finds by
                # index (a user's holds an $or of access lists, which it scans for)
                "owner_token": self.token("bench-admin", "admin"),
                "mongodb_uri": self.uri, "database": self.database})
            result["memory_per_subscriber_kb"] = round(
                (result["memory_subscribed_kb"] - idle_memory) / count, 1)
            result["open_cursors_idle"] = idle_cursors
            runs[str(count)] = result
            await asyncio.sleep(1.0)  # let the server close the sockets
        return runs

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


SCENARIOS = ["job", "page", "worker", "subscriptions", "growth"]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    parser.add_argument("--quick", action="store_true", help="every scenario, small, < 1 min")
    parser.add_argument("--only", nargs="+", choices=SCENARIOS, help="run only these")
    parser.add_argument("--duration", type=float, help="seconds per measured run")
    parser.add_argument("--subscribers", type=int, nargs="+", help="fan-out sizes")
    parser.add_argument("--growth-jobs", type=int, help="jobs stored for the large growth run")
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
