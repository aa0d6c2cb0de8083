"""Cancelling jobs through the public API: a PENDING job ends at once, a PROCESSING one is
asked to stop, its worker hears so in every answer (and on ``jobChanged``), and however
the claim ends it ends FAILED with CANCELLED, never requeued; a cancel racing a
completion ends in exactly one of them."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import datetime, timedelta
from typing import Any

import httpx
import pytest

from graph.auth.tokens import mint_token
from repository.database import Store
from repository.models import utcnow
from tests.helpers.graphql import ALICE, BOB, WORKER, Api, Caller, make_settings, open_api
from tests.helpers.live import live_server, ws_client
from tests.helpers.waiting import eventually

CREATE = """mutation($input: CreateJobInput!) { createJob(input: $input) { jobId } }"""
CLAIM = """mutation { claimJob { jobId } }"""
CANCEL = """mutation($id: ID!, $reason: String) { cancelJob(jobId: $id, reason: $reason) {
  status cancelRequested { by at reason } error { code message details } } }"""
REQUEST = "cancelRequested { by reason }"
HEARTBEAT = f"""mutation($id: ID!) {{ heartbeatJob(jobId: $id) {{ {REQUEST} }} }}"""
PROGRESS = f"""mutation($id: ID!) {{
  updateJobProgress(jobId: $id, progress: {{step: "s", percent: 5}}) {{ {REQUEST} }} }}"""
LOG = f"""mutation($id: ID!) {{
  appendJobLogs(jobId: $id, entries: [{{level: INFO, message: "m"}}]) {{ {REQUEST} }} }}"""
COMPLETE = """mutation($id: ID!) { completeJob(jobId: $id, results: {ok: true}) { status } }"""
FAIL = """mutation($id: ID!) { failJob(jobId: $id, error: {code: "STOPPED", message: "ok"}) {
  status retryable error { code message details } previousErrors { code } } }"""
RETRY = """mutation($id: ID!) { retryJob(jobId: $id) { status cancelRequested { by } } }"""
JOB = """query($id: ID!) { job(jobId: $id) { status attempts claimedBy
  cancelRequested { by reason } error { code message details } previousErrors { code }
  logs { level message } } }"""
SHARED = {"accessControl": {"writeAccess": ["bob"], "readAccess": ["carol"]}}


async def create(api: Api, **fields: Any) -> str:
    data = await api.data(CREATE, {"input": {"jobType": "pdf", **SHARED, **fields}})
    return data["createJob"]["jobId"]


async def claimed(api: Api, **fields: Any) -> str:
    job_id = await create(api, **fields)
    assert (await api.data(CLAIM, as_=WORKER))["claimJob"]["jobId"] == job_id
    return job_id


async def job(api: Api, job_id: str) -> dict[str, Any]:
    return (await api.data(JOB, {"id": job_id}))["job"]


async def test_cancelling_a_pending_job_fails_it_at_once_saying_who_when_and_why(
        api: Api) -> None:
    # given a PENDING job bob may write
    job_id = await create(api)
    before = utcnow()

    # when bob cancels it
    cancelled = (await api.data(CANCEL, {"id": job_id, "reason": "duplicate"},
                                as_=BOB))["cancelJob"]

    # then it is FAILED with CANCELLED, with who, when and why, and no worker gets it
    assert cancelled["status"] == "FAILED"
    error = cancelled["error"]
    assert (error["code"], error["message"]) == ("CANCELLED", "cancelled by bob: duplicate")
    assert (error["details"]["by"], error["details"]["reason"]) == ("bob", "duplicate")
    at = datetime.fromisoformat(error["details"]["at"])
    assert before - timedelta(seconds=1) <= at <= utcnow()
    assert cancelled["cancelRequested"]["by"] == "bob"
    assert (await api.data(CLAIM, as_=WORKER))["claimJob"] is None
    # and a writer may still change their mind
    assert (await api.data(RETRY, {"id": job_id}))["retryJob"] == {
        "status": "PENDING", "cancelRequested": None}


async def test_a_running_job_hears_of_its_cancel_in_every_answer_and_ends_when_its_worker_fails_it(
        api: Api) -> None:
    # given a job its worker is running
    job_id = await claimed(api)

    # when bob cancels it
    asked = (await api.data(CANCEL, {"id": job_id, "reason": "not needed"},
                            as_=BOB))["cancelJob"]

    # then it is still PROCESSING, asked to stop, and every write of its worker says so
    assert (asked["status"], asked["cancelRequested"]["reason"]) == ("PROCESSING",
                                                                    "not needed")
    for mutation in (HEARTBEAT, PROGRESS, LOG):
        answer = next(iter((await api.data(mutation, {"id": job_id}, as_=WORKER)).values()))
        assert answer["cancelRequested"] == {"by": "bob", "reason": "not needed"}
    # and asking again changes nothing
    again = (await api.data(CANCEL, {"id": job_id, "reason": "other"}, as_=ALICE))["cancelJob"]
    assert again["cancelRequested"] == asked["cancelRequested"]
    # and it can no longer complete
    refused = await api.error(COMPLETE, {"id": job_id}, as_=WORKER)
    assert refused["extensions"]["code"] == "CANCEL_REQUESTED"

    # when the worker acknowledges by failing it, with its own code
    failed = (await api.data(FAIL, {"id": job_id}, as_=WORKER))["failJob"]

    # then it is FAILED with CANCELLED (the worker's error kept), not requeued
    assert failed["status"] == "FAILED" and failed["previousErrors"] == []
    assert failed["error"]["code"] == "CANCELLED"
    assert failed["error"]["details"]["workerError"]["code"] == "STOPPED"
    assert (await api.data(CLAIM, as_=WORKER))["claimJob"] is None


async def test_only_the_jobs_writers_may_cancel_and_a_finished_job_stays_as_it_is(
        api: Api) -> None:
    job_id = await claimed(api)
    for caller, code in ((Caller("carol"), "FORBIDDEN"), (WORKER, "FORBIDDEN"),
                         (Caller("mallory"), "NOT_FOUND")):
        error = await api.error(CANCEL, {"id": job_id}, as_=caller)
        assert error["extensions"]["code"] == code, caller
    assert (await job(api, job_id))["cancelRequested"] is None
    await api.data(COMPLETE, {"id": job_id}, as_=WORKER)
    error = await api.error(CANCEL, {"id": job_id})
    assert error["extensions"]["code"] == "INVALID_TRANSITION"
    assert (await job(api, job_id))["status"] == "COMPLETED"


@pytest.fixture
async def swept(mongo_uri: str, database_name: str, store: Store) -> AsyncIterator[Api]:
    """A reaper that sweeps only when the test says so; leases of 2 s."""
    settings = make_settings(database=database_name, lease_seconds=2,
                             reaper_interval_seconds=3600)
    async with open_api(settings, mongo_uri) as api:
        yield api


async def sweep(api: Api) -> None:
    await api.app.state.reaper.sweep()  # type: ignore[attr-defined]


async def test_a_cancelled_claim_whose_lease_runs_out_ends_cancelled_not_requeued(
        swept: Api, store: Store) -> None:
    # given a cancelled job whose worker went silent, with attempts left
    job_id = await claimed(swept, maxAttempts=5)
    await swept.data(CANCEL, {"id": job_id, "reason": "stop"})
    await store.jobs.collection.update_one(
        {"_id": job_id}, {"$set": {"lease_expires_at": utcnow() - timedelta(seconds=1)}})

    # when the reaper comes round
    await sweep(swept)

    # then the job is FAILED with CANCELLED, its lapse recorded, never back in the queue
    ended = await job(swept, job_id)
    assert (ended["status"], ended["error"]["code"]) == ("FAILED", "CANCELLED")
    assert ended["error"]["details"]["cause"] == "LEASE_EXPIRED"
    assert ended["previousErrors"] == [] and ended["logs"][-1]["level"] == "ERROR"
    assert (await swept.data(CLAIM, as_=WORKER))["claimJob"] is None


async def test_a_worker_that_keeps_renewing_is_stopped_one_lease_after_the_cancel(
        swept: Api) -> None:
    # given a cancelled job whose worker ignores the request but keeps its lease alive
    job_id = await claimed(swept)
    asked_at = utcnow()
    await swept.data(CANCEL, {"id": job_id})

    async def renewed_until_ended() -> dict[str, Any] | None:
        await swept.execute(HEARTBEAT, {"id": job_id}, as_=WORKER)
        await sweep(swept)
        state = await job(swept, job_id)
        return state if state["status"] != "PROCESSING" else None

    # when the lease it had at the cancel has run (renewals do not move that deadline)
    state = await eventually(renewed_until_ended, interval=0.2)

    # then the reaper ended it, CANCELLED, one lease (2 s) after the request at the earliest
    assert (state["status"], state["error"]["code"]) == ("FAILED", "CANCELLED")
    assert state["error"]["details"]["cause"] == "DEADLINE"
    assert utcnow() - asked_at >= timedelta(seconds=2)
    refused = await swept.error(HEARTBEAT, {"id": job_id}, as_=WORKER)
    assert refused["extensions"]["code"] == "CONFLICT"


async def test_a_cancel_racing_a_completion_ends_in_exactly_one_of_them(api: Api) -> None:
    # given 12 running jobs
    ids = [await claimed(api) for _ in range(12)]

    # when each is cancelled by bob while its worker completes it
    outcomes = await asyncio.gather(*(
        request for job_id in ids for request in (
            api.execute(CANCEL, {"id": job_id}, as_=BOB),
            api.execute(COMPLETE, {"id": job_id}, as_=WORKER))))
    # and the worker acknowledges the cancels it was told of
    for index, job_id in enumerate(ids):
        completed = outcomes[2 * index + 1]
        if completed.get("errors"):
            assert completed["errors"][0]["extensions"]["code"] == "CANCEL_REQUESTED"
            await api.data(FAIL, {"id": job_id}, as_=WORKER)

    # then each job ended either COMPLETED (and the cancel was refused) or CANCELLED (and
    # the completion was refused), never both, never neither
    for index, job_id in enumerate(ids):
        cancel, complete = outcomes[2 * index], outcomes[2 * index + 1]
        final = await job(api, job_id)
        if complete.get("errors"):
            assert not cancel.get("errors"), cancel
            assert (final["status"], final["error"]["code"]) == ("FAILED", "CANCELLED")
        else:
            assert cancel["errors"][0]["extensions"]["code"] == "INVALID_TRANSITION", cancel
            assert (final["status"], final["cancelRequested"]) == ("COMPLETED", None)


async def test_the_worker_sees_the_cancel_on_job_changed_and_lists_see_it_end(
        settings: Any, mongo_uri: str, store: Store) -> None:
    async with live_server(settings, mongo_uri) as server, httpx.AsyncClient(
            base_url=server.url) as http:
        api = Api(http, settings)
        job_id = await claimed(api)
        token = mint_token(settings, WORKER.user_id, WORKER.roles)
        async with ws_client(server, payload={"Authorization": f"Bearer {token}"}) as ws:
            op = await ws.subscribe(
                "subscription($id: ID!) { jobChanged(jobId: $id) { status "
                "cancelRequested { by reason } } }", {"id": job_id})
            listed = await ws.subscribe(
                "subscription { jobsChanged(initial: 0) { kind job { status "
                "cancelRequested { by } error { code } } } }")
            first = (await ws.next(op))["jobChanged"]
            await api.data(CANCEL, {"id": job_id, "reason": "enough"}, as_=BOB)
            second = (await ws.next(op))["jobChanged"]
            await api.data(FAIL, {"id": job_id}, as_=WORKER)
            third = (await ws.next(op))["jobChanged"]
            events = [(await ws.next(listed))["jobsChanged"] for _ in range(2)]
    assert first == {"status": "PROCESSING", "cancelRequested": None}
    assert second == {"status": "PROCESSING",
                      "cancelRequested": {"by": "bob", "reason": "enough"}}
    assert third["status"] == "FAILED"
    assert [event["job"]["error"] for event in events] == [None, {"code": "CANCELLED"}]
    assert all(event["job"]["cancelRequested"] == {"by": "bob"} for event in events)
