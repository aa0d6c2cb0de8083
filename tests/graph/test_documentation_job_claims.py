"""Documentation jobs as real work, through the public API (issue 15, item 8): workers
claim them as they claim jobs, under leases that heartbeats, statistics and files renew;
a lapsed or failed run is retried by the job's retry policy; a worker that lost its
claim writes nothing more; statistics and files stop changing once the job is finished;
paths and commit hashes are checked."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import datetime, timedelta
from typing import Any

import pytest

from repository.database import Store
from repository.models import utcnow
from tests.helpers.graphql import (
    ADMIN,
    ALICE,
    ANON,
    BOB,
    WORKER,
    Api,
    Caller,
    make_settings,
    open_api,
)

OTHER_WORKER = Caller("worker-2", ("worker",))
LEASE_SECONDS = 120

FRAGMENT = """
fragment Fields on DocumentationJob {
  jobId status attempts claimedBy leaseExpiresAt runAt retryable timestampStart
  timestampEnd errorMessage version filesGenerated moduleCount
  statistics { totalFilesAnalyzed leafNodes maxDepth totalTokensUsed }
  retryPolicy { maxAttempts backoff baseSeconds capSeconds }
  error { code message attempt worker failedAt }
  previousErrors { code message attempt worker failedAt }
}"""
CREATE = """mutation($input: CreateDocumentationJobInput!) {
  createDocumentationJob(input: $input) { ...Fields } }""" + FRAGMENT
CLAIM = "mutation { claimDocumentationJob { ...Fields } }" + FRAGMENT
JOB = "query($id: ID!) { documentationJob(jobId: $id) { ...Fields } }" + FRAGMENT
JOBS = """query { documentationJobs(first: 50) { totalCount edges { node { jobId } } } }"""
HEARTBEAT = "mutation($id: ID!) { heartbeatDocumentationJob(jobId: $id) { ...Fields } }" + FRAGMENT
FAIL = """mutation($id: ID!, $retryable: Boolean!) {
  failDocumentationJob(jobId: $id, errorMessage: "the LLM timed out", retryable: $retryable) {
    ...Fields } }""" + FRAGMENT
RETRY = "mutation($id: ID!) { retryDocumentationJob(jobId: $id) { ...Fields } }" + FRAGMENT
START = "mutation($id: ID!) { startDocumentationJob(jobId: $id) { ...Fields } }" + FRAGMENT
COMPLETE = "mutation($id: ID!) { completeDocumentationJob(jobId: $id) { ...Fields } }" + FRAGMENT
ADD_STATISTICS = """mutation($id: ID!, $increments: JobStatisticsIncrementInput!) {
  addDocumentationJobStatistics(jobId: $id, increments: $increments) { ...Fields } }""" + FRAGMENT
SET_STATISTICS = """mutation($id: ID!, $statistics: JobStatisticsInput!) {
  setDocumentationJobStatistics(jobId: $id, statistics: $statistics) { ...Fields } }""" + FRAGMENT
ADD_FILES = """mutation($id: ID!, $files: [String!]!, $moduleCount: Int) {
  addGeneratedFiles(jobId: $id, files: $files, moduleCount: $moduleCount) {
    ...Fields } }""" + FRAGMENT

WORKER_WRITES: dict[str, tuple[str, dict[str, Any]]] = {
    "heartbeatDocumentationJob": (HEARTBEAT, {}),
    "addDocumentationJobStatistics": (ADD_STATISTICS, {"increments": {"leafNodes": 1}}),
    "setDocumentationJobStatistics": (SET_STATISTICS, {"statistics": {"maxDepth": 9}}),
    "addGeneratedFiles": (ADD_FILES, {"files": ["late.md"], "moduleCount": 9}),
    "completeDocumentationJob": (COMPLETE, {}),
    "failDocumentationJob": (FAIL, {"retryable": True}),
}
"""What a worker sends while it holds a documentation job."""
UNFINISHED_ONLY = {name: WORKER_WRITES[name] for name in (
    "addDocumentationJobStatistics", "setDocumentationJobStatistics", "addGeneratedFiles")}
NOW_AGAIN = {"backoff": "FIXED", "baseSeconds": 0}
"""A retry policy whose retries are due at once."""


@pytest.fixture
async def api(mongo_uri: str, database_name: str, store: Store) -> AsyncIterator[Api]:
    """Long leases and a reaper that sweeps only when a test says so (``reap``); a lease is
    made to lapse by moving its end into the past (``lapse``)."""
    settings = make_settings(database=database_name, lease_seconds=LEASE_SECONDS,
                             reaper_interval_seconds=3600)
    async with open_api(settings, mongo_uri) as api:
        yield api


async def create(api: Api, *, as_: Caller = ALICE, **fields: Any) -> dict[str, Any]:
    data = await api.data(CREATE, {"input": {
        "repositoryPath": "/src/app", "repositoryName": "app", "outputDirectory": "/docs",
        **fields}}, as_=as_)
    return data["createDocumentationJob"]


async def claim(api: Api, worker: Caller = WORKER) -> dict[str, Any] | None:
    return (await api.data(CLAIM, as_=worker))["claimDocumentationJob"]


async def state(api: Api, job_id: str) -> dict[str, Any]:
    return (await api.data(JOB, {"id": job_id}, as_=ADMIN))["documentationJob"]


async def write(api: Api, name: str, job_id: str, as_: Caller = WORKER) -> dict[str, Any]:
    """The whole answer of one of ``WORKER_WRITES``."""
    document, variables = WORKER_WRITES[name]
    return await api.execute(document, {"id": job_id, **variables}, as_=as_)


async def lapse(store: Store, job_id: str) -> None:
    """Setup: the holder went silent and its lease ran out."""
    await store.documentation_jobs.collection.update_one(
        {"_id": job_id}, {"$set": {"lease_expires_at": utcnow() - timedelta(seconds=1)}})


async def reap(api: Api) -> int:
    """The server's own reaper, one sweep."""
    return await api.app.state.reaper.sweep()  # type: ignore[attr-defined]


