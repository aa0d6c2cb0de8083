"""Screenshots of the dashboard for the README (`make screenshots`): the demo data, live.

Starts `jobgraph serve` on a free port with a throwaway embedded database, seeds it with
`seed-demo`, adds schedules, a webhook (to a small receiver here that fails now and then)
and a documentation job's progress, lets the demo worker run for a while, then opens
each main page in Chromium (Playwright, Debian's `chromium`) as alice, with the admin role
(so the queue table, the queues' controls and every job action show), and writes PNGs to
docs/screenshots/. Everything stops at the end.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import random
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from playwright.async_api import async_playwright

from graph.auth.tokens import generate_secret, mint_token
from graph.commands.demo import Client, demo_worker, seed_demo
from graph.config.settings import load_settings
from repository.database import free_port

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "docs" / "screenshots"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
                 "--disable-background-networking", "--hide-scrollbars",
                 "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1"]
WORKER_SECONDS = 30

CREATE_SCHEDULE = """mutation($input: CreateScheduleInput!) {
  createSchedule(input: $input) { scheduleId } }"""
CREATE_BATCH = """mutation($input: CreateBatchInput!) { createBatch(input: $input) { batchId } }"""
CREATE_WEBHOOK = """mutation($input: CreateWebhookInput!) {
  createWebhook(input: $input) { webhookId } }"""
DOC_JOBS = """query { documentationJobs(filter: {status: RUNNING}) {
  edges { node { jobId repositoryName } } } }"""
DOC_STATS = """mutation($id: ID!) { addDocumentationJobStatistics(jobId: $id, increments: {
  totalFilesAnalyzed: 412, leafNodes: 138, maxDepth: 9, totalTokensUsed: 184220}) { jobId } }"""
DOC_FILES = """mutation($id: ID!, $files: [String!]!) {
  addGeneratedFiles(jobId: $id, files: $files, moduleCount: 14) { jobId } }"""
BATCHES = "query { batches(first: 5) { edges { node { batchId batchName } } } }"
CREATE_JOB = """mutation($input: CreateJobInput!) { createJob(input: $input) { jobId } }"""
CLAIM = """mutation { claimJob(jobTypes: ["ocr"]) { jobId } }"""
LOG = """mutation($id: ID!, $m: String!) {
  appendJobLogs(jobId: $id, entries: [{level: INFO, message: $m}]) { logSeq } }"""
PROGRESS = """mutation($id: ID!) {
  updateJobProgress(jobId: $id, progress: {step: "recognising", percent: 60}) { version } }"""


class Hooks(BaseHTTPRequestHandler):
    """A webhook endpoint that answers 204, and 500 to every fourth request."""

    count = 0

    def do_POST(self) -> None:
        self.rfile.read(int(self.headers.get("content-length") or 0))
        Hooks.count += 1
        self.send_response(500 if Hooks.count % 4 == 0 else 204)
        self.end_headers()

    def log_message(self, *args: Any) -> None:
        pass


def start_server(port: int, env: dict[str, str], log_path: Path) -> subprocess.Popen[bytes]:
    with log_path.open("wb") as log:
        return subprocess.Popen(
            [sys.executable, "-m", "graph.commands.cli", "serve", "--port", str(port)],
            env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)


def stop_server(server: subprocess.Popen[bytes]) -> None:
    """SIGTERM to the server alone (it stops its embedded database itself), then to
    whatever of its group is left."""
    server.terminate()
    try:
        server.wait(timeout=30)
    except subprocess.TimeoutExpired:
        os.killpg(server.pid, signal.SIGKILL)
        server.wait(timeout=10)
    with contextlib.suppress(ProcessLookupError):
        os.killpg(server.pid, signal.SIGKILL)


def wait_ready(url: str, process: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise SystemExit(f"jobgraph serve stopped (exit {process.returncode})")
        try:
            with urllib.request.urlopen(f"{url}/readyz", timeout=2) as response:
                if response.status == 200:
                    return
        except OSError:
            pass
        time.sleep(0.3)
    raise SystemExit("jobgraph serve did not become ready within a minute")


async def add_automation(url: str, settings: Any, hooks_url: str) -> None:
    alice = Client(f"{url}/graphql", mint_token(settings, "alice"))
    for name, cron, job_type, paused in (
            ("PDF every 20 seconds", "*/20 * * * * *", "pdf", False),
            ("Hourly digest", "0 * * * *", "session", False),
            ("Nightly cleanup", "30 2 * * *", "transformer", True)):
        await alice.call(CREATE_SCHEDULE, {"input": {
            "name": name, "cron": cron, "timezone": "Europe/Berlin", "paused": paused,
            "jobTemplate": {"jobType": job_type, "parameters": {"source": "schedule"},
                            "accessControl": {"visibility": "PUBLIC"}}}})
    await alice.call(CREATE_WEBHOOK, {"input": {
        "url": hooks_url, "description": "billing sync",
        "events": ["JOB_STATUS_CHANGED", "BATCH_STATUS_CHANGED"]}})
    await alice.call(CREATE_BATCH, {"input": {
        "batchName": "monthly-reports", "accessControl": {"visibility": "PUBLIC"},
        "jobs": [{"jobType": ("pdf", "session", "transformer")[n % 3],
                  "parameters": {"month": n % 12 + 1, "customer": f"c-{n:03d}"}}
                 for n in range(24)]}})
    for edge in (await alice.call(DOC_JOBS))["documentationJobs"]["edges"]:
        job_id = edge["node"]["jobId"]
        await alice.call(DOC_STATS, {"id": job_id})
        await alice.call(DOC_FILES, {"id": job_id, "files": [
            f"docs/{module}.md" for module in ("index", "graph/server", "graph/schema",
                                               "graph/engine", "graph/realtime",
                                               "repository/jobs", "repository/access")]})


async def running_job(url: str, settings: Any) -> str:
    """An OCR job of alice's, priority 5, claimed by an OCR worker that has logged three
    lines and reported 60%: PROCESSING, so the page shows the cancel button."""
    alice = Client(f"{url}/graphql", mint_token(settings, "alice"))
    worker = Client(f"{url}/graphql", mint_token(settings, "worker-ocr", roles=["worker"]))
    await alice.call(CREATE_JOB, {"input": {
        "jobType": "ocr", "priority": 5, "timeoutSeconds": 600,
        "parameters": {"file": "/data/scans/invoice-0042.pdf", "language": "deu"},
        "accessControl": {"visibility": "PUBLIC"}}})
    job_id = (await worker.call(CLAIM))["claimJob"]["jobId"]
    for message in ("opened invoice-0042.pdf: 3 pages", "page 1 recognised",
                    "page 2 recognised"):
        await worker.call(LOG, {"id": job_id, "m": message})
    await worker.call(PROGRESS, {"id": job_id})
    return job_id


async def shoot(url: str, settings: Any) -> list[Path]:
    alice = Client(f"{url}/graphql", mint_token(settings, "alice"))
    executable = shutil.which("chromium")
    if executable is None:
        raise SystemExit("chromium is not installed (Debian: apt-get install chromium)")
    written: list[Path] = []
    # a job being worked on, with a log: one the demo workers do not take (theirs finish
    # within seconds, often before the picture), run here by hand
    job_id = await running_job(url, settings)
    async with async_playwright() as driver:
        browser = await driver.chromium.launch(executable_path=executable, args=CHROMIUM_ARGS)
        for scheme in ("light", "dark"):
            context = await browser.new_context(viewport={"width": 1280, "height": 860},
                                                color_scheme=scheme)
            page = await context.new_page()
            page.set_default_timeout(30_000)
            await page.goto(f"{url}/ui/sign-in")
            await page.get_by_role("textbox", name="Token").fill(
                mint_token(settings, "alice", roles=["admin"]))
            await page.get_by_role("button", name="Sign in", exact=True).click()
            await page.get_by_label("Signed in as alice").wait_for()

            async def capture(path: str, name: str, ready: str, page: Any = page) -> None:
                await page.goto(f"{url}/ui/{path}")
                await page.locator(ready).first.wait_for()
                await page.wait_for_load_state("networkidle")
                await page.wait_for_timeout(800)
                target = OUT / f"{name}.png"
                await page.screenshot(path=str(target), full_page=True)
                written.append(target)

            if scheme == "dark":
                await capture("", "overview-dark", "figure.chart")
                await context.close()
                continue
            await capture("", "overview", "figure.chart")
            await capture("jobs", "jobs", "table.jobs")
            await capture("queues", "queues", "table.queues")
            await capture("workers", "workers", "table.workers")
            await capture(f"jobs/{job_id}", "job", "ol.log")
            batches = (await alice.call(BATCHES))["batches"]["edges"]
            batch = next(edge for edge in batches
                         if edge["node"]["batchName"] == "nightly-import")
            await capture(f"batches/{batch['node']['batchId']}", "batch", "table.jobs")
            doc = (await alice.call(DOC_JOBS))["documentationJobs"]["edges"][0]
            await capture(f"documentation-jobs/{doc['node']['jobId']}", "documentation-job",
                          "ul.files")
            await page.goto(f"{url}/ui/schedules")
            await page.get_by_role("link", name="PDF every 20 seconds").click()
            await page.locator("table.jobs").wait_for()
            await capture(page.url.split("/ui/", 1)[1], "schedule", "table.jobs")
            await page.goto(f"{url}/ui/webhooks")
            await page.get_by_role("link", name="127.0.0.1", exact=False).first.click()
            await page.locator("table.deliveries").wait_for()
            await capture(page.url.split("/ui/", 1)[1], "webhook", "table.deliveries")
            await context.close()
        await browser.close()
    return written


async def main() -> None:
    OUT.mkdir(parents=True, exist_ok=True)
    hooks = ThreadingHTTPServer(("127.0.0.1", free_port()), Hooks)
    threading.Thread(target=hooks.serve_forever, daemon=True).start()
    secret = generate_secret()
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    with tempfile.TemporaryDirectory(prefix="jobgraph-screenshots-") as data:
        env = {**os.environ, "JOBGRAPH_JWT_SECRET": secret,
               "JOBGRAPH_DATA_DIR": str(Path(data) / "secantus"),
               "JOBGRAPH_WEBHOOK_ALLOW_PRIVATE": "true", "JOBGRAPH_WEBHOOK_RETRY_SECONDS": "3",
               "JOBGRAPH_WEBHOOK_MAX_ATTEMPTS": "2", "JOBGRAPH_LOG_LEVEL": "WARNING"}
        env.pop("JOBGRAPH_MONGODB_URI", None)
        server = start_server(port, env, Path(data) / "serve.log")
        try:
            wait_ready(url, server)
            settings = load_settings(jwt_secret=secret)
            await seed_demo(f"{url}/graphql", settings, out=lambda _: None)
            await add_automation(url, settings, f"http://127.0.0.1:{hooks.server_port}/hooks")
            workers = [asyncio.create_task(demo_worker(
                f"{url}/graphql", settings, worker_id=f"worker-{job_type}",
                job_types=[job_type], step_delay=1.2, fail_rate=0.25,
                rng=random.Random(index), out=lambda _: None))
                for index, job_type in enumerate(("pdf", "session"))]
            await asyncio.sleep(WORKER_SECONDS)
            written = await shoot(url, settings)
            for worker in workers:
                worker.cancel()
            print("\n".join(f"wrote {path.relative_to(ROOT)}" for path in written))
        finally:
            stop_server(server)
            hooks.shutdown()


if __name__ == "__main__":
    asyncio.run(main())
