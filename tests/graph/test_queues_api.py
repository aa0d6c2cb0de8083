"""Queues (one per job type) and workers through the public API: counts, pauses and
concurrency limits (held across API processes, whichever way a job leaves PROCESSING),
and the workers seen on them."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import time
from collections.abc import AsyncIterator
from datetime import datetime, timedelta
from typing import Any

import httpx
import pytest

from repository.database import Store, make_client
from repository.models import utcnow
from tests.helpers.api_process import api_process
from tests.helpers.graphql import (
    ADMIN,
    ALICE,
    WORKER,
    Api,
    Caller,
    make_settings,
    open_api,
)

OTHER_WORKER = Caller("worker-2", ("worker",))
CREATE = """mutation($input: CreateJobInput!) { createJob(input: $input) { jobId } }"""
CLAIM = """mutation($types: [String!]) { claimJob(jobTypes: $types) { jobId jobType } }"""
COMPLETE = """mutation($id: ID!) { completeJob(jobId: $id) { status } }"""
FAIL = """mutation($id: ID!, $retryable: Boolean!) {
  failJob(jobId: $id, error: {code: "E", message: "m"}, retryable: $retryable) { status } }"""
CANCEL = """mutation($id: ID!) { cancelJob(jobId: $id) { status } }"""
DELETE = """mutation($id: ID!) { deleteJob(jobId: $id) { jobId } }"""
PAUSE = """mutation($t: String!) { pauseQueue(jobType: $t) { jobType paused updatedBy } }"""
RESUME = """mutation($t: String!) { resumeQueue(jobType: $t) { jobType paused } }"""
LIMIT = """mutation($t: String!, $max: Int) { setQueueConcurrency(jobType: $t, max: $max) {
  jobType maxConcurrency } }"""
QUEUES = """query($types: [String!]) { queues(jobTypes: $types) {
  id jobType paused maxConcurrency oldestClaimableSince oldestClaimableAgeSeconds
  counts { pending delayed processing completed failed cancelled total }
  workers { workerId jobTypes } } }"""
WORKERS = """query($type: String) { workers(jobType: $type) {
  id workerId jobTypes lastSeen jobCount jobs { jobId } } }"""


async def create(api: Api, job_type: str = "pdf", **fields: Any) -> str:
    data = await api.data(CREATE, {"input": {"jobType": job_type, **fields}})
    return data["createJob"]["jobId"]


async def claim(api: Api, types: list[str] | None = None, worker: Caller = WORKER
                ) -> dict[str, Any] | None:
    return (await api.data(CLAIM, {"types": types}, as_=worker))["claimJob"]


async def test_queues_show_counts_the_longest_wait_and_the_workers_seen(api: Api) -> None:
    # given pdf jobs in every state, an ocr job, and a worker on pdf
    started = utcnow()
    pending = await create(api)
    await create(api, runAt=(utcnow() + timedelta(hours=1)).isoformat())
    for outcome in ("complete", "fail", "cancel", "run"):
        job_id = await create(api, maxAttempts=1, priority=1)
        assert (await claim(api, ["pdf"]))["jobId"] == job_id  # type: ignore[index]
        if outcome == "complete":
            await api.data(COMPLETE, {"id": job_id}, as_=WORKER)
        elif outcome == "fail":
            await api.data(FAIL, {"id": job_id, "retryable": True}, as_=WORKER)
        elif outcome == "cancel":
            await api.data(CANCEL, {"id": job_id})
            await api.data(FAIL, {"id": job_id, "retryable": True}, as_=WORKER)
    await create(api, "ocr")

    # when an operator looks at the queues
    queues = (await api.data(QUEUES, as_=WORKER))["queues"]

    # then each job type is listed with its counts, its longest wait and its workers
    assert [queue["jobType"] for queue in queues] == ["ocr", "pdf"]
    pdf = queues[1]
    assert pdf["counts"] == {"pending": 1, "delayed": 1, "processing": 1, "completed": 1,
                             "failed": 1, "cancelled": 1, "total": 6}
    since = datetime.fromisoformat(pdf["oldestClaimableSince"])
    assert started - timedelta(seconds=1) <= since <= utcnow()
    assert pdf["oldestClaimableAgeSeconds"] >= 0
    assert pdf["workers"] == [{"workerId": WORKER.user_id, "jobTypes": ["pdf"]}]
    assert base64.b64decode(pdf["id"]).decode() == "Queue:pdf"
    assert queues[0]["counts"]["pending"] == 1 and queues[0]["workers"] == []
    assert (await api.data(QUEUES, {"types": ["pdf"]}, as_=ADMIN))["queues"][0]["counts"] == (
        pdf["counts"])
    # a job type without jobs is a queue too, empty
    empty = (await api.data("""query { queue(jobType: "video") { jobType paused
      oldestClaimableSince counts { total } } }""", as_=ADMIN))["queue"]
    assert empty == {"jobType": "video", "paused": False, "oldestClaimableSince": None,
                     "counts": {"total": 0}}
    del pending


async def test_queues_and_workers_are_for_the_worker_and_admin_roles(api: Api) -> None:
    await create(api)
    for query in (QUEUES, WORKERS):
        error = await api.error(query, as_=ALICE)
        assert error["extensions"]["code"] == "FORBIDDEN"
    for mutation, variables in ((PAUSE, {"t": "pdf"}), (RESUME, {"t": "pdf"}),
                                (LIMIT, {"t": "pdf", "max": 2})):
        error = await api.error(mutation, variables, as_=WORKER)
        assert error["extensions"]["code"] == "FORBIDDEN"
    node = "query($id: ID!) { node(id: $id) { id } }"
    queue_id = base64.b64encode(b"Queue:pdf").decode()
    assert (await api.data(node, {"id": queue_id}, as_=ALICE))["node"] is None
    assert (await api.data(node, {"id": queue_id}, as_=ADMIN))["node"] == {"id": queue_id}


async def test_a_paused_queue_is_skipped_by_claims_until_resumed(api: Api) -> None:
    # given an older pdf job and a newer ocr job
    pdf = await create(api, priority=5)
    ocr = await create(api, "ocr")

    # when an admin pauses pdf
    paused = (await api.data(PAUSE, {"t": "pdf"}, as_=ADMIN))["pauseQueue"]

    # then claims skip it, whatever types they ask for
    assert paused == {"jobType": "pdf", "paused": True, "updatedBy": ADMIN.user_id}
    assert await claim(api, ["pdf"]) is None
    assert (await claim(api))["jobId"] == ocr  # type: ignore[index]
    assert await claim(api) is None
    # until it is resumed
    assert (await api.data(RESUME, {"t": "pdf"}, as_=ADMIN))["resumeQueue"]["paused"] is False
    assert (await claim(api, ["pdf", "ocr"]))["jobId"] == pdf  # type: ignore[index]


async def test_workers_lists_who_holds_what(api: Api) -> None:
    first = await create(api)
    await create(api, "ocr")
    await claim(api, ["pdf"])
    await claim(api, None, OTHER_WORKER)
    workers = (await api.data(WORKERS, as_=ADMIN))["workers"]
    by_id = {worker["workerId"]: worker for worker in workers}
    assert by_id[WORKER.user_id]["jobTypes"] == ["pdf"]
    assert by_id[WORKER.user_id]["jobs"] == [{"jobId": first}]
    assert by_id[OTHER_WORKER.user_id]["jobTypes"] is None  # any type
    assert datetime.fromisoformat(by_id[WORKER.user_id]["lastSeen"]) <= utcnow()
    # a worker sees the other's job counted, not shown (it may not read it)
    seen = (await api.data(WORKERS, {"type": "pdf"}, as_=OTHER_WORKER))["workers"]
    assert {worker["workerId"] for worker in seen} == {WORKER.user_id, OTHER_WORKER.user_id}
    mine = next(worker for worker in seen if worker["workerId"] == WORKER.user_id)
    assert (mine["jobCount"], mine["jobs"]) == (1, [])


# -- concurrency limits ---------------------------------------------------------------------


@pytest.fixture
async def swept(mongo_uri: str, database_name: str, store: Store) -> AsyncIterator[Api]:
    """Leases of 30 s and a reaper that sweeps only when the test says so."""
    settings = make_settings(database=database_name, lease_seconds=30,
                             reaper_interval_seconds=3600, retry_base_seconds=0)
    async with open_api(settings, mongo_uri) as api:
        yield api


async def admitted(api: Api) -> list[str]:
    """Claim limited jobs until the limit refuses; the ids claimed."""
    taken = []
    while (job := await claim(api, ["limited"])) is not None:
        taken.append(job["jobId"])
    return taken


async def test_a_limit_holds_through_every_way_a_job_leaves_processing(
        swept: Api, store: Store) -> None:
    # given a limit of 3 and plenty of waiting jobs (each allowed a single attempt but one)
    api = swept
    await api.data(LIMIT, {"t": "limited", "max": 3}, as_=ADMIN)
    for _ in range(24):
        await create(api, "limited", maxAttempts=1)
    running = await admitted(api)
    assert len(running) == 3

    async def lapse(job_id: str, field: str) -> None:
        await store.jobs.collection.update_one(
            {"_id": job_id}, {"$set": {field: utcnow() - timedelta(seconds=1)}})
        await api.app.state.reaper.sweep()  # type: ignore[attr-defined]

    async def cancel_and_acknowledge(job_id: str) -> None:
        await api.data(CANCEL, {"id": job_id})
        await api.data(FAIL, {"id": job_id, "retryable": False}, as_=WORKER)

    async def requeue_by_failing(job_id: str) -> None:
        await store.jobs.collection.update_one({"_id": job_id}, {"$set": {"max_attempts": 5}})
        await api.data(FAIL, {"id": job_id, "retryable": True}, as_=WORKER)

    async def undo_claim(job_id: str) -> None:
        doc = await store.jobs.collection.find_one({"_id": job_id})
        assert await store.jobs.abandoned.release(doc["claim_token"])

    exits = {
        "complete": lambda job_id: api.data(COMPLETE, {"id": job_id}, as_=WORKER),
        "fail": lambda job_id: api.data(FAIL, {"id": job_id, "retryable": False},
                                        as_=WORKER),
        "fail and requeue": requeue_by_failing,
        "cancel": cancel_and_acknowledge,
        "lease expiry": lambda job_id: lapse(job_id, "lease_expires_at"),
        "timeout": lambda job_id: lapse(job_id, "timeout_at"),
        "delete": lambda job_id: api.data(DELETE, {"id": job_id}),
        "undone claim": undo_claim,
    }
    for name, leave in exits.items():
        # when one running job leaves PROCESSING this way
        await leave(running.pop(0))
        # then exactly one more is admitted, and the limit is full again
        more = await admitted(api)
        processing = await store.jobs.collection.count_documents(
            {"job_type": "limited", "status": "PROCESSING"})
        assert (len(more), processing) == (1, 3), name
        running += more
    # and lifting the limit admits the rest
    await api.data(LIMIT, {"t": "limited", "max": None}, as_=ADMIN)
    assert len(await admitted(api)) > 0


@pytest.mark.slow
async def test_a_limit_of_3_holds_for_50_claimers_on_two_api_processes(
        settings: Any, mongo_uri: str, store: Store, monkeypatch: pytest.MonkeyPatch) -> None:
    """The limit holds across processes: 50 workers claim through two API processes
    (uvicorn subprocesses) at once, each holding its job a moment before completing it,
    while a sampler counts the PROCESSING jobs in the database. Each process talks to the
    database over two connections (``maxPoolSize``), which keeps the embedded server out
    of its stalls under many concurrent writers (see ``tests/repository/support.pooled``)
    while claims still run concurrently within and across the processes; their requests
    queue for those connections, so the processes get a generous database deadline."""
    monkeypatch.setenv("JOBGRAPH_MONGODB_TIMEOUT_MS", "60000")
    jobs, workers, limit = 30, 50, 3
    pooled_uri = f"{mongo_uri}&maxPoolSize=2" if "?" in mongo_uri else (
        f"{mongo_uri}?maxPoolSize=2")
    async with api_process(settings, pooled_uri) as first, api_process(
            settings, pooled_uri) as second, httpx.AsyncClient(
            base_url=first.url, timeout=60) as one, httpx.AsyncClient(
            base_url=second.url, timeout=60) as two:
        apis = [Api(one, settings), Api(two, settings)]
        await apis[0].data(LIMIT, {"t": "capped", "max": limit}, as_=ADMIN)
        for index in range(jobs):
            await create(apis[index % 2], "capped")
        await create(apis[0], "free")
        held: list[tuple[float, float]] = []
        done, overlapped, waited = asyncio.Event(), asyncio.Event(), asyncio.Event()
        holding = 0

        async def work(number: int) -> None:
            nonlocal holding
            api, worker = apis[number % 2], Caller(f"w{number}", ("worker",))
            while not done.is_set():
                job = await claim(api, ["capped"], worker)
                if job is None:
                    await asyncio.sleep(0.05)
                    continue
                claimed_at = time.monotonic()
                holding += 1
                if holding >= 2:
                    overlapped.set()
                if not waited.is_set():  # once: hold on until a second claim gets in too,
                    with contextlib.suppress(TimeoutError):  # however slow the machine
                        async with asyncio.timeout(20):
                            await overlapped.wait()
                    waited.set()
                await asyncio.sleep(0.03)
                holding -= 1
                held.append((claimed_at, time.monotonic()))
                await api.data(COMPLETE, {"id": job["jobId"]}, as_=worker)

        peak = 0

        async def sample() -> None:
            nonlocal peak
            client = make_client(mongo_uri)
            collection = client[settings.database]["jobs"]
            try:
                while not done.is_set():
                    peak = max(peak, await collection.count_documents(
                        {"job_type": "capped", "status": "PROCESSING"}))
                    if await collection.count_documents(
                            {"job_type": "capped", "status": "COMPLETED"}) == jobs:
                        done.set()
            finally:
                await client.close()

        async with asyncio.timeout(120):
            await asyncio.gather(sample(), *(work(number) for number in range(workers)))
        unlimited = await claim(apis[1], ["free"])

    # then every job ran once, never more than 3 at a time: not by the sampler's count,
    # nor by the workers' own history (from a claim's answer to the completion sent, a job
    # is certainly PROCESSING)
    assert len(held) == jobs
    assert 1 <= peak <= limit, peak
    events = sorted([(start, 1) for start, _ in held] + [(end, -1) for _, end in held],
                    key=lambda event: (event[0], event[1]))
    at_once = most = 0
    for _, step in events:
        at_once += step
        most = max(most, at_once)
    assert most <= limit, most
    assert most >= 2  # the claimers did overlap
    assert unlimited is not None


async def test_no_claim_that_starts_after_pause_queue_answered_takes_its_jobs(
        api: Api) -> None:
    # given plenty of pdf jobs, and three workers draining them
    for _ in range(30):
        await create(api)
    paused_at: list[float] = []
    late_claims: list[dict[str, Any] | None] = []
    taken = 0
    racing, answered = asyncio.Event(), asyncio.Event()

    async def drain(worker: Caller) -> None:
        nonlocal taken
        while True:
            if taken >= 20:  # ten jobs stay for the claims after the pause (slow machines)
                await answered.wait()
            started = time.monotonic()
            job = await claim(api, ["pdf"], worker)
            late = bool(paused_at) and started > paused_at[0]
            if late:
                late_claims.append(job)
            if job is None:
                if late:
                    return
                # the pause took hold before its answer came: only claims after it decide
                await answered.wait()
                continue
            taken += 1
            if taken >= 5:
                racing.set()

    async def pause_soon() -> None:
        await racing.wait()  # the workers are mid-way: their claims race the pause
        await api.data(PAUSE, {"t": "pdf"}, as_=ADMIN)
        paused_at.append(time.monotonic())
        answered.set()

    # when an admin pauses the queue while they work
    await asyncio.wait_for(asyncio.gather(pause_soon(), *(drain(Caller(f"w{n}", ("worker",)))
                                                          for n in range(3))), 120)

    # then every claim that started after the pause answered got nothing
    assert late_claims and all(job is None for job in late_claims)
    left = (await api.data(QUEUES, {"types": ["pdf"]}, as_=ADMIN))["queues"][0]["counts"]
    assert left["pending"] > 0