def instant(value: str) -> datetime:
    return datetime.fromisoformat(value)


def seconds_from_now(value: str) -> float:
    return (instant(value) - utcnow()).total_seconds()


# -- claiming ----------------------------------------------------------------------------


async def test_claim_runs_the_oldest_due_job_under_a_lease(api: Api) -> None:
    # given two waiting jobs, the first created first
    first, second = await create(api), await create(api)
    assert (first["attempts"], first["claimedBy"], first["leaseExpiresAt"]) == (0, None, None)
    assert first["runAt"] is not None

    # when a worker claims twice, then a third time
    taken = await claim(api)
    again = await claim(api)
    nothing = await claim(api)

    # then it got the oldest first, RUNNING under its lease, then the other, then none
    assert taken is not None and again is not None
    assert (taken["jobId"], again["jobId"], nothing) == (first["jobId"], second["jobId"], None)
    assert (taken["status"], taken["claimedBy"], taken["attempts"]) == (
        "RUNNING", WORKER.user_id, 1)
    assert LEASE_SECONDS - 30 < seconds_from_now(taken["leaseExpiresAt"]) <= LEASE_SECONDS
    assert instant(taken["timestampStart"]) >= instant(first["runAt"])
    assert taken["version"] == first["version"] + 1
    assert await state(api, first["jobId"]) == taken


@pytest.mark.parametrize("caller", [ALICE, ANON], ids=["user", "anonymous"])
async def test_claim_needs_the_worker_role(api: Api, caller: Caller) -> None:
    job = await create(api)

    error = await api.error(CLAIM, as_=caller)

    assert error["extensions"]["code"] == "FORBIDDEN"
    assert "worker role" in error["message"]
    assert await state(api, job["jobId"]) == job


async def test_worker_reads_the_job_it_holds_and_no_other(api: Api) -> None:
    # given two private jobs of alice, one claimed by the worker
    held, other = await create(api), await create(api)
    assert (await claim(api))["jobId"] == held["jobId"]  # type: ignore[index]

    # when the worker reads and lists documentation jobs
    mine = (await api.data(JOB, {"id": held["jobId"]}, as_=WORKER))["documentationJob"]
    hidden = await api.error(JOB, {"id": other["jobId"]}, as_=WORKER)
    listed = (await api.data(JOBS, as_=WORKER))["documentationJobs"]

    # then it sees the one it holds, and the other looks missing
    assert mine["claimedBy"] == WORKER.user_id
    assert hidden["extensions"]["code"] == "NOT_FOUND"
    assert listed["totalCount"] == 1
    assert [edge["node"]["jobId"] for edge in listed["edges"]] == [held["jobId"]]


