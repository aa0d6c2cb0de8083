"""A worker's writes are bound to its claim, through the public API: once its lease is
lost, no right it has otherwise (writer, admin, the admin role) lets a late write in, and
a job that failed for good through lease expiry stays failed for that worker."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import timedelta
from typing import Any

import pytest

from repository.database import Store
from repository.models import new_id, utcnow
from tests.helpers.commands import CommandCounter
from tests.helpers.graphql import ADMIN, ALICE, WORKER, Api, Caller, make_settings, open_api

OTHER_WORKER = Caller("worker-2", ("worker",))
OPS = Caller("ops", ("admin", "worker"))
"""Holds both roles: may claim, and may write every job by its role."""

CREATE = """mutation($input: CreateJobInput!) { createJob(input: $input) { jobId } }"""
CLAIM = """mutation { claimJob { jobId attempts claimedBy } }"""
JOB = """query($id: ID!) { job(jobId: $id) {
  status attempts claimedBy version logSeq progress { percent } results
  error { code message } previousErrors { code } } }"""
SET_ACCESS = """mutation($id: ID!, $access: AccessControlInput!) {
  setJobAccess(jobId: $id, accessControl: $access) { jobId } }"""

LATE_WRITES = {
    "updateJobProgress": """mutation($id: ID!) {
      updateJobProgress(jobId: $id, progress: {step: "late", percent: 99}) { jobId } }""",
    "heartbeatJob": """mutation($id: ID!) { heartbeatJob(jobId: $id) { jobId } }""",
    "appendJobLogs": """mutation($id: ID!) {
      appendJobLogs(jobId: $id, entries: [{level: INFO, message: "late"}]) { jobId } }""",
    "completeJob": """mutation($id: ID!) {
      completeJob(jobId: $id, results: {stale: true}) { jobId } }""",
    "failJob": """mutation($id: ID!) {
      failJob(jobId: $id, error: {code: "LATE", message: "late"}) { jobId } }""",
}
COMPLETE = LATE_WRITES["completeJob"]
RETRY = """mutation($id: ID!) { retryJob(jobId: $id) { status } }"""
FAIL = """mutation($id: ID!, $retryable: Boolean!) {
  failJob(jobId: $id, error: {code: "E", message: "m"}, retryable: $retryable) { status } }"""


@pytest.fixture
async def patient(mongo_uri: str, database_name: str, store: Store) -> AsyncIterator[Api]:
    """Long leases and a reaper that only sweeps when the test says so (``reap``); a lease
    is made to lapse by moving its end into the past (``lapse``)."""
    settings = make_settings(database=database_name, lease_seconds=120,
                             reaper_interval_seconds=3600, dispatcher=False)
    counter = CommandCounter(database_name)
    async with open_api(settings, mongo_uri,
                        client_options={"event_listeners": [counter]}) as api:
        api.counter = counter  # type: ignore[attr-defined]
        yield api


async def lapse(store: Store, job_id: str) -> None:
    """Setup: the holder went silent and its lease ran out."""
    await store.jobs.collection.update_one(
        {"_id": job_id}, {"$set": {"lease_expires_at": utcnow() - timedelta(seconds=1)}})


async def reap(api: Api) -> None:
    """The server's own reaper, one sweep."""
    await api.app.state.reaper.sweep()  # type: ignore[attr-defined]


async def create(api: Api, *, as_: Caller = ALICE, **fields: Any) -> str:
    data = await api.data(CREATE, {"input": {"jobType": "pdf", **fields}}, as_=as_)
    return data["createJob"]["jobId"]


async def job_state(api: Api, job_id: str) -> dict[str, Any]:
    return (await api.data(JOB, {"id": job_id}, as_=ADMIN))["job"]


async def claim(api: Api, worker: Caller, job_id: str) -> None:
    claimed = (await api.data(CLAIM, as_=worker))["claimJob"]
    assert claimed is not None and claimed["jobId"] == job_id


# -- item 2: the claim binds the late writer, whatever else it may do ------------------


@pytest.mark.parametrize("grant", ["writeAccess", "adminAccess", "admin role"])
@pytest.mark.parametrize("write", sorted(LATE_WRITES))
async def test_lapsed_worker_cannot_write_by_its_other_rights_while_another_holds_the_job(
    patient: Api, store: Store, grant: str, write: str
) -> None:
    # given a worker that may also write the job otherwise, whose lease lapsed, and the
    # job requeued and claimed by another worker
    stale = OPS if grant == "admin role" else WORKER
    access = {} if grant == "admin role" else {"accessControl": {grant: [WORKER.user_id]}}
    job_id = await create(patient, **access)
    await claim(patient, stale, job_id)
    await lapse(store, job_id)
    await reap(patient)
    await claim(patient, OTHER_WORKER, job_id)
    before = await job_state(patient, job_id)

    # when the first worker writes after all
    error = await patient.error(LATE_WRITES[write], {"id": job_id}, as_=stale)

    # then it is told it lost the job, and nothing changed
    assert error["extensions"]["code"] == "CONFLICT", error
    assert "lost" in error["message"]
    assert await job_state(patient, job_id) == before
    # and the holder finishes the job with its own results
    await patient.data(COMPLETE, {"id": job_id}, as_=OTHER_WORKER)
    done = await job_state(patient, job_id)
    assert (done["status"], done["claimedBy"], done["results"]) == (
        "COMPLETED", OTHER_WORKER.user_id, {"stale": True})


