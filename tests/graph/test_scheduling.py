"""When a job runs, through the public API: priorities, delayed jobs (`runAt`), retry
policies with backoff (a retryable failJob, a lapsed lease) and timeouts."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import datetime, timedelta
from typing import Any

import pytest

from repository.database import Store
from repository.models import utcnow
from tests.helpers.graphql import ALICE, WORKER, Api, Caller, make_settings, open_api
from tests.helpers.waiting import eventually

OTHER_WORKER = Caller("worker-2", ("worker",))
CREATE = """mutation($input: CreateJobInput!) { createJob(input: $input) {
  jobId priority runAt timeoutSeconds maxAttempts
  retryPolicy { maxAttempts backoff baseSeconds capSeconds } } }"""
CLAIM = """mutation($types: [String!]) { claimJob(jobTypes: $types) {
  jobId attempts timeoutAt processingStartedAt } }"""
PRIORITY = """mutation($id: ID!, $p: Int!) { setJobPriority(jobId: $id, priority: $p) {
  priority } }"""
FAIL = """mutation($id: ID!, $code: String!, $retryable: Boolean! = true) {
  failJob(jobId: $id, error: {code: $code, message: "m"}, retryable: $retryable) {
  status runAt attempts claimedBy error { code } previousErrors { code } } }"""
RETRY = """mutation($id: ID!, $runAt: DateTime) { retryJob(jobId: $id, runAt: $runAt) {
  status runAt } }"""
HEARTBEAT = """mutation($id: ID!) { heartbeatJob(jobId: $id) { leaseExpiresAt } }"""
JOB = """query($id: ID!) { job(jobId: $id) { status attempts runAt claimedBy
  error { code message details } previousErrors { code } logs { level message } } }"""


def iso(value: str | None) -> datetime | None:
    return None if value is None else datetime.fromisoformat(value)


async def create(api: Api, **fields: Any) -> dict[str, Any]:
    data = await api.data(CREATE, {"input": {"jobType": "pdf", **fields}})
    return data["createJob"]


async def claim(api: Api, worker: Caller = WORKER, types: list[str] | None = None
                ) -> dict[str, Any] | None:
    return (await api.data(CLAIM, {"types": types}, as_=worker))["claimJob"]


async def job(api: Api, job_id: str) -> dict[str, Any]:
    return (await api.data(JOB, {"id": job_id}))["job"]


# -- priority -------------------------------------------------------------------------


async def test_claims_take_the_highest_priority_first_and_the_oldest_within_one(
        api: Api) -> None:
    # given jobs created in this order, with these priorities
    made = [(await create(api, **({} if p is None else {"priority": p})))["jobId"]
            for p in (None, 5, -1, 5, 0, 10)]
    default, five, low, five_later, zero, ten = made

    # when a worker claims them one after another
    order = [(await claim(api))["jobId"] for _ in made]  # type: ignore[index]

    # then
    assert order == [ten, five, five_later, default, zero, low]


async def test_a_pending_jobs_priority_can_change_until_it_is_claimed(api: Api) -> None:
    first, second = (await create(api))["jobId"], (await create(api))["jobId"]
    assert (await api.data(PRIORITY, {"id": second, "p": 3}))["setJobPriority"] == {
        "priority": 3}
    assert (await claim(api))["jobId"] == second  # type: ignore[index]
    refused = await api.error(PRIORITY, {"id": second, "p": 9})
    assert refused["extensions"]["code"] == "INVALID_TRANSITION"
    out_of_range = await api.error(PRIORITY, {"id": first, "p": 1001})
    assert (out_of_range["extensions"]["code"], out_of_range["extensions"]["field"]) == (
        "VALIDATION_ERROR", "priority")
    forbidden = await api.error(PRIORITY, {"id": first, "p": 1}, as_=WORKER)
    assert forbidden["extensions"]["code"] == "NOT_FOUND"


async def test_reprioritizing_races_claims_without_losing_or_doubling_a_job(
        api: Api) -> None:
    # given 20 PENDING jobs
    ids = [(await create(api))["jobId"] for _ in range(20)]

    # when writers raise every priority while two workers drain the queue
    async def drain(worker: Caller) -> list[str]:
        taken = []
        while (claimed := await claim(api, worker)) is not None:
            taken.append(claimed["jobId"])
        return taken

    raised, *drained = await asyncio.gather(
        asyncio.gather(*(api.execute(PRIORITY, {"id": job_id, "p": 7}) for job_id in ids)),
        drain(WORKER), drain(OTHER_WORKER))

    # then each job was claimed once, and each change either landed before its claim or
    # was refused because the claim came first
    taken = [job_id for worker in drained for job_id in worker]
    assert sorted(taken) == sorted(ids)
    for answer in raised:
        if answer.get("errors"):
            assert answer["errors"][0]["extensions"]["code"] == "INVALID_TRANSITION"
        else:
            assert answer["data"]["setJobPriority"] == {"priority": 7}


# -- delayed jobs ------------------------------------------------------------------------


async def test_a_delayed_job_is_not_claimed_before_its_run_at(api: Api) -> None:
    # given a job due in a second, and one due in an hour
    soon = utcnow() + timedelta(seconds=1)
    delayed = await create(api, runAt=soon.isoformat(), priority=9)
    later = await create(api, runAt=(utcnow() + timedelta(hours=1)).isoformat())
    assert iso(delayed["runAt"]) == soon

    # when a worker asks before and after it is due
    early = await claim(api)
    due = await eventually(lambda: claim(api), interval=0.1)

    # then it got nothing before, the due job after, and the later job stays
    assert early is None
    assert due["jobId"] == delayed["jobId"] and iso(due["processingStartedAt"]) >= soon
    assert (await claim(api)) is None
    assert (await job(api, later["jobId"]))["status"] == "PENDING"
    too_far = await api.error(CREATE, {"input": {"jobType": "pdf", "runAt": (
        utcnow() + timedelta(days=400)).isoformat()}})
    assert too_far["extensions"]["field"] == "runAt"


async def test_retry_job_may_set_a_new_run_at(api: Api) -> None:
    job_id = (await create(api, maxAttempts=1))["jobId"]
    await claim(api)
    await api.data(FAIL, {"id": job_id, "code": "E"}, as_=WORKER)
    when = utcnow() + timedelta(minutes=10)
    retried = (await api.data(RETRY, {"id": job_id, "runAt": when.isoformat()}))["retryJob"]
    assert (retried["status"], iso(retried["runAt"])) == ("PENDING", when)
    assert (await claim(api)) is None


# -- retry policy ---------------------------------------------------------------------------


async def test_a_retryable_failure_by_its_worker_runs_again_after_the_backoff(
        api: Api) -> None:
    # given a job retried after a fixed second, twice at most
    policy = {"maxAttempts": 2, "backoff": "FIXED", "baseSeconds": 1}
    made = await create(api, retryPolicy=policy)
    assert made["retryPolicy"] == {"maxAttempts": 2, "backoff": "FIXED", "baseSeconds": 1.0,
                                   "capSeconds": 3600.0}
    assert made["maxAttempts"] == 2
    await claim(api)
    failed_at = utcnow()

    # when its worker fails it, retryable
    requeued = (await api.data(FAIL, {"id": made["jobId"], "code": "FLAKY"},
                               as_=WORKER))["failJob"]

    # then it is PENDING again, due a second later, the error kept
    assert (requeued["status"], requeued["claimedBy"], requeued["error"]) == (
        "PENDING", None, None)
    assert [error["code"] for error in requeued["previousErrors"]] == ["FLAKY"]
    assert timedelta(seconds=1) <= iso(requeued["runAt"]) - failed_at < timedelta(seconds=3)
    assert await claim(api, OTHER_WORKER) is None
    # and once due another worker runs it; its second failure is the last
    again = await eventually(lambda: claim(api, OTHER_WORKER), interval=0.1)
    assert (again["jobId"], again["attempts"]) == (made["jobId"], 2)
    final = (await api.data(FAIL, {"id": made["jobId"], "code": "FLAKY2"},
                            as_=OTHER_WORKER))["failJob"]
    assert (final["status"], final["error"]["code"]) == ("FAILED", "FLAKY2")
    assert [error["code"] for error in final["previousErrors"]] == ["FLAKY"]


async def test_a_final_failure_ends_the_job_whatever_attempts_remain(api: Api) -> None:
    # not retryable, by its worker
    first = (await create(api, maxAttempts=5))["jobId"]
    await claim(api)
    failed = (await api.data(FAIL, {"id": first, "code": "BAD", "retryable": False},
                             as_=WORKER))["failJob"]
    assert (failed["status"], failed["previousErrors"]) == ("FAILED", [])
    # retryable, but failed by a writer that does not hold it
    second = (await create(api, maxAttempts=5))["jobId"]
    await claim(api)
    failed = (await api.data(FAIL, {"id": second, "code": "STOP"}, as_=ALICE))["failJob"]
    assert (failed["status"], failed["error"]["code"]) == ("FAILED", "STOP")


async def test_retry_policies_default_to_the_configuration(
        mongo_uri: str, database_name: str, store: Store) -> None:
    settings = make_settings(database=database_name, default_max_attempts=4,
                             retry_backoff="FIXED", retry_base_seconds=7,
                             retry_cap_seconds=60)
    async with open_api(settings, mongo_uri) as api:
        default = await create(api)
        partial = await create(api, retryPolicy={"backoff": "EXPONENTIAL"})
        mismatch = await api.error(CREATE, {"input": {
            "jobType": "pdf", "maxAttempts": 2, "retryPolicy": {"maxAttempts": 3}}})
    assert default["retryPolicy"] == {"maxAttempts": 4, "backoff": "FIXED",
                                      "baseSeconds": 7.0, "capSeconds": 60.0}
    assert partial["retryPolicy"]["backoff"] == "EXPONENTIAL"
    assert partial["retryPolicy"]["baseSeconds"] == 7.0
    assert mismatch["extensions"]["field"] == "retryPolicy.maxAttempts"


@pytest.fixture
async def swept(mongo_uri: str, database_name: str, store: Store) -> AsyncIterator[Api]:
    """Leases of 30 s and a reaper that sweeps only when the test says so."""
    settings = make_settings(database=database_name, lease_seconds=30,
                             reaper_interval_seconds=3600)
    async with open_api(settings, mongo_uri) as api:
        yield api


async def sweep(api: Api) -> None:
    await api.app.state.reaper.sweep()  # type: ignore[attr-defined]


async def test_a_lapsed_lease_requeues_after_the_backoff(swept: Api, store: Store) -> None:
    made = await create(swept, retryPolicy={"backoff": "FIXED", "baseSeconds": 120})
    await claim(swept)
    await store.jobs.collection.update_one(
        {"_id": made["jobId"]}, {"$set": {"lease_expires_at": utcnow() - timedelta(seconds=1)}})
    await sweep(swept)
    requeued = await job(swept, made["jobId"])
    assert requeued["status"] == "PENDING"
    assert [error["code"] for error in requeued["previousErrors"]] == ["LEASE_EXPIRED"]
    assert iso(requeued["runAt"]) - utcnow() > timedelta(seconds=100)
    assert await claim(swept) is None


# -- timeouts -----------------------------------------------------------------------------


async def test_a_job_past_its_timeout_is_timed_out_however_its_worker_renews(
        swept: Api) -> None:
    # given a job allowed 1 s per claim, two claims at most, and no backoff
    made = await create(swept, timeoutSeconds=1, retryPolicy={
        "maxAttempts": 2, "backoff": "FIXED", "baseSeconds": 0})
    assert made["timeoutSeconds"] == 1.0
    claimed = await claim(swept)
    assert iso(claimed["timeoutAt"]) == iso(claimed["processingStartedAt"]) + timedelta(
        seconds=1)

    async def running_until_reaped(worker: Caller) -> dict[str, Any] | None:
        await swept.execute(HEARTBEAT, {"id": made["jobId"]}, as_=worker)
        await sweep(swept)
        state = await job(swept, made["jobId"])
        return state if state["status"] != "PROCESSING" else None

    # when its worker keeps heartbeating past the timeout
    requeued = await eventually(lambda: running_until_reaped(WORKER), interval=0.2)

    # then the attempt ended TIMED_OUT and the job went back to the queue
    assert requeued["status"] == "PENDING"
    assert [error["code"] for error in requeued["previousErrors"]] == ["TIMED_OUT"]
    # and the second attempt, past its timeout too, fails it for good
    assert (await claim(swept, OTHER_WORKER))["attempts"] == 2  # type: ignore[index]
    failed = await eventually(lambda: running_until_reaped(OTHER_WORKER), interval=0.2)
    assert (failed["status"], failed["error"]["code"]) == ("FAILED", "TIMED_OUT")
    assert failed["error"]["details"]["timeoutSeconds"] == 1.0
    assert failed["logs"][-1]["level"] == "ERROR"