async def test_fifty_concurrent_claimers_never_take_one_job_twice(api: Api) -> None:
    # given 20 waiting jobs and 50 workers
    created = {(await create(api))["jobId"] for _ in range(20)}
    workers = [Caller(f"racer-{n}", ("worker",)) for n in range(50)]

    # when all claim at once
    answers = await asyncio.gather(*(api.data(CLAIM, as_=worker) for worker in workers))

    # then every job went to exactly one worker, and 30 workers got nothing
    taken = [(answer["claimDocumentationJob"]["jobId"], worker.user_id)
             for answer, worker in zip(answers, workers, strict=True)
             if answer["claimDocumentationJob"] is not None]
    assert sorted(job_id for job_id, _ in taken) == sorted(created)
    for job_id, worker_id in taken:
        stored = await state(api, job_id)
        assert (stored["claimedBy"], stored["attempts"], stored["status"]) == (
            worker_id, 1, "RUNNING")


async def test_heartbeat_renews_the_lease_of_the_holder_only(api: Api, store: Store) -> None:
    job = await create(api)
    await claim(api)
    await store.documentation_jobs.collection.update_one(  # most of the lease used up
        {"_id": job["jobId"]}, {"$set": {"lease_expires_at": utcnow() + timedelta(seconds=5)}})

    renewed = (await write(api, "heartbeatDocumentationJob", job["jobId"]))["data"][
        "heartbeatDocumentationJob"]
    stranger = await write(api, "heartbeatDocumentationJob", job["jobId"], as_=OTHER_WORKER)

    assert seconds_from_now(renewed["leaseExpiresAt"]) > LEASE_SECONDS - 30
    assert stranger["errors"][0]["extensions"]["code"] == "NOT_FOUND"
    assert await state(api, job["jobId"]) == renewed


# -- lost claims: a worker whose lease lapsed writes nothing more ---------------------------


@pytest.mark.parametrize("name", sorted(WORKER_WRITES))
async def test_a_lapsed_worker_write_is_refused_before_and_after_reaping(
    api: Api, store: Store, name: str
) -> None:
    # given a job whose holder's lease lapsed
    job = await create(api, accessControl={"writeAccess": [WORKER.user_id]},
                       retryPolicy=NOW_AGAIN)
    await claim(api)
    await lapse(store, job["jobId"])
    before = await state(api, job["jobId"])

    # when the worker (a writer too) writes late, before any reaping
    late = await write(api, name, job["jobId"])

    # then it hears that its lease expired, and nothing changed
    assert late["errors"][0]["extensions"]["code"] == "CONFLICT", late
    assert "expired" in late["errors"][0]["message"]
    assert await state(api, job["jobId"]) == before

    # and once the reaper requeued the job and another worker took it, still nothing
    assert await reap(api) == 1
    assert (await claim(api, OTHER_WORKER))["jobId"] == job["jobId"]  # type: ignore[index]
    held = await state(api, job["jobId"])
    later = await write(api, name, job["jobId"])
    assert later["errors"][0]["extensions"]["code"] == "CONFLICT", later
    assert "lost" in later["errors"][0]["message"]
    assert await state(api, job["jobId"]) == held


async def test_a_late_write_racing_the_reaper_either_lands_before_it_or_is_refused(
    api: Api, store: Store
) -> None:
    """The reaper's compare-and-set and the lease-bound write exclude each other: a lapsed
    worker's statistics never land on a requeued job."""
    jobs = [await create(api, retryPolicy=NOW_AGAIN) for _ in range(10)]
    for _ in jobs:
        await claim(api)
    for job in jobs:
        await lapse(store, job["jobId"])

    results = await asyncio.gather(
        reap(api), *(write(api, "addDocumentationJobStatistics", job["jobId"]) for job in jobs))

    assert results[0] == len(jobs)
    for job, late in zip(jobs, results[1:], strict=True):
        assert late["errors"][0]["extensions"]["code"] == "CONFLICT"
        stored = await state(api, job["jobId"])
        assert stored["status"] == "PENDING"
        assert stored["statistics"]["leafNodes"] == 0


