"""``jobgraph seed-demo`` and ``jobgraph demo-worker``: clients of a running server.

They speak GraphQL over HTTP like any frontend or worker would, with tokens
minted from the server's secret (``JOBGRAPH_JWT_SECRET``, or the development
secret ``jobgraph serve`` keeps in the data directory). Standard library HTTP only:
the CLI imports this module, and the image installs runtime dependencies only.
"""

from __future__ import annotations

import asyncio
import http.client
import json
import random
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from graph.auth.tokens import mint_token
from graph.config.settings import Settings

DEMO_USERS = ("alice", "bob", "carol")
DEMO_ADMIN = "demo-admin"
JOB_TYPES = ("pdf", "session", "transformer")
PAUSED_TYPE = "archive"
"""The demo's paused queue: its jobs wait until an admin resumes it."""

CREATE_JOB = """mutation($input: CreateJobInput!) { createJob(input: $input) { jobId } }"""
CREATE_BATCH = """mutation($input: CreateBatchInput!) {
  createBatch(input: $input) { batchId counts { total } } }"""
CREATE_DOC = """mutation($input: CreateDocumentationJobInput!) {
  createDocumentationJob(input: $input) { jobId } }"""
START_DOC = """mutation($id: ID!) { startDocumentationJob(jobId: $id) { status } }"""
PAUSE = """mutation($t: String!) { pauseQueue(jobType: $t) { paused } }"""
CLAIM = """mutation($types: [String!]) { claimJob(jobTypes: $types) { jobId jobType } }"""
PROGRESS = """mutation($id: ID!, $step: String!, $p: Int!) {
  updateJobProgress(jobId: $id, progress: {step: $step, percent: $p}) {
    status cancelRequested { by reason } } }"""
LOG = """mutation($id: ID!, $level: LogLevel!, $m: String!) {
  appendJobLogs(jobId: $id, entries: [{level: $level, message: $m}]) {
    logSeq cancelRequested { by reason } } }"""
COMPLETE = """mutation($id: ID!, $results: JSON) {
  completeJob(jobId: $id, results: $results) { status } }"""
FAIL = """mutation($id: ID!, $code: String!, $m: String!, $retryable: Boolean!) {
  failJob(jobId: $id, error: {code: $code, message: $m}, retryable: $retryable) { status } }"""


class DemoError(Exception):
    def __init__(self, message: str, code: str | None = None) -> None:
        super().__init__(message)
        self.code = code


TIMEOUT_SECONDS = 30


@dataclass
class Client:
    url: str
    token: str

    async def call(self, query: str, variables: dict[str, Any] | None = None) -> dict[str, Any]:
        # a blocking urllib request in a thread: the demo's pace needs no connection pool
        body = await asyncio.to_thread(self._post, {"query": query,
                                                    "variables": variables or {}})
        if body.get("errors"):
            error = body["errors"][0]
            code = error.get("extensions", {}).get("code")
            raise DemoError(f"{code}: {error['message']}", code)
        data: dict[str, Any] = body["data"]
        return data

    def _post(self, payload: dict[str, Any]) -> dict[str, Any]:
        request = urllib.request.Request(
            self.url, data=json.dumps(payload).encode(), method="POST",
            headers={"Content-Type": "application/json", "Accept": "application/json",
                     "Authorization": f"Bearer {self.token}"})
        try:
            with urllib.request.urlopen(request, timeout=TIMEOUT_SECONDS) as response:
                raw = response.read()
        except urllib.error.HTTPError as exc:  # a 4xx/5xx still carries GraphQL errors
            with exc:
                raw = exc.read()
        except (OSError, http.client.HTTPException) as exc:  # URLError is an OSError
            reason = getattr(exc, "reason", exc)
            raise DemoError(f"cannot reach {self.url}: {reason}; is `jobgraph serve` "
                            "running?") from None
        try:
            answer: dict[str, Any] = json.loads(raw)
            return answer
        except ValueError:
            raise DemoError(f"{self.url} answered something other than JSON: "
                            f"{raw[:200]!r}") from None


def clients(url: str, settings: Settings,
            users: tuple[str, ...] = DEMO_USERS) -> dict[str, Client]:
    return {user: Client(url, mint_token(settings, user, ttl=3600)) for user in users}