@pytest.mark.parametrize("write", sorted(LATE_WRITES))
async def test_writer_whose_lease_lapsed_cannot_write_before_any_reaping(
    patient: Api, store: Store, write: str
) -> None:
    job_id = await create(patient, accessControl={"writeAccess": [WORKER.user_id]})
    await claim(patient, WORKER, job_id)
    await lapse(store, job_id)
    before = await job_state(patient, job_id)

    error = await patient.error(LATE_WRITES[write], {"id": job_id}, as_=WORKER)

    assert error["extensions"]["code"] == "CONFLICT", error
    assert "expired" in error["message"]
    assert await job_state(patient, job_id) == before


async def test_writer_that_never_claimed_the_job_may_still_fail_a_processing_job(
    patient: Api
) -> None:
    """What the README keeps for writers: cancelling a job a worker holds."""
    job_id = await create(patient)
    await claim(patient, WORKER, job_id)
    failed = await patient.data(FAIL, {"id": job_id, "retryable": True})
    assert failed["failJob"]["status"] == "FAILED"
    error = await patient.error(COMPLETE, {"id": job_id}, as_=WORKER)
    assert error["extensions"]["code"] == "INVALID_TRANSITION"


# -- item 3: failed for good through lease expiry --------------------------------------


async def test_worker_whose_last_lease_lapsed_can_neither_retry_nor_finish_the_job(
    patient: Api, store: Store
) -> None:
    # given a job of one attempt whose worker's lease lapsed: it failed for good
    job_id = await create(patient, maxAttempts=1)
    await claim(patient, WORKER, job_id)
    await lapse(store, job_id)
    await reap(patient)
    failed = await job_state(patient, job_id)
    assert (failed["status"], failed["error"]["code"]) == ("FAILED", "LEASE_EXPIRED")

    # when that worker completes it late, then tries to retry it
    late = await patient.error(COMPLETE, {"id": job_id}, as_=WORKER)
    retry = await patient.error(RETRY, {"id": job_id}, as_=WORKER)

    # then the late result is a lost lease, the retry is not the worker's to make
    assert late["extensions"]["code"] == "CONFLICT", late
    assert "expired" in late["message"]
    assert retry["extensions"]["code"] == "FORBIDDEN", retry
    assert await job_state(patient, job_id) == failed
    # and nobody can claim it past its maxAttempts
    assert (await patient.data(CLAIM, as_=WORKER))["claimJob"] is None
    assert (await job_state(patient, job_id))["attempts"] == 1


async def test_worker_cannot_retry_a_job_it_failed_itself(patient: Api) -> None:
    """Retrying is the job's writers' decision; a worker's claim gives no right to it."""
    job_id = await create(patient)
    await claim(patient, WORKER, job_id)
    await patient.data(FAIL, {"id": job_id, "retryable": True}, as_=WORKER)
    error = await patient.error(RETRY, {"id": job_id}, as_=WORKER)
    assert error["extensions"]["code"] == "FORBIDDEN"
    assert (await patient.data(RETRY, {"id": job_id}))["retryJob"]["status"] == "PENDING"


# -- item 11: a former worker's retry of a job it cannot read ---------------------------


@pytest.mark.parametrize("retryable", [True, False])
async def test_former_worker_retrying_a_job_it_cannot_read_gets_not_found(
    patient: Api, store: Store, retryable: bool
) -> None:
    # given a job worker-1 lost to the reaper, which worker-2 then failed
    job_id = await create(patient)
    await claim(patient, WORKER, job_id)
    await lapse(store, job_id)
    await reap(patient)
    await claim(patient, OTHER_WORKER, job_id)
    await patient.data(FAIL, {"id": job_id, "retryable": retryable}, as_=OTHER_WORKER)
    assert (await patient.execute(JOB, {"id": job_id}, as_=WORKER))["data"]["job"] is None
    before = await job_state(patient, job_id)

    # when worker-1 tries to retry it, and a missing id
    hidden = await patient.execute(RETRY, {"id": job_id}, as_=WORKER)
    missing_id = new_id()
    missing = await patient.execute(RETRY, {"id": missing_id}, as_=WORKER)

    # then both answers are the same NOT_FOUND, and nothing changed
    assert hidden["errors"][0]["extensions"]["code"] == "NOT_FOUND", hidden
    assert (hidden["errors"][0]["message"].replace(job_id, "<id>")
            == missing["errors"][0]["message"].replace(missing_id, "<id>"))
    assert await job_state(patient, job_id) == before


# -- item 12: a lapsed worker's log append ---------------------------------------------


async def test_lapsed_worker_appending_logs_is_told_of_its_lease_at_once(
    patient: Api, store: Store
) -> None:
    job_id = await create(patient)
    await claim(patient, WORKER, job_id)
    await lapse(store, job_id)
    commands = await count_commands(patient, LATE_WRITES["appendJobLogs"], {"id": job_id},
                                    WORKER)
    error = commands.pop("error")
    assert error["extensions"]["code"] == "CONFLICT"
    assert "expired" in error["message"]
    assert sum(commands.values()) <= 2, commands


async def test_appending_logs_to_a_job_revoked_from_its_writer_is_refused_at_once(
    patient: Api
) -> None:
    job_id = await create(patient, accessControl={"writeAccess": ["bob"]})
    await patient.data(SET_ACCESS, {"id": job_id, "access": {"adminAccess": ["alice"]}})
    commands = await count_commands(patient, LATE_WRITES["appendJobLogs"], {"id": job_id},
                                    Caller("bob"))
    assert commands.pop("error")["extensions"]["code"] == "NOT_FOUND"
    assert sum(commands.values()) <= 2, commands


async def count_commands(api: Api, query: str, variables: dict[str, Any], caller: Caller
                         ) -> dict[str, Any]:
    """The database commands one refused request sent (by name), and its error."""
    counter: CommandCounter = api.counter  # type: ignore[attr-defined]
    counter.clear()
    error = await api.error(query, variables, as_=caller)
    return {**counter.counts, "error": error}