async def test_a_completion_racing_a_writers_failure_ends_in_exactly_one_of_them(
    api: Api
) -> None:
    # given ten jobs held by the worker
    jobs = [await create(api) for _ in range(10)]
    for _ in jobs:
        await claim(api)

    # when the worker completes each while alice fails it for good
    answers = await asyncio.gather(*(
        answer for job in jobs for answer in (
            write(api, "completeDocumentationJob", job["jobId"]),
            api.execute(FAIL, {"id": job["jobId"], "retryable": False}))))

    # then each job ended once: one of the two won, the other was refused
    for job, (completed, failed) in zip(jobs, zip(answers[::2], answers[1::2], strict=True),
                                        strict=True):
        stored = await state(api, job["jobId"])
        winner, loser = (completed, failed) if stored["status"] == "COMPLETED" else (
            failed, completed)
        assert stored["status"] in ("COMPLETED", "FAILED")
        assert not winner.get("errors"), winner
        assert loser["errors"][0]["extensions"]["code"] == "INVALID_TRANSITION", loser
        assert stored["version"] == job["version"] + 2  # the claim, one ending


# -- the reaper and the retry policy ---------------------------------------------------------


async def test_an_expired_lease_requeues_the_job_after_the_backoff(
    api: Api, store: Store
) -> None:
    # given a claimed job whose retries wait a fixed minute, and whose lease lapsed
    job = await create(api, retryPolicy={"backoff": "FIXED", "baseSeconds": 60,
                                         "maxAttempts": 3})
    await claim(api)
    await lapse(store, job["jobId"])

    # when the reaper comes round
    assert await reap(api) == 1

    # then the job waits again, due in a minute, the lapse kept as an error
    requeued = await state(api, job["jobId"])
    assert (requeued["status"], requeued["claimedBy"], requeued["attempts"]) == (
        "PENDING", None, 1)
    assert (requeued["leaseExpiresAt"], requeued["timestampStart"], requeued["error"]) == (
        None, None, None)
    assert 30 < seconds_from_now(requeued["runAt"]) <= 60
    [lapsed] = requeued["previousErrors"]
    assert (lapsed["code"], lapsed["attempt"], lapsed["worker"]) == (
        "LEASE_EXPIRED", 1, WORKER.user_id)
    assert "back in the queue" in lapsed["message"]
    # and nobody can claim it before its time
    assert await claim(api, OTHER_WORKER) is None
    await store.documentation_jobs.collection.update_one(  # the minute passes
        {"_id": job["jobId"]}, {"$set": {"run_at": utcnow() - timedelta(seconds=1)}})
    again = await claim(api, OTHER_WORKER)
    assert again is not None and (again["jobId"], again["attempts"]) == (job["jobId"], 2)


async def test_an_expired_lease_on_the_last_attempt_fails_the_job(
    api: Api, store: Store
) -> None:
    job = await create(api, retryPolicy={"maxAttempts": 1})
    await claim(api)
    await lapse(store, job["jobId"])

    assert await reap(api) == 1

    failed = await state(api, job["jobId"])
    assert (failed["status"], failed["attempts"], failed["retryable"]) == ("FAILED", 1, True)
    assert (failed["error"]["code"], failed["error"]["worker"]) == (
        "LEASE_EXPIRED", WORKER.user_id)
    assert failed["errorMessage"] == failed["error"]["message"]
    assert "no attempts are left" in failed["errorMessage"]
    assert failed["timestampEnd"] is not None and failed["previousErrors"] == []
    assert await claim(api) is None
    assert await reap(api) == 0


async def test_concurrent_reapers_handle_each_expired_job_once(api: Api, store: Store) -> None:
    jobs = [await create(api, retryPolicy=NOW_AGAIN) for _ in range(8)]
    for _ in jobs:
        await claim(api)
    for job in jobs:
        await lapse(store, job["jobId"])

    handled = await asyncio.gather(*(reap(api) for _ in range(5)))

    assert sum(handled) == len(jobs)
    for job in jobs:
        stored = await state(api, job["jobId"])
        assert stored["status"] == "PENDING"
        assert len(stored["previousErrors"]) == 1
        assert stored["version"] == job["version"] + 2  # the claim, one requeue