async def seed_demo(url: str, settings: Settings, out: Callable[[str], None] = print
                    ) -> dict[str, int]:
    """Sample jobs, batches and documentation jobs owned by several users with
    different access rules, so each user's view differs; jobs of several priorities, one
    delayed by ten minutes, and a paused queue with jobs waiting in it."""
    users = clients(url, settings)
    alice, bob, carol = users["alice"], users["bob"], users["carol"]
    admin = Client(url, mint_token(settings, DEMO_ADMIN, ["admin"], ttl=3600))
    created = {"jobs": 0, "batches": 0, "documentation_jobs": 0, "paused_queues": 0}
    rules = [
        (alice, {"visibility": "PUBLIC"}),
        (alice, {"readAccess": ["bob"]}),
        (bob, {"writeAccess": ["carol"]}),
        (carol, {}),
    ]
    for n, (owner, access) in enumerate(rules * 2):
        await owner.call(CREATE_JOB, {"input": {
            "jobType": JOB_TYPES[n % len(JOB_TYPES)], "accessControl": access,
            "priority": (0, 5, 0, 10)[n % 4],
            "parameters": {"filename": f"/data/report-{n}.pdf", "pages": 10 + n}}})
        created["jobs"] += 1
    later = datetime.now(UTC) + timedelta(minutes=10)
    await alice.call(CREATE_JOB, {"input": {
        "jobType": JOB_TYPES[0], "accessControl": {"visibility": "PUBLIC"},
        "runAt": later.isoformat(), "parameters": {"filename": "/data/nightly.pdf"}}})
    created["jobs"] += 1
    await admin.call(PAUSE, {"t": PAUSED_TYPE})
    created["paused_queues"] += 1
    for owner, access in ((alice, {"visibility": "PUBLIC"}), (bob, {})):
        await owner.call(CREATE_JOB, {"input": {
            "jobType": PAUSED_TYPE, "accessControl": access,
            "parameters": {"folder": "/data/2019"}}})
        created["jobs"] += 1
    for owner, name, access in ((alice, "nightly-import", {"visibility": "PUBLIC"}),
                                (bob, "q3-transcripts", {"readAccess": ["alice"]})):
        batch = await owner.call(CREATE_BATCH, {"input": {
            "batchName": name, "accessControl": access,
            "jobs": [{"jobType": job_type, "parameters": {"part": index}}
                     for index, job_type in enumerate(JOB_TYPES)]}})
        created["batches"] += 1
        created["jobs"] += batch["createBatch"]["counts"]["total"]
    for owner, repo, access in ((alice, "jobgraph", {"visibility": "PUBLIC"}),
                                (carol, "secret-service", {})):
        doc = await owner.call(CREATE_DOC, {"input": {
            "repositoryPath": f"/src/{repo}", "repositoryName": repo,
            "outputDirectory": f"/docs/{repo}", "accessControl": access,
            "generationOptions": {"githubPages": True},
            "llmConfig": {"mainModel": "gpt-4", "clusterModel": "gpt-3.5-turbo",
                          "baseUrl": "https://api.openai.com/v1"}}})
        created["documentation_jobs"] += 1
        if owner is alice:
            await owner.call(START_DOC, {"id": doc["createDocumentationJob"]["jobId"]})
    out(f"seeded {created['jobs']} jobs (one delayed by ten minutes, two in the paused "
        f"{PAUSED_TYPE!r} queue), {created['batches']} batches and "
        f"{created['documentation_jobs']} documentation jobs for users "
        f"{', '.join(DEMO_USERS)} at {url}")
    return created


async def demo_worker(url: str, settings: Settings, *, worker_id: str = "demo-worker",
                      job_types: list[str] | None = None, jobs: int | None = None,
                      step_delay: float = 0.7, fail_rate: float = 0.2, idle_delay: float = 1.0,
                      create_when_idle: bool = True, out: Callable[[str], None] = print,
                      rng: random.Random | None = None) -> int:
    """Claim jobs and drive each through progress and logs to completion or failure (or
    stop it when an answer says it was asked to cancel), slowly enough to watch in a
    GraphiQL subscription. Returns the jobs finished."""
    rng = rng or random.Random()
    finished = 0
    worker = Client(url, mint_token(settings, worker_id, ["worker"], ttl=24 * 3600))
    producer = Client(url, mint_token(settings, "alice", ttl=24 * 3600))
    while jobs is None or finished < jobs:
        claimed = (await worker.call(CLAIM, {"types": job_types}))["claimJob"]
        if claimed is None:
            if create_when_idle:
                await producer.call(CREATE_JOB, {"input": {
                    "jobType": rng.choice(job_types or list(JOB_TYPES)),
                    "accessControl": {"visibility": "PUBLIC"},
                    "parameters": {"generatedBy": worker_id}}})
                out("queue empty: created a PUBLIC job as alice")
            else:
                await asyncio.sleep(idle_delay)
            continue
        job_id = claimed["jobId"]
        out(f"claimed {claimed['jobType']} job {job_id}")
        await _work(worker, job_id, step_delay, fail_rate, rng, out)
        finished += 1
    return finished


class _CancelRequested(Exception):
    """The job was asked to cancel: stop, and acknowledge by failing it."""


async def _work(worker: Client, job_id: str, step_delay: float, fail_rate: float,
                rng: random.Random, out: Callable[[str], None]) -> None:
    """One job through progress and logs to completion or failure; a cancel request seen
    in any answer (or a completion refused for one) stops it, acknowledged by failJob."""
    try:
        for percent, step in ((10, "downloading"), (40, "extracting"), (75, "writing")):
            await asyncio.sleep(step_delay)
            _check(await worker.call(PROGRESS, {"id": job_id, "step": step, "p": percent}))
            _check(await worker.call(LOG, {"id": job_id, "level": "INFO",
                                           "m": f"{step}: {percent}%"}))
            out(f"  {job_id}: {step} {percent}%")
        await asyncio.sleep(step_delay)
        if rng.random() < fail_rate:
            await worker.call(FAIL, {"id": job_id, "code": "DEMO_FAILURE", "retryable": False,
                                     "m": "the demo worker failed this one on purpose"})
            out(f"  {job_id}: FAILED")
            return
        try:
            await worker.call(COMPLETE, {"id": job_id, "results": {"pages": rng.randint(
                1, 99)}})
        except DemoError as exc:
            if exc.code != "CANCEL_REQUESTED":
                raise
            raise _CancelRequested from None
        out(f"  {job_id}: COMPLETED")
    except _CancelRequested:
        await worker.call(FAIL, {"id": job_id, "code": "STOPPED", "retryable": False,
                                 "m": "the demo worker stopped at the cancel request"})
        out(f"  {job_id}: CANCELLED (stopped at the request)")


def _check(answer: dict[str, Any]) -> None:
    job = next(iter(answer.values()))
    if job.get("cancelRequested"):
        raise _CancelRequested
