"""Jobs over HTTP: job, jobs, and every job mutation, each re-read after it ran."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import bson
import pytest

from graph.config.settings import Settings
from repository.database import Store
from tests.helpers.graphql import ALICE, BOB, WORKER, Api, Caller, make_settings, open_api

from .documents import (
    APPEND_JOB_LOGS,
    CLAIM_JOB,
    COMPLETE_JOB,
    CREATE_BATCH,
    CREATE_JOB,
    DELETE_JOB,
    FAIL_JOB,
    HEARTBEAT_JOB,
    JOB,
    JOB_LOGS,
    JOB_WITH_BATCH,
    JOBS,
    RETRY_JOB,
    SET_JOB_ACCESS,
    UPDATE_JOB_PROGRESS,
)

BASE = datetime(2025, 3, 1, 12, 0, tzinfo=UTC)
MISSING = "no-such-job"


def at(milliseconds: int) -> datetime:
    return BASE + timedelta(milliseconds=milliseconds)


def instant(value: str | None) -> datetime | None:
    return None if value is None else datetime.fromisoformat(value)


async def create_job(api: Api, job_type: str = "pdf", *, as_: Caller = ALICE,
                     **fields: Any) -> dict[str, Any]:
    data = await api.data(CREATE_JOB, {"input": {"jobType": job_type, **fields}}, as_=as_)
    return data["createJob"]


async def read_job(api: Api, job_id: str, *, as_: Caller = ALICE) -> dict[str, Any]:
    return (await api.data(JOB, {"jobId": job_id}, as_=as_))["job"]


async def backdate(store: Store, created: dict[str, datetime]) -> None:
    """Give jobs fixed creation instants, so order and ranges are deterministic."""
    for job_id, created_at in created.items():
        await store.jobs.collection.update_one({"_id": job_id},
                                               {"$set": {"created_at": created_at}})


async def claimed_job(api: Api, store: Store, job_type: str = "pdf",
                      **fields: Any) -> dict[str, Any]:
    """A job the worker has just claimed (PROCESSING)."""
    job = await create_job(api, job_type, **fields)
    claimed = (await api.data(CLAIM_JOB, {"jobTypes": [job_type]}, as_=WORKER))["claimJob"]
    assert claimed["jobId"] == job["jobId"]
    return claimed


async def stored_job(store: Store, job_id: str) -> dict[str, Any] | None:
    return await store.jobs.collection.find_one({"_id": job_id})


async def page_ids(api: Api, variables: dict[str, Any], *, as_: Caller = ALICE
                   ) -> tuple[list[str], dict[str, Any], int]:
    connection = (await api.data(JOBS, variables, as_=as_))["jobs"]
    ids = [edge["node"]["jobId"] for edge in connection["edges"]]
    return ids, connection["pageInfo"], connection["totalCount"]


# -- createJob and job -------------------------------------------------------------------------


async def test_create_job_returns_the_pending_job_and_stores_it(api: Api, store: Store) -> None:
    # when
    job = await create_job(
        api, "transformer", parameters={"source": "a.pdf", "pages": [1, 2], "opts": {"x": None}},
        maxAttempts=5, accessControl={"readAccess": ["bob"]})

    # then: the mutation answers with the new job
    assert job["__typename"] == "SecretaryJob"
    assert job["jobType"] == "transformer"
    assert job["status"] == "PENDING"
    assert job["parameters"] == {"source": "a.pdf", "pages": [1, 2], "opts": {"x": None}}
    assert job["owner"] == "alice"
    assert job["accessControl"] == {"visibility": "PRIVATE", "readAccess": ["bob"],
                                    "writeAccess": [], "adminAccess": ["alice"]}
    assert (job["attempts"], job["maxAttempts"], job["retryable"], job["logSeq"]) == (0, 5, True, 0)
    assert job["progress"] is None and job["results"] is None and job["error"] is None
    assert job["logs"] == [] and job["previousErrors"] == [] and job["batchId"] is None
    assert job["claimedBy"] is None and job["leaseExpiresAt"] is None
    assert instant(job["createdAt"]) == instant(job["updatedAt"])
    # and reading it back gives the same job
    assert await read_job(api, job["jobId"]) == job
    doc = await stored_job(store, job["jobId"])
    assert doc is not None and doc["status"] == "PENDING" and doc["max_attempts"] == 5


async def test_create_job_without_parameters_uses_the_defaults(
        api: Api, settings: Settings) -> None:
    job = await create_job(api)

    assert job["parameters"] == {}
    assert job["maxAttempts"] == settings.default_max_attempts
    assert job["accessControl"]["visibility"] == "PRIVATE"


async def test_job_returns_not_found_for_a_missing_id(api: Api) -> None:
    body = await api.execute(JOB, {"jobId": MISSING})

    assert body["data"] == {"job": None}
    [error] = body["errors"]
    assert error["extensions"]["code"] == "NOT_FOUND"
    assert MISSING in error["message"]
    assert error["path"] == ["job"]


async def test_job_resolves_its_batch(api: Api) -> None:
    # given a batch of two jobs
    created = (await api.data(CREATE_BATCH, {"input": {
        "batchName": "scans", "jobs": [{"jobType": "pdf"}, {"jobType": "pdf"}]}}))["createBatch"]
    job_id = created["jobs"]["edges"][0]["node"]["jobId"]

    # when
    job = (await api.data(JOB_WITH_BATCH, {"jobId": job_id}))["job"]

    # then
    assert job["batch"] == {"batchId": created["batchId"], "batchName": "scans",
                            "status": "PENDING", "counts": {"total": 2}}


async def test_job_batch_is_null_without_a_batch(api: Api) -> None:
    job = await create_job(api)

    assert (await api.data(JOB_WITH_BATCH, {"jobId": job["jobId"]}))["job"]["batch"] is None


# -- jobs: filters -----------------------------------------------------------------------------


async def seed_jobs(api: Api, store: Store) -> dict[str, str]:
    """Five jobs at fixed instants: pdf-1 (oldest) ... session-2, plus two in a batch.

    pdf-1 is claimed (PROCESSING), session-1 failed, the rest are PENDING.
    """
    names = ["pdf-1", "pdf-2", "session-1", "pdf-3", "session-2"]
    ids = {name: (await create_job(api, name.split("-")[0]))["jobId"] for name in names}
    batch = (await api.data(CREATE_BATCH, {"input": {
        "batchName": "b", "jobs": [{"jobType": "pdf"}, {"jobType": "ocr"}]}}))["createBatch"]
    for edge in batch["jobs"]["edges"]:
        ids[f"batch-{edge['node']['jobType']}"] = edge["node"]["jobId"]
    ids["batch"] = batch["batchId"]
    order = [*names, "batch-pdf", "batch-ocr"]
    await backdate(store, {ids[name]: at(10 * i) for i, name in enumerate(order)})
    await api.data(CLAIM_JOB, {"jobTypes": ["pdf"]}, as_=WORKER)  # the oldest pdf: pdf-1
    await api.data(FAIL_JOB, {"jobId": ids["session-1"],
                              "error": {"code": "E", "message": "bad input"}})
    return ids


JOB_FILTERS = [
    ({"status": "PROCESSING"}, ["pdf-1"]),
    ({"status": "FAILED"}, ["session-1"]),
    ({"status": "PENDING"}, ["batch-ocr", "batch-pdf", "session-2", "pdf-3", "pdf-2"]),
    ({"jobType": "session"}, ["session-2", "session-1"]),
    ({"jobType": "pdf", "status": "PENDING"}, ["batch-pdf", "pdf-3", "pdf-2"]),
    ({"batchId": "<batch>"}, ["batch-ocr", "batch-pdf"]),
    ({"createdAfter": at(20).isoformat()}, ["batch-ocr", "batch-pdf", "session-2", "pdf-3"]),
    ({"createdBefore": at(20).isoformat()}, ["pdf-2", "pdf-1"]),
    ({"createdAfter": at(0).isoformat(), "createdBefore": at(40).isoformat()},
     ["pdf-3", "session-1", "pdf-2"]),
    ({"jobType": "none-of-these"}, []),
]


async def test_jobs_filters_by_each_condition(api: Api, store: Store) -> None:
    # given
    ids = await seed_jobs(api, store)

    for job_filter, expected in JOB_FILTERS:
        if job_filter.get("batchId") == "<batch>":
            job_filter = {"batchId": ids["batch"]}

        # when
        found, page_info, total = await page_ids(api, {"filter": job_filter})

        # then: newest first, and the count agrees with the page
        assert found == [ids[name] for name in expected], job_filter
        assert total == len(expected), job_filter
        assert page_info["hasNextPage"] is False, job_filter


# -- jobs: paging ------------------------------------------------------------------------------


async def five_jobs(api: Api, store: Store) -> list[str]:
    """Five jobs, returned newest first (the list order)."""
    ids = [(await create_job(api))["jobId"] for _ in range(5)]
    await backdate(store, {job_id: at(i) for i, job_id in enumerate(ids)})
    return list(reversed(ids))


async def test_jobs_pages_forward_with_first_and_after(api: Api, store: Store) -> None:
    newest_first = await five_jobs(api, store)

    # when: three forward pages of two
    first, info1, total1 = await page_ids(api, {"first": 2})
    second, info2, total2 = await page_ids(api, {"first": 2, "after": info1["endCursor"]})
    third, info3, total3 = await page_ids(api, {"first": 2, "after": info2["endCursor"]})

    # then
    assert [first, second, third] == [newest_first[:2], newest_first[2:4], newest_first[4:]]
    assert (info1["hasNextPage"], info1["hasPreviousPage"]) == (True, False)
    assert (info2["hasNextPage"], info2["hasPreviousPage"]) == (True, True)
    assert (info3["hasNextPage"], info3["hasPreviousPage"]) == (False, True)
    assert info3["startCursor"] == info3["endCursor"]
    assert total1 == total2 == total3 == 5


async def test_jobs_pages_backward_with_last_and_before(api: Api, store: Store) -> None:
    newest_first = await five_jobs(api, store)

    # when: from the end of the list towards its start
    last, info1, _ = await page_ids(api, {"last": 2})
    middle, info2, _ = await page_ids(api, {"last": 2, "before": info1["startCursor"]})
    start, info3, total = await page_ids(api, {"last": 2, "before": info2["startCursor"]})

    # then: each page keeps the list order (newest first)
    assert [start, middle, last] == [newest_first[:1], newest_first[1:3], newest_first[3:]]
    assert (info1["hasPreviousPage"], info1["hasNextPage"]) == (True, False)
    assert (info2["hasPreviousPage"], info2["hasNextPage"]) == (True, True)
    assert (info3["hasPreviousPage"], info3["hasNextPage"]) == (False, True)
    assert total == 5


async def test_jobs_first_between_after_and_before(api: Api, store: Store) -> None:
    newest_first = await five_jobs(api, store)
    _, info, _ = await page_ids(api, {"first": 1})
    everything = (await api.data(JOBS, {"first": 5}))["jobs"]["edges"]

    found, _, _ = await page_ids(api, {"first": 10, "after": info["endCursor"],
                                       "before": everything[4]["cursor"]})

    assert found == newest_first[1:4]


async def test_jobs_order_is_stable_when_created_at_ties(api: Api, store: Store) -> None:
    # given: six jobs created in the same millisecond
    ids = [(await create_job(api))["jobId"] for _ in range(6)]
    await backdate(store, dict.fromkeys(ids, at(0)))
    expected = sorted(ids, reverse=True)  # ties are broken by id, newest-first direction

    # when: paged by two, then read whole twice
    paged: list[str] = []
    after = None
    for _ in range(3):
        found, info, _ = await page_ids(api, {"first": 2, "after": after})
        paged += found
        after = info["endCursor"]
    whole, _, _ = await page_ids(api, {"first": 6})
    again, _, _ = await page_ids(api, {"first": 6})

    # then: no job is skipped or repeated, and the order never changes
    assert paged == whole == again == expected


async def test_jobs_total_count_counts_the_whole_filtered_list(api: Api) -> None:
    for _ in range(3):
        await create_job(api, "pdf")
    await create_job(api, "ocr")

    connection = (await api.data(JOBS, {"filter": {"jobType": "pdf"}, "first": 1}))["jobs"]

    assert len(connection["edges"]) == 1
    assert connection["totalCount"] == 3


async def test_jobs_shows_a_caller_only_what_they_may_read(api: Api) -> None:
    mine = await create_job(api)
    await create_job(api, as_=BOB)

    found, _, total = await page_ids(api, {})

    assert (found, total) == ([mine["jobId"]], 1)


# -- worker lifecycle ----------------------------------------------------------------------


async def test_claim_job_takes_the_oldest_pending_job(
        api: Api, store: Store, settings: Settings) -> None:
    # given: three jobs, the middle one created first
    a, b, c = [(await create_job(api, kind))["jobId"] for kind in ("pdf", "ocr", "pdf")]
    await backdate(store, {a: at(20), b: at(10), c: at(30)})

    # when
    before = datetime.now(UTC)
    claimed = (await api.data(CLAIM_JOB, {}, as_=WORKER))["claimJob"]

    # then
    assert claimed["jobId"] == b
    assert claimed["status"] == "PROCESSING"
    assert claimed["claimedBy"] == "worker-1"
    assert claimed["attempts"] == 1
    started = instant(claimed["processingStartedAt"])
    assert started is not None and started >= before - timedelta(seconds=1)
    assert instant(claimed["leaseExpiresAt"]) == started + timedelta(seconds=settings.lease_seconds)
    assert await read_job(api, b) == claimed
    assert (await read_job(api, a))["status"] == "PENDING"


async def test_claim_job_with_job_types_takes_the_oldest_of_those_types(
        api: Api, store: Store) -> None:
    a, b, c = [(await create_job(api, kind))["jobId"] for kind in ("pdf", "ocr", "session")]
    await backdate(store, {a: at(10), b: at(20), c: at(30)})

    claimed = (await api.data(CLAIM_JOB, {"jobTypes": ["session", "ocr"]}, as_=WORKER))

    assert claimed["claimJob"]["jobId"] == b
    assert (await stored_job(store, b))["status"] == "PROCESSING"  # type: ignore[index]
    assert (await stored_job(store, a))["status"] == "PENDING"  # type: ignore[index]


async def test_claim_job_returns_null_when_no_job_is_pending(api: Api, store: Store) -> None:
    # given: only a pdf job, and it is taken
    await claimed_job(api, store, "pdf")

    # when / then: nothing of any type, nor of another type
    assert (await api.data(CLAIM_JOB, {}, as_=WORKER)) == {"claimJob": None}
    await create_job(api, "pdf")
    assert (await api.data(CLAIM_JOB, {"jobTypes": ["ocr"]}, as_=WORKER)) == {"claimJob": None}
    assert await store.jobs.collection.count_documents({"status": "PENDING"}) == 1


async def test_claim_job_needs_the_worker_role(api: Api, store: Store) -> None:
    job = await create_job(api)

    error = await api.error(CLAIM_JOB, {})

    assert error["extensions"]["code"] == "FORBIDDEN"
    assert (await stored_job(store, job["jobId"]))["status"] == "PENDING"  # type: ignore[index]


async def test_update_job_progress_records_progress_and_renews_the_lease(
        api: Api, store: Store) -> None:
    # given: a claimed job whose lease ends sooner than a renewal would set it
    job = await claimed_job(api, store)
    old_lease = datetime.now(UTC) + timedelta(seconds=60)
    await store.jobs.collection.update_one({"_id": job["jobId"]},
                                           {"$set": {"lease_expires_at": old_lease}})

    # when
    updated = (await api.data(UPDATE_JOB_PROGRESS, {
        "jobId": job["jobId"], "progress": {"step": "ocr", "percent": 40, "message": "page 4"}},
        as_=WORKER))["updateJobProgress"]

    # then
    assert updated["progress"] == {"step": "ocr", "percent": 40, "message": "page 4"}
    assert updated["status"] == "PROCESSING"
    assert instant(updated["leaseExpiresAt"]) > old_lease
    assert await read_job(api, job["jobId"]) == updated


async def test_update_job_progress_accepts_the_bounds(api: Api, store: Store) -> None:
    job = await claimed_job(api, store)

    for percent in (0, 100):
        updated = (await api.data(UPDATE_JOB_PROGRESS, {
            "jobId": job["jobId"], "progress": {"step": "s", "percent": percent}},
            as_=WORKER))["updateJobProgress"]
        assert updated["progress"] == {"step": "s", "percent": percent, "message": None}


async def test_heartbeat_job_renews_the_lease_only(api: Api, store: Store) -> None:
    job = await claimed_job(api, store)
    old_lease = datetime.now(UTC) + timedelta(seconds=60)
    await store.jobs.collection.update_one({"_id": job["jobId"]},
                                           {"$set": {"lease_expires_at": old_lease}})

    beat = (await api.data(HEARTBEAT_JOB, {"jobId": job["jobId"]}, as_=WORKER))["heartbeatJob"]

    assert instant(beat["leaseExpiresAt"]) > old_lease
    assert {k: v for k, v in beat.items() if k not in ("leaseExpiresAt", "updatedAt")} == {
        k: v for k, v in job.items() if k not in ("leaseExpiresAt", "updatedAt")}
    assert await read_job(api, job["jobId"]) == beat


async def test_append_job_logs_numbers_entries_and_keeps_the_attempt(
        api: Api, store: Store) -> None:
    job = await claimed_job(api, store)

    # when: two calls, three entries
    await api.data(APPEND_JOB_LOGS, {"jobId": job["jobId"], "entries": [
        {"level": "INFO", "message": "started"}, {"level": "DEBUG", "message": "page 1"}]},
        as_=WORKER)
    updated = (await api.data(APPEND_JOB_LOGS, {"jobId": job["jobId"], "entries": [
        {"level": "CRITICAL", "message": "disk full"}]}, as_=WORKER))["appendJobLogs"]

    # then
    assert [(e["level"], e["message"], e["seq"], e["attempt"]) for e in updated["logs"]] == [
        ("INFO", "started", 1, 1), ("DEBUG", "page 1", 2, 1), ("CRITICAL", "disk full", 3, 1)]
    assert updated["logSeq"] == 3
    assert await read_job(api, job["jobId"]) == updated
    newest = (await api.data(JOB_LOGS, {"jobId": job["jobId"], "last": 2}))["job"]
    assert [e["seq"] for e in newest["logs"]] == [2, 3]
    assert (await api.data(JOB_LOGS, {"jobId": job["jobId"], "last": 0}))["job"]["logs"] == []


async def test_complete_job_stores_the_results(api: Api, store: Store) -> None:
    job = await claimed_job(api, store)

    done = (await api.data(COMPLETE_JOB, {"jobId": job["jobId"],
                                          "results": {"pages": 12, "text": ["a", "b"]}},
                           as_=WORKER))["completeJob"]

    assert done["status"] == "COMPLETED"
    assert done["results"] == {"pages": 12, "text": ["a", "b"]}
    assert done["completedAt"] is not None and done["leaseExpiresAt"] is None
    assert await read_job(api, job["jobId"]) == done
    assert (await stored_job(store, job["jobId"]))["results"] == {  # type: ignore[index]
        "pages": 12, "text": ["a", "b"]}


@pytest.mark.parametrize("retryable", [True, False])
async def test_fail_job_records_the_error_and_whether_it_may_be_retried(
        api: Api, store: Store, retryable: bool) -> None:
    # one attempt, so the worker's failure is final whether retryable or not
    job = await claimed_job(api, store, maxAttempts=1)

    failed = (await api.data(FAIL_JOB, {
        "jobId": job["jobId"], "retryable": retryable,
        "error": {"code": "OCR_FAILED", "message": "unreadable", "details": {"page": 3}}},
        as_=WORKER))["failJob"]

    assert failed["status"] == "FAILED"
    assert failed["error"] == {"code": "OCR_FAILED", "message": "unreadable",
                               "details": {"page": 3}}
    assert failed["retryable"] is retryable
    assert failed["completedAt"] is not None and failed["leaseExpiresAt"] is None
    assert await read_job(api, job["jobId"]) == failed


async def test_fail_job_fails_a_pending_job(api: Api) -> None:
    job = await create_job(api)

    failed = (await api.data(FAIL_JOB, {"jobId": job["jobId"],
                                        "error": {"code": "CANCELLED", "message": "not needed"}}
                             ))["failJob"]

    assert failed["status"] == "FAILED" and failed["error"]["details"] is None
    assert (await read_job(api, job["jobId"]))["status"] == "FAILED"


async def test_retry_job_makes_it_pending_and_keeps_every_previous_error(
        api: Api, store: Store) -> None:
    # given: a job that failed twice (one attempt each time, so a writer retries it)
    job = await claimed_job(api, store, maxAttempts=1)
    await api.data(FAIL_JOB, {"jobId": job["jobId"], "error": {"code": "E1", "message": "one"}},
                   as_=WORKER)
    await api.data(RETRY_JOB, {"jobId": job["jobId"]})
    await api.data(CLAIM_JOB, {}, as_=WORKER)
    await api.data(FAIL_JOB, {"jobId": job["jobId"],
                              "error": {"code": "E2", "message": "two", "details": {"n": 2}}},
                   as_=WORKER)

    # when
    retried = (await api.data(RETRY_JOB, {"jobId": job["jobId"]}))["retryJob"]

    # then
    assert retried["status"] == "PENDING"
    assert retried["error"] is None and retried["claimedBy"] is None
    assert retried["retryable"] is True and retried["attempts"] == 2
    assert retried["previousErrors"] == [
        {"code": "E1", "message": "one", "details": None},
        {"code": "E2", "message": "two", "details": {"n": 2}},
    ]
    assert await read_job(api, job["jobId"]) == retried


async def test_retry_job_refuses_a_job_failed_as_not_retryable(api: Api, store: Store) -> None:
    job = await claimed_job(api, store)
    failed = (await api.data(FAIL_JOB, {"jobId": job["jobId"], "retryable": False,
                                        "error": {"code": "FINAL", "message": "no"}},
                             as_=WORKER))["failJob"]

    error = await api.error(RETRY_JOB, {"jobId": job["jobId"]})

    assert error["extensions"]["code"] == "INVALID_TRANSITION"
    assert "not retryable" in error["message"]
    assert await read_job(api, job["jobId"]) == failed


async def test_delete_job_returns_the_deleted_job(api: Api, store: Store) -> None:
    job = await create_job(api, parameters={"k": "v"})

    deleted = (await api.data(DELETE_JOB, {"jobId": job["jobId"]}))["deleteJob"]

    assert deleted == job
    error = await api.error(JOB, {"jobId": job["jobId"]})
    assert error["extensions"]["code"] == "NOT_FOUND"
    assert await stored_job(store, job["jobId"]) is None


async def test_set_job_access_replaces_the_access_control(api: Api) -> None:
    job = await create_job(api)
    assert (await api.error(JOB, {"jobId": job["jobId"]}, as_=BOB))["extensions"]["code"] == (
        "NOT_FOUND")

    # when
    updated = (await api.data(SET_JOB_ACCESS, {"jobId": job["jobId"], "accessControl": {
        "visibility": "PRIVATE", "readAccess": ["bob"], "adminAccess": ["alice"]}}
    ))["setJobAccess"]

    # then
    assert updated["accessControl"] == {"visibility": "PRIVATE", "readAccess": ["bob"],
                                        "writeAccess": [], "adminAccess": ["alice"]}
    assert await read_job(api, job["jobId"]) == updated
    assert (await read_job(api, job["jobId"], as_=BOB))["jobId"] == job["jobId"]


# -- refusals ------------------------------------------------------------------------------

MUTATIONS_ON_A_JOB = [
    (UPDATE_JOB_PROGRESS, {"progress": {"step": "s", "percent": 1}}),
    (HEARTBEAT_JOB, {}),
    (APPEND_JOB_LOGS, {"entries": [{"level": "INFO", "message": "m"}]}),
    (COMPLETE_JOB, {"results": {"a": 1}}),
    (FAIL_JOB, {"error": {"code": "E", "message": "m"}}),
    (RETRY_JOB, {}),
    (DELETE_JOB, {}),
    (SET_JOB_ACCESS, {"accessControl": {"visibility": "PUBLIC"}}),
]


@pytest.mark.parametrize(("document", "variables"), MUTATIONS_ON_A_JOB)
async def test_job_mutations_return_not_found_for_a_missing_id(
        api: Api, store: Store, document: str, variables: dict[str, Any]) -> None:
    error = await api.error(document, {"jobId": MISSING, **variables}, as_=WORKER)

    assert error["extensions"]["code"] == "NOT_FOUND"
    assert MISSING in error["message"]
    assert await store.jobs.collection.count_documents({}) == 0


@pytest.mark.parametrize(("document", "variables"), [
    (COMPLETE_JOB, {"results": {"a": 1}}),
    (UPDATE_JOB_PROGRESS, {"progress": {"step": "s", "percent": 1}}),
    (HEARTBEAT_JOB, {}),
    (RETRY_JOB, {}),
])
async def test_job_mutations_refuse_a_pending_job_as_invalid_transition(
        api: Api, store: Store, document: str, variables: dict[str, Any]) -> None:
    job = await create_job(api)

    error = await api.error(document, {"jobId": job["jobId"], **variables})

    assert error["extensions"]["code"] == "INVALID_TRANSITION"
    assert "PENDING" in error["message"]
    assert await read_job(api, job["jobId"]) == job


async def test_complete_job_refuses_a_completed_job(api: Api, store: Store) -> None:
    job = await claimed_job(api, store)
    done = (await api.data(COMPLETE_JOB, {"jobId": job["jobId"], "results": {"n": 1}},
                           as_=WORKER))["completeJob"]

    error = await api.error(COMPLETE_JOB, {"jobId": job["jobId"], "results": {"n": 2}},
                            as_=WORKER)

    assert error["extensions"]["code"] == "INVALID_TRANSITION"
    assert await read_job(api, job["jobId"]) == done


@pytest.mark.parametrize("percent", [-1, 101, 1000])
async def test_update_job_progress_refuses_percent_outside_0_to_100(
        api: Api, store: Store, percent: int) -> None:
    # given: a job with some progress
    job = await claimed_job(api, store)
    before = (await api.data(UPDATE_JOB_PROGRESS, {
        "jobId": job["jobId"], "progress": {"step": "s", "percent": 50}}, as_=WORKER)
    )["updateJobProgress"]

    # when
    error = await api.error(UPDATE_JOB_PROGRESS, {
        "jobId": job["jobId"], "progress": {"step": "s", "percent": percent}}, as_=WORKER)

    # then
    assert error["extensions"] == {"code": "VALIDATION_ERROR", "field": "percent"}
    assert "percent" in error["message"] and str(percent) in error["message"]
    assert await read_job(api, job["jobId"]) == before


async def test_append_job_logs_refuses_an_unknown_level(api: Api, store: Store) -> None:
    job = await claimed_job(api, store)

    response = await api.post(APPEND_JOB_LOGS, {"jobId": job["jobId"], "entries": [
        {"level": "INFO", "message": "fine"}, {"level": "TRACE", "message": "nope"}]},
        as_=WORKER)

    body = response.json()
    assert "data" not in body
    [error] = body["errors"]
    assert error["extensions"]["code"] == "GRAPHQL_VALIDATION_FAILED"
    assert "TRACE" in error["message"] and "level" in error["message"]
    assert "LogLevel" in error["message"]
    assert (await read_job(api, job["jobId"]))["logs"] == []


async def test_append_job_logs_refuses_an_empty_list(api: Api, store: Store) -> None:
    job = await claimed_job(api, store)

    error = await api.error(APPEND_JOB_LOGS, {"jobId": job["jobId"], "entries": []},
                            as_=WORKER)

    assert error["extensions"] == {"code": "VALIDATION_ERROR", "field": "entries"}
    assert (await read_job(api, job["jobId"]))["logSeq"] == 0


BAD_KEYS = [
    ({"$where": "1"}, "parameters", "$where"),
    ({"a.b": 1}, "parameters", "a.b"),
    ({"outer": {"$inner": 1}}, "parameters.outer", "$inner"),
    ({"outer": {"deep": [{"x.y": 1}]}}, "parameters.outer.deep[0]", "x.y"),
]


@pytest.mark.parametrize(("parameters", "field", "key"), BAD_KEYS)
async def test_create_job_refuses_parameter_keys_mongodb_would_interpret(
        api: Api, store: Store, parameters: dict[str, Any], field: str, key: str) -> None:
    error = await api.error(CREATE_JOB, {"input": {"jobType": "pdf", "parameters": parameters}})

    assert error["extensions"] == {"code": "VALIDATION_ERROR", "field": field}
    assert key in error["message"]
    assert await store.jobs.collection.count_documents({}) == 0


@pytest.mark.parametrize(("results", "field", "key"), [
    ({"$set": {"status": "FAILED"}}, "results", "$set"),
    ({"pages": [{"meta": {"a.b": 1}}]}, "results.pages[0].meta", "a.b"),
])
async def test_complete_job_refuses_result_keys_mongodb_would_interpret(
        api: Api, store: Store, results: dict[str, Any], field: str, key: str) -> None:
    job = await claimed_job(api, store)

    error = await api.error(COMPLETE_JOB, {"jobId": job["jobId"], "results": results},
                            as_=WORKER)

    assert error["extensions"] == {"code": "VALIDATION_ERROR", "field": field}
    assert key in error["message"]
    assert await read_job(api, job["jobId"]) == job


async def test_fail_job_refuses_error_details_with_bad_keys(api: Api, store: Store) -> None:
    job = await claimed_job(api, store)

    error = await api.error(FAIL_JOB, {"jobId": job["jobId"], "error": {
        "code": "E", "message": "m", "details": {"$x": 1}}}, as_=WORKER)

    assert error["extensions"] == {"code": "VALIDATION_ERROR", "field": "error.details"}
    assert await read_job(api, job["jobId"]) == job


async def test_create_job_refuses_parameters_above_the_payload_limit(
        api: Api, store: Store, settings: Settings) -> None:
    # given: a string that makes the encoded parameters exactly the limit
    overhead = len(bson.encode({"v": {"blob": ""}}))
    fits = "x" * (settings.max_payload_bytes - overhead)

    # when / then: the limit itself is accepted, one byte more is not
    accepted = await create_job(api, parameters={"blob": fits})
    error = await api.error(CREATE_JOB, {"input": {"jobType": "pdf",
                                                   "parameters": {"blob": fits + "x"}}})

    assert error["extensions"] == {"code": "VALIDATION_ERROR", "field": "parameters"}
    assert str(settings.max_payload_bytes) in error["message"]
    assert await store.jobs.collection.count_documents({}) == 1
    assert (await read_job(api, accepted["jobId"]))["parameters"] == {"blob": fits}


async def test_complete_job_refuses_results_above_the_payload_limit(
        api: Api, store: Store, settings: Settings) -> None:
    job = await claimed_job(api, store)

    error = await api.error(COMPLETE_JOB, {"jobId": job["jobId"], "results": {
        "blob": "x" * settings.max_payload_bytes}}, as_=WORKER)

    assert error["extensions"] == {"code": "VALIDATION_ERROR", "field": "results"}
    assert await read_job(api, job["jobId"]) == job


@pytest.mark.parametrize("max_attempts", [0, 101])
async def test_create_job_refuses_max_attempts_out_of_range(
        api: Api, store: Store, max_attempts: int) -> None:
    error = await api.error(CREATE_JOB, {"input": {"jobType": "pdf",
                                                   "maxAttempts": max_attempts}})

    assert error["extensions"] == {"code": "VALIDATION_ERROR", "field": "maxAttempts"}
    assert await store.jobs.collection.count_documents({}) == 0


@pytest.mark.parametrize("job_type", ["", "   "])
async def test_create_job_refuses_an_empty_job_type(
        api: Api, store: Store, job_type: str) -> None:
    error = await api.error(CREATE_JOB, {"input": {"jobType": job_type}})

    assert error["extensions"] == {"code": "VALIDATION_ERROR", "field": "jobType"}
    assert await store.jobs.collection.count_documents({}) == 0


async def test_a_list_without_first_respects_the_configured_maximum_page_size(
        mongo_uri: str, database_name: str) -> None:
    # given: a server whose pages hold at most 5, and 12 jobs
    settings = make_settings(database=database_name, max_page_size=5)
    async with open_api(settings, mongo_uri) as small_pages:
        for _ in range(12):
            await small_pages.data(CREATE_JOB, {"input": {"jobType": "pdf"}})

        # when: the list is asked for without `first`
        page = (await small_pages.data(
            "{ jobs { edges { node { jobId } } pageInfo { hasNextPage } } }"))["jobs"]

    # then
    assert len(page["edges"]) == 5
    assert page["pageInfo"]["hasNextPage"] is True