async def test_a_retryable_failure_requeues_until_the_attempts_are_used(api: Api) -> None:
    # given a job of two attempts whose retries are due at once
    job = await create(api, retryPolicy={**NOW_AGAIN, "maxAttempts": 2})

    # when its worker fails the first run, then the second
    await claim(api)
    first = (await write(api, "failDocumentationJob", job["jobId"]))["data"][
        "failDocumentationJob"]
    second_claim = await claim(api, OTHER_WORKER)
    second = (await write(api, "failDocumentationJob", job["jobId"], as_=OTHER_WORKER))[
        "data"]["failDocumentationJob"]

    # then the first failure put it back in the queue, the second ended it
    assert (first["status"], first["claimedBy"], first["errorMessage"]) == (
        "PENDING", None, None)
    assert [(e["attempt"], e["worker"], e["code"]) for e in first["previousErrors"]] == [
        (1, WORKER.user_id, None)]
    assert second_claim is not None and second_claim["attempts"] == 2
    assert (second["status"], second["errorMessage"]) == ("FAILED", "the LLM timed out")
    assert (second["error"]["attempt"], second["error"]["worker"]) == (2, OTHER_WORKER.user_id)
    assert len(second["previousErrors"]) == 1
    # and the worker that gave the job back can write it no more
    late = await write(api, "addGeneratedFiles", job["jobId"])
    assert late["errors"][0]["extensions"]["code"] == "CONFLICT"


async def test_a_requeue_waits_for_the_backoff(api: Api) -> None:
    job = await create(api, retryPolicy={"backoff": "FIXED", "baseSeconds": 3600})
    await claim(api)

    requeued = (await write(api, "failDocumentationJob", job["jobId"]))["data"][
        "failDocumentationJob"]

    assert requeued["status"] == "PENDING"
    assert 3500 < seconds_from_now(requeued["runAt"]) <= 3600
    assert await claim(api) is None


@pytest.mark.parametrize("how", ["not retryable", "never claimed"])
async def test_a_failure_that_cannot_be_retried_fails_the_job_at_once(
    api: Api, how: str
) -> None:
    job = await create(api)
    if how == "not retryable":
        await claim(api)
    else:
        await api.data(START, {"id": job["jobId"]})  # a writer runs it itself

    failed = (await api.data(FAIL, {"id": job["jobId"], "retryable": how == "never claimed"},
                             as_=WORKER if how == "not retryable" else ALICE))[
        "failDocumentationJob"]

    assert (failed["status"], failed["errorMessage"]) == ("FAILED", "the LLM timed out")
    assert failed["retryable"] is (how == "never claimed")
    assert await claim(api) is None


async def test_retry_puts_a_failed_job_back_for_one_more_attempt(api: Api) -> None:
    # given a job that failed its only attempt
    job = await create(api, retryPolicy={"maxAttempts": 1})
    await claim(api)
    failed = (await write(api, "failDocumentationJob", job["jobId"]))["data"][
        "failDocumentationJob"]
    assert failed["status"] == "FAILED"

    # when the worker, then alice (its admin) retries it
    by_worker = await api.error(RETRY, {"id": job["jobId"]}, as_=WORKER)
    retried = (await api.data(RETRY, {"id": job["jobId"]}))["retryDocumentationJob"]

    # then only alice may, and the job waits again with its error kept
    assert by_worker["extensions"]["code"] == "FORBIDDEN"
    assert (retried["status"], retried["error"], retried["errorMessage"]) == (
        "PENDING", None, None)
    assert (retried["claimedBy"], retried["timestampEnd"], retried["attempts"]) == (
        None, None, 1)
    assert retried["previousErrors"] == [failed["error"]]
    again = await claim(api, OTHER_WORKER)
    assert again is not None and again["attempts"] == 2
    # and a failure of that extra attempt is final
    final = (await write(api, "failDocumentationJob", job["jobId"], as_=OTHER_WORKER))[
        "data"]["failDocumentationJob"]
    assert final["status"] == "FAILED"
    assert len(final["previousErrors"]) == 1


