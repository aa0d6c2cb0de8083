"""Leases, the reaper, retries, idempotent creation, limits and database faults,
through the public API."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from datetime import datetime
from typing import Any

import pytest

from repository.access import Principal
from repository.database import EmbeddedServer, Store, make_client
from repository.models import utcnow
from tests.helpers.graphql import ALICE, BOB, WORKER, Api, Caller, make_settings, open_api
from tests.helpers.waiting import eventually

OTHER_WORKER = Caller("worker-2", ("worker",))

CREATE = """mutation($input: CreateJobInput!) {
  createJob(input: $input) { jobId attempts maxAttempts } }"""
CLAIM = """mutation { claimJob { jobId leaseExpiresAt attempts claimedBy } }"""
PROGRESS = """mutation($id: ID!, $p: Int!) {
  updateJobProgress(jobId: $id, progress: {step: "s", percent: $p}) { leaseExpiresAt } }"""
HEARTBEAT = """mutation($id: ID!) { heartbeatJob(jobId: $id) { leaseExpiresAt } }"""
LOG = """mutation($id: ID!) {
  appendJobLogs(jobId: $id, entries: [{level: INFO, message: "m"}]) { logSeq } }"""
FAIL = """mutation($id: ID!, $retryable: Boolean!) {
  failJob(jobId: $id, error: {code: "E", message: "boom"}, retryable: $retryable) { status } }"""
RETRY = """mutation($id: ID!) { retryJob(jobId: $id) { status } }"""
JOB = """query($id: ID!) { job(jobId: $id) {
  status attempts claimedBy version logSeq progress { percent }
  error { code message details } previousErrors { code message }
  logs { seq level message attempt } } }"""


def iso(value: str) -> datetime:
    return datetime.fromisoformat(value)


async def wait_for_status(api: Api, job_id: str, status: str, *, as_: Caller = ALICE
                          ) -> dict[str, Any]:
    """Poll the public API until the job reaches ``status`` (the reaper runs on its own)."""

    async def reached() -> dict[str, Any] | None:
        job = (await api.data(JOB, {"id": job_id}, as_=as_))["job"]
        return job if job["status"] == status else None

    return await eventually(reached)


async def ready(api: Api) -> bool:
    return (await api.client.get("/readyz")).status_code == 200


@pytest.fixture
async def leased(mongo_uri: str, database_name: str, store: Store) -> AsyncIterator[Api]:
    """Short leases and a busy reaper, so expiry happens within the test."""
    settings = make_settings(database=database_name, lease_seconds=0.4,
                             reaper_interval_seconds=0.05,
                             retry_base_seconds=0)  # a requeued job is due at once
    async with open_api(settings, mongo_uri) as api:
        yield api


@pytest.fixture
async def unreaped(mongo_uri: str, database_name: str, store: Store) -> AsyncIterator[Api]:
    """Short leases but a reaper that never comes round during the test."""
    settings = make_settings(database=database_name, lease_seconds=0.3,
                             reaper_interval_seconds=3600)
    async with open_api(settings, mongo_uri) as api:
        yield api


async def create(api: Api, **fields: Any) -> str:
    data = await api.data(CREATE, {"input": {"jobType": "pdf", **fields}})
    return data["createJob"]["jobId"]


async def test_claim_grants_a_lease_that_progress_extends(api: Api, settings: Any) -> None:
    job_id = await create(api)
    before = utcnow()
    claimed = (await api.data(CLAIM, as_=WORKER))["claimJob"]
    lease = iso(claimed["leaseExpiresAt"])
    assert claimed["jobId"] == job_id and claimed["attempts"] == 1
    assert abs((lease - before).total_seconds() - settings.lease_seconds) < 30
    renewed = iso((await api.data(HEARTBEAT, {"id": job_id}, as_=WORKER))
                  ["heartbeatJob"]["leaseExpiresAt"])
    assert renewed >= lease
    progressed = iso((await api.data(PROGRESS, {"id": job_id, "p": 5}, as_=WORKER))
                     ["updateJobProgress"]["leaseExpiresAt"])
    assert progressed >= renewed


async def test_expired_lease_returns_the_job_to_pending_with_history(leased: Api) -> None:
    # given a job claimed by a worker that then goes silent
    job_id = await create(leased)
    await leased.data(CLAIM, as_=WORKER)
    # when its lease expires, the reaper puts it back in the queue
    job = await wait_for_status(leased, job_id, "PENDING")
    # then the attempt and the reason are kept
    assert job["attempts"] == 1 and job["claimedBy"] is None
    assert [e["code"] for e in job["previousErrors"]] == ["LEASE_EXPIRED"]
    assert job["logs"][-1]["level"] == "WARNING" and job["logs"][-1]["attempt"] == 1
    # and another worker can claim it for a second attempt
    again = (await leased.data(CLAIM, as_=OTHER_WORKER))["claimJob"]
    assert (again["jobId"], again["attempts"]) == (job_id, 2)


async def test_late_write_from_a_worker_that_lost_its_lease_is_a_conflict(leased: Api) -> None:
    job_id = await create(leased)
    await leased.data(CLAIM, as_=WORKER)
    await wait_for_status(leased, job_id, "PENDING")
    await leased.data(CLAIM, as_=OTHER_WORKER)
    before = (await leased.data(JOB, {"id": job_id}))["job"]
    # when the first worker reports progress after all
    error = await leased.error(PROGRESS, {"id": job_id, "p": 99}, as_=WORKER)
    # then it is told of the conflict and nothing changes
    assert error["extensions"]["code"] == "CONFLICT"
    assert "lost" in error["message"]
    assert (await leased.data(JOB, {"id": job_id}))["job"] == before


async def test_write_after_the_lease_lapsed_is_a_conflict_before_any_reaping(
    unreaped: Api
) -> None:
    job_id = await create(unreaped)
    claimed = (await unreaped.data(CLAIM, as_=WORKER))["claimJob"]
    lease = iso(claimed["leaseExpiresAt"])
    await eventually(lambda: utcnow() > lease)
    before = (await unreaped.data(JOB, {"id": job_id}))["job"]
    error = await unreaped.error(HEARTBEAT, {"id": job_id}, as_=WORKER)
    assert error["extensions"]["code"] == "CONFLICT"
    assert "expired" in error["message"]
    assert (await unreaped.data(JOB, {"id": job_id}))["job"] == before


async def test_lease_expiry_fails_the_job_after_max_attempts(leased: Api) -> None:
    job_id = await create(leased, maxAttempts=2)
    for worker in (WORKER, OTHER_WORKER):
        claimed = (await leased.data(CLAIM, as_=worker))["claimJob"]
        assert claimed["jobId"] == job_id
        if worker is WORKER:
            await wait_for_status(leased, job_id, "PENDING")
    job = await wait_for_status(leased, job_id, "FAILED")
    assert job["error"]["code"] == "LEASE_EXPIRED"
    assert job["error"]["details"]["attempt"] == 2
    assert job["attempts"] == 2


async def test_concurrent_reapers_handle_each_expired_job_once(store: Store) -> None:
    # given 20 claimed jobs whose leases have lapsed
    alice, worker = Principal("alice"), Principal("w", frozenset({"worker"}))
    ids = [(await store.jobs.create(alice, job_type="r")).job_id for _ in range(20)]
    for _ in ids:
        await store.jobs.claim(worker)
    await store.jobs.collection.update_many({}, {"$set": {"lease_expires_at": utcnow()}})
    # when five reapers sweep at the same time
    results = await asyncio.gather(*(store.jobs.reap_expired_leases() for _ in range(5)))
    # then every job was handled exactly once
    handled = [job.job_id for batch in results for job in batch]
    assert sorted(handled) == sorted(ids)
    for job_id in ids:
        doc = await store.jobs.collection.find_one({"_id": job_id})
        assert (doc["status"], doc["log_seq"], len(doc["previous_errors"])) == ("PENDING", 1, 1)


async def test_retry_keeps_the_history_of_earlier_attempts(api: Api) -> None:
    job_id = await create(api, maxAttempts=1)  # so the worker's failure is final
    await api.data(CLAIM, as_=WORKER)
    await api.data(LOG, {"id": job_id}, as_=WORKER)
    await api.data(FAIL, {"id": job_id, "retryable": True}, as_=WORKER)
    await api.data(RETRY, {"id": job_id})
    await api.data(CLAIM, as_=OTHER_WORKER)
    await api.data(LOG, {"id": job_id}, as_=OTHER_WORKER)
    job = (await api.data(JOB, {"id": job_id}))["job"]
    assert [entry["attempt"] for entry in job["logs"]] == [1, 2]
    assert [error["message"] for error in job["previousErrors"]] == ["boom"]
    assert job["error"] is None and job["status"] == "PROCESSING"


async def test_job_failed_as_not_retryable_cannot_be_retried(api: Api) -> None:
    job_id = await create(api)
    await api.data(CLAIM, as_=WORKER)
    await api.data(FAIL, {"id": job_id, "retryable": False}, as_=WORKER)
    before = (await api.data(JOB, {"id": job_id}))["job"]
    error = await api.error(RETRY, {"id": job_id})
    assert error["extensions"]["code"] == "INVALID_TRANSITION"
    assert "not retryable" in error["message"]
    assert (await api.data(JOB, {"id": job_id}))["job"] == before


async def test_old_worker_writing_after_a_retry_is_a_conflict(api: Api) -> None:
    job_id = await create(api, maxAttempts=1)  # so the worker's failure is final
    await api.data(CLAIM, as_=WORKER)
    await api.data(FAIL, {"id": job_id, "retryable": True}, as_=WORKER)
    await api.data(RETRY, {"id": job_id})
    error = await api.error(LOG, {"id": job_id}, as_=WORKER)
    assert error["extensions"]["code"] == "CONFLICT"


# -- idempotent creation ------------------------------------------------------------

CREATE_BATCH = """mutation($input: CreateBatchInput!) { createBatch(input: $input) {
  batchId counts { total } } }"""
CREATE_DOC = """mutation($input: CreateDocumentationJobInput!) {
  createDocumentationJob(input: $input) { jobId } }"""


async def test_create_job_with_the_same_key_returns_the_first_job(
    api: Api, store: Store
) -> None:
    job_input = {"jobType": "pdf", "parameters": {"n": 1}, "idempotencyKey": "k-1"}
    results = await asyncio.gather(*(api.data(CREATE, {"input": job_input})
                                     for _ in range(10)))
    ids = {result["createJob"]["jobId"] for result in results}
    assert len(ids) == 1
    assert await store.jobs.collection.count_documents({}) == 1
    # another user's identical key is theirs alone
    other = await api.data(CREATE, {"input": job_input}, as_=BOB)
    assert other["createJob"]["jobId"] not in ids


async def test_reusing_a_key_with_other_input_is_a_conflict(api: Api, store: Store) -> None:
    await api.data(CREATE, {"input": {"jobType": "pdf", "idempotencyKey": "k"}})
    error = await api.error(CREATE, {"input": {"jobType": "other", "idempotencyKey": "k"}})
    assert error["extensions"]["code"] == "CONFLICT"
    assert await store.jobs.collection.count_documents({}) == 1


async def test_create_batch_with_the_same_key_creates_its_jobs_once(
    api: Api, store: Store
) -> None:
    batch_input = {"batchName": "b", "idempotencyKey": "batch-1",
                   "jobs": [{"jobType": "a"}, {"jobType": "b"}]}
    results = await asyncio.gather(*(api.data(CREATE_BATCH, {"input": batch_input})
                                     for _ in range(8)))
    assert len({result["createBatch"]["batchId"] for result in results}) == 1
    assert all(result["createBatch"]["counts"]["total"] == 2 for result in results)
    assert await store.batches.collection.count_documents({}) == 1
    assert await store.jobs.collection.count_documents({}) == 2


async def test_create_documentation_job_with_the_same_key_returns_the_first(
    api: Api, store: Store
) -> None:
    doc_input = {"repositoryPath": "/r", "repositoryName": "r", "outputDirectory": "/o",
                 "idempotencyKey": "doc-1"}
    results = await asyncio.gather(*(api.data(CREATE_DOC, {"input": doc_input})
                                     for _ in range(6)))
    assert len({result["createDocumentationJob"]["jobId"] for result in results}) == 1
    assert await store.documentation_jobs.collection.count_documents({}) == 1


# -- limits -------------------------------------------------------------------------


@pytest.fixture
async def strict(mongo_uri: str, database_name: str, store: Store) -> AsyncIterator[Api]:
    settings = make_settings(database=database_name, max_query_depth=4, max_aliases=3,
                             max_tokens=200, introspection=False, max_log_message_length=20,
                             max_jobs_per_batch=2)
    async with open_api(settings, mongo_uri) as api:
        yield api


@pytest.mark.parametrize("query", [
    "{ jobs { edges { node { batch { jobs { edges { node { jobId } } } } } } } }",
    "{ a: viewer { userId } b: viewer { userId } c: viewer { userId } d: viewer { userId } }",
    "{ " + " ".join(f"f{n}: viewer {{ userId }}" for n in range(40)) + " }",
], ids=["depth", "aliases", "tokens"])
async def test_oversized_documents_are_refused_with_a_code(strict: Api, query: str) -> None:
    body = await strict.execute(query)
    assert body["errors"][0]["extensions"]["code"] == "QUERY_TOO_COMPLEX"
    assert "data" not in body or body["data"] is None


async def test_introspection_can_be_switched_off(strict: Api) -> None:
    body = await strict.execute("{ __schema { types { name } } }")
    assert body["errors"][0]["extensions"]["code"] == "GRAPHQL_VALIDATION_FAILED"


async def test_log_message_length_and_batch_size_are_limited(strict: Api, store: Store) -> None:
    job_id = await create(strict)
    error = await strict.error(
        """mutation($id: ID!, $m: String!) {
             appendJobLogs(jobId: $id, entries: [{level: INFO, message: $m}]) { logSeq } }""",
        {"id": job_id, "m": "x" * 21})
    assert (error["extensions"]["code"], error["extensions"]["field"]) == (
        "VALIDATION_ERROR", "message")
    error = await strict.error(CREATE_BATCH, {"input": {
        "batchName": "b", "jobs": [{"jobType": "a"}] * 3}})
    assert (error["extensions"]["code"], error["extensions"]["field"]) == (
        "VALIDATION_ERROR", "jobs")
    assert await store.batches.collection.count_documents({}) == 0
    assert await store.jobs.collection.count_documents({}) == 1


# -- database faults -----------------------------------------------------------------


async def test_database_outage_fails_fast_and_recovers_without_restart(tmp_path: Any) -> None:
    server = EmbeddedServer(data_dir=tmp_path / "outage")
    await asyncio.to_thread(server.start)
    try:
        settings = make_settings(database="outage", mongodb_timeout_ms=800)
        async with open_api(settings, server.uri) as api:
            # given a job acknowledged before the outage
            job_id = await create(api)
            # when the database stops
            await asyncio.to_thread(server.stop)
            started = time.monotonic()
            body = await api.execute(JOB, {"id": job_id})
            elapsed = time.monotonic() - started
            # then requests fail fast with a code, and readiness says so
            assert body["errors"][0]["extensions"]["code"] == "DATABASE_UNAVAILABLE"
            assert elapsed < 10
            assert (await api.client.get("/readyz")).status_code == 503
            # when it is back, the same process serves again and nothing was lost
            await asyncio.to_thread(server.start)
            await eventually(lambda: ready(api))
            job = (await api.data(JOB, {"id": job_id}))["job"]
            assert job["status"] == "PENDING"
    finally:
        await asyncio.to_thread(server.stop)


async def test_database_outage_refuses_writes_and_stores_nothing(tmp_path: Any) -> None:
    server = EmbeddedServer(data_dir=tmp_path / "outage-writes")
    await asyncio.to_thread(server.start)
    try:
        settings = make_settings(database="outage", mongodb_timeout_ms=800)
        async with open_api(settings, server.uri) as api:
            await asyncio.to_thread(server.stop)
            error = await api.error(CREATE, {"input": {"jobType": "lost?"}})
            assert error["extensions"]["code"] == "DATABASE_UNAVAILABLE"
            await asyncio.to_thread(server.start)
            client = make_client(server.uri)
            try:
                assert await client["outage"]["jobs"].count_documents({}) == 0
            finally:
                await client.close()
    finally:
        await asyncio.to_thread(server.stop)