@pytest.mark.parametrize("status", ["PENDING", "RUNNING", "COMPLETED", "not retryable"])
async def test_retry_refuses_a_job_that_is_not_failed_or_failed_for_good(
    api: Api, status: str
) -> None:
    job = await create(api)
    if status != "PENDING":
        await claim(api)
    if status == "COMPLETED":
        await write(api, "completeDocumentationJob", job["jobId"])
    if status == "not retryable":
        await api.data(FAIL, {"id": job["jobId"], "retryable": False}, as_=WORKER)
    before = await state(api, job["jobId"])

    error = await api.error(RETRY, {"id": job["jobId"]})

    assert error["extensions"]["code"] == "INVALID_TRANSITION"
    assert await state(api, job["jobId"]) == before


async def test_retry_policy_defaults_and_validation(api: Api) -> None:
    default = await create(api)
    custom = await create(api, retryPolicy={"maxAttempts": 5, "backoff": "FIXED",
                                            "baseSeconds": 2})
    refused = await api.error(CREATE, {"input": {
        "repositoryPath": "/src/app", "repositoryName": "app", "outputDirectory": "/docs",
        "retryPolicy": {"maxAttempts": 0}}})

    assert default["retryPolicy"] == {"maxAttempts": 3, "backoff": "EXPONENTIAL",
                                      "baseSeconds": 5.0, "capSeconds": 3600.0}
    assert custom["retryPolicy"] == {"maxAttempts": 5, "backoff": "FIXED",
                                     "baseSeconds": 2.0, "capSeconds": 3600.0}
    assert refused["extensions"] == {"code": "VALIDATION_ERROR",
                                     "field": "retryPolicy.maxAttempts"}


# -- statistics, files and the module count -------------------------------------------------


async def test_statistics_are_reported_incrementally(api: Api) -> None:
    job = await create(api)
    await claim(api)

    await api.data(ADD_STATISTICS, {"id": job["jobId"], "increments": {
        "totalFilesAnalyzed": 10, "leafNodes": 4, "maxDepth": 3, "totalTokensUsed": 1000}},
        as_=WORKER)
    await api.data(ADD_STATISTICS, {"id": job["jobId"], "increments": {
        "totalFilesAnalyzed": 5, "maxDepth": 2, "totalTokensUsed": 500}}, as_=WORKER)
    added = (await api.data(ADD_STATISTICS, {"id": job["jobId"], "increments": {
        "maxDepth": 7}}, as_=WORKER))["addDocumentationJobStatistics"]
    both = (await api.data(SET_STATISTICS, {"id": job["jobId"], "statistics": {
        "leafNodes": 40}}, as_=WORKER))["setDocumentationJobStatistics"]

    assert added["statistics"] == {"totalFilesAnalyzed": 15, "leafNodes": 4, "maxDepth": 7,
                                   "totalTokensUsed": 1500}
    assert both["statistics"] == {**added["statistics"], "leafNodes": 40}
    assert await state(api, job["jobId"]) == both


async def test_concurrent_increments_are_all_counted(api: Api) -> None:
    job = await create(api)
    await claim(api)

    await asyncio.gather(*(api.data(ADD_STATISTICS, {"id": job["jobId"], "increments": {
        "totalFilesAnalyzed": 1, "totalTokensUsed": n, "maxDepth": n}}, as_=WORKER)
        for n in range(1, 21)))

    assert (await state(api, job["jobId"]))["statistics"] == {
        "totalFilesAnalyzed": 20, "leafNodes": 0, "maxDepth": 20, "totalTokensUsed": 210}


@pytest.mark.parametrize(("increments", "field"), [
    ({}, "statistics"),
    ({"leafNodes": -1}, "leafNodes"),
    ({"totalTokensUsed": None}, "statistics"),
])
async def test_statistics_refuse_bad_increments(
    api: Api, increments: dict[str, Any], field: str
) -> None:
    job = await create(api)

    error = await api.error(ADD_STATISTICS, {"id": job["jobId"], "increments": increments})

    assert error["extensions"] == {"code": "VALIDATION_ERROR", "field": field}
    assert await state(api, job["jobId"]) == job


@pytest.mark.parametrize("finish", ["complete", "fail"])
@pytest.mark.parametrize("name", sorted(UNFINISHED_ONLY))
async def test_statistics_and_files_are_refused_once_the_job_is_finished(
    api: Api, finish: str, name: str
) -> None:
    # given a job its writer ran and finished
    job = await create(api)
    await api.data(START, {"id": job["jobId"]})
    if finish == "complete":
        await api.data(COMPLETE, {"id": job["jobId"]})
    else:
        await api.data(FAIL, {"id": job["jobId"], "retryable": False})
    before = await state(api, job["jobId"])

    # when the writer reports more
    late = await write(api, name, job["jobId"], as_=ALICE)

    # then it is refused, and nothing changed
    assert late["errors"][0]["extensions"]["code"] == "INVALID_TRANSITION", late
    assert before["status"] in late["errors"][0]["message"]
    assert await state(api, job["jobId"]) == before


async def test_statistics_and_files_renew_the_holders_lease(api: Api, store: Store) -> None:
    job = await create(api)
    await claim(api)
    for name in sorted(UNFINISHED_ONLY):
        await store.documentation_jobs.collection.update_one(
            {"_id": job["jobId"]},
            {"$set": {"lease_expires_at": utcnow() + timedelta(seconds=5)}})

        answer = (await write(api, name, job["jobId"]))["data"][name]

        assert seconds_from_now(answer["leaseExpiresAt"]) > LEASE_SECONDS - 30, name


# -- validation ---------------------------------------------------------------------------------


@pytest.mark.parametrize(("fields", "field"), [
    ({"repositoryPath": "src/app"}, "repositoryPath"),
    ({"repositoryPath": "./app"}, "repositoryPath"),
    ({"repositoryPath": "~/app"}, "repositoryPath"),
    ({"commitHash": "abc"}, "commitHash"),
    ({"commitHash": "2cd503g"}, "commitHash"),
    ({"commitHash": "a" * 65}, "commitHash"),
    ({"commitHash": "HEAD"}, "commitHash"),
    ({"commitHash": ""}, "commitHash"),
])
async def test_create_refuses_a_relative_path_or_a_commit_hash_that_is_no_sha(
    api: Api, store: Store, fields: dict[str, Any], field: str
) -> None:
    error = await api.error(CREATE, {"input": {
        "repositoryPath": "/src/app", "repositoryName": "app", "outputDirectory": "/docs",
        **fields}})

    assert error["extensions"] == {"code": "VALIDATION_ERROR", "field": field}
    assert await store.documentation_jobs.collection.count_documents({}) == 0


@pytest.mark.parametrize(("fields", "stored"), [
    ({"commitHash": "2cd5"}, {"commitHash": "2cd5"}),
    ({"commitHash": "2CD5031"}, {"commitHash": "2cd5031"}),
    ({"commitHash": "a" * 40}, {"commitHash": "a" * 40}),
    ({"commitHash": "b" * 64}, {"commitHash": "b" * 64}),
    ({"repositoryPath": "C:\\src\\app"}, {"repositoryPath": "C:\\src\\app"}),
    ({"repositoryPath": "\\\\host\\share\\app"}, {"repositoryPath": "\\\\host\\share\\app"}),
])
async def test_create_takes_absolute_paths_and_hex_shas(
    api: Api, fields: dict[str, Any], stored: dict[str, Any]
) -> None:
    job = await create(api, **fields)

    read = (await api.data("query($id: ID!) { documentationJob(jobId: $id) { repositoryPath "
                           "commitHash } }", {"id": job["jobId"]}))["documentationJob"]
    assert {key: read[key] for key in stored} == stored


async def test_bob_without_write_access_cannot_drive_alices_job(api: Api) -> None:
    """The writer rules still hold beside the lease rules."""
    job = await create(api, accessControl={"readAccess": [BOB.user_id]})

    error = await write(api, "addDocumentationJobStatistics", job["jobId"], as_=BOB)

    assert error["errors"][0]["extensions"]["code"] == "FORBIDDEN"
