"""Batches over HTTP: batch, batches, BatchJob.jobs, and the batch mutations."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from graph.config.settings import Settings
from repository.database import Store
from tests.helpers.graphql import ALICE, BOB, WORKER, Api, Caller

from .documents import (
    ACTIVATE_BATCH,
    BATCH,
    BATCHES,
    CLAIM_JOB,
    COMPLETE_JOB,
    CREATE_BATCH,
    DEACTIVATE_BATCH,
    FAIL_JOB,
    RETRY_JOB,
    SET_BATCH_ACCESS,
)

BASE = datetime(2025, 3, 1, 12, 0, tzinfo=UTC)
MISSING = "no-such-batch"
BATCH_FIELDS = ("__typename", "batchId", "batchName", "createdAt", "updatedAt", "active", "owner",
                "status", "counts", "accessControl")


def at(milliseconds: int) -> datetime:
    return BASE + timedelta(milliseconds=milliseconds)


def fields_of(batch: dict[str, Any]) -> dict[str, Any]:
    return {name: batch[name] for name in BATCH_FIELDS}


async def create_batch(api: Api, name: str = "scans", jobs: int | list[dict[str, Any]] = 2, *,
                       as_: Caller = ALICE, **fields: Any) -> dict[str, Any]:
    specs = [{"jobType": "pdf"} for _ in range(jobs)] if isinstance(jobs, int) else jobs
    data = await api.data(CREATE_BATCH, {"input": {"batchName": name, "jobs": specs, **fields}},
                          as_=as_)
    return data["createBatch"]


async def read_batch(api: Api, batch_id: str, *, as_: Caller = ALICE,
                     **variables: Any) -> dict[str, Any]:
    return (await api.data(BATCH, {"batchId": batch_id, **variables}, as_=as_))["batch"]


async def batch_page(api: Api, variables: dict[str, Any]) -> tuple[list[str], dict[str, Any], int]:
    connection = (await api.data(BATCHES, variables))["batches"]
    return ([edge["node"]["batchId"] for edge in connection["edges"]], connection["pageInfo"],
            connection["totalCount"])


async def backdate_batches(store: Store, created: dict[str, datetime]) -> None:
    for batch_id, created_at in created.items():
        await store.batches.collection.update_one({"_id": batch_id},
                                                  {"$set": {"created_at": created_at}})


def job_ids(batch: dict[str, Any]) -> list[str]:
    return [edge["node"]["jobId"] for edge in batch["jobs"]["edges"]]


# -- createBatch and batch ---------------------------------------------------------------------


async def test_create_batch_returns_the_batch_and_creates_its_jobs(
        api: Api, store: Store) -> None:
    # when: two jobs, the second with its own access control
    batch = await create_batch(api, "scans", [
        {"jobType": "pdf", "parameters": {"file": "a.pdf"}},
        {"jobType": "ocr", "accessControl": {"readAccess": ["bob"]}},
    ], accessControl={"readAccess": ["carol"]})

    # then: the batch
    assert batch["__typename"] == "BatchJob"
    assert batch["batchName"] == "scans"
    assert batch["status"] == "PENDING"
    assert batch["counts"] == {"pending": 2, "processing": 0, "completed": 0, "failed": 0,
                               "total": 2}
    assert batch["active"] is True and batch["owner"] == "alice"
    assert batch["accessControl"] == {"visibility": "PRIVATE", "readAccess": ["carol"],
                                      "writeAccess": [], "adminAccess": ["alice"]}
    # and its jobs, each taking the batch's access control unless given its own
    jobs = {edge["node"]["jobType"]: edge["node"] for edge in batch["jobs"]["edges"]}
    assert batch["jobs"]["totalCount"] == 2
    assert {job["batchId"] for job in jobs.values()} == {batch["batchId"]}
    assert {job["status"] for job in jobs.values()} == {"PENDING"}
    assert jobs["pdf"]["parameters"] == {"file": "a.pdf"}
    assert jobs["pdf"]["accessControl"] == {"readAccess": ["carol"], "adminAccess": ["alice"]}
    assert jobs["ocr"]["accessControl"] == {"readAccess": ["bob"], "adminAccess": ["alice"]}
    # and reading it back
    again = await read_batch(api, batch["batchId"])
    assert fields_of(again) == fields_of(batch)
    assert sorted(job_ids(again)) == sorted(job_ids(batch))
    assert await store.batches.collection.count_documents({}) == 1
    assert await store.jobs.collection.count_documents({"batch_id": batch["batchId"]}) == 2


async def test_batch_returns_not_found_for_a_missing_id(api: Api) -> None:
    body = await api.execute(BATCH, {"batchId": MISSING})

    assert body["data"] == {"batch": None}
    [error] = body["errors"]
    assert error["extensions"]["code"] == "NOT_FOUND"
    assert MISSING in error["message"]


async def test_create_batch_refuses_an_empty_job_list(api: Api, store: Store) -> None:
    error = await api.error(CREATE_BATCH, {"input": {"batchName": "empty", "jobs": []}})

    assert error["extensions"] == {"code": "VALIDATION_ERROR", "field": "jobs"}
    assert await store.batches.collection.count_documents({}) == 0


async def test_create_batch_refuses_more_jobs_than_the_limit(
        api: Api, store: Store, settings: Settings) -> None:
    jobs = [{"jobType": "pdf"}] * (settings.max_jobs_per_batch + 1)

    error = await api.error(CREATE_BATCH, {"input": {"batchName": "big", "jobs": jobs}})

    assert error["extensions"] == {"code": "VALIDATION_ERROR", "field": "jobs"}
    assert str(settings.max_jobs_per_batch) in error["message"]
    assert await store.jobs.collection.count_documents({}) == 0
    assert await store.batches.collection.count_documents({}) == 0


async def test_create_batch_writes_nothing_when_one_job_is_invalid(
        api: Api, store: Store) -> None:
    error = await api.error(CREATE_BATCH, {"input": {"batchName": "b", "jobs": [
        {"jobType": "pdf"}, {"jobType": "pdf", "parameters": {"nested": {"a.b": 1}}}]}})

    assert error["extensions"] == {"code": "VALIDATION_ERROR", "field": "parameters.nested"}
    assert await store.jobs.collection.count_documents({}) == 0
    assert await store.batches.collection.count_documents({}) == 0


@pytest.mark.parametrize("name", ["", "  "])
async def test_create_batch_refuses_an_empty_name(api: Api, store: Store, name: str) -> None:
    error = await api.error(CREATE_BATCH, {"input": {"batchName": name,
                                                     "jobs": [{"jobType": "pdf"}]}})

    assert error["extensions"] == {"code": "VALIDATION_ERROR", "field": "batchName"}
    assert await store.jobs.collection.count_documents({}) == 0


# -- status and counts -------------------------------------------------------------------------


async def counts_and_status(api: Api, batch_id: str) -> tuple[dict[str, int], str]:
    batch = await read_batch(api, batch_id)
    counts = {name: n for name, n in batch["counts"].items() if n}
    return counts, batch["status"]


async def claim(api: Api) -> str:
    return (await api.data(CLAIM_JOB, {}, as_=WORKER))["claimJob"]["jobId"]


async def test_batch_status_and_counts_follow_its_jobs(api: Api) -> None:
    # one attempt per job, so the worker's failure is final and a writer retries it
    batch_id = (await create_batch(api, jobs=[{"jobType": "pdf", "maxAttempts": 1}] * 3)
                )["batchId"]
    assert await counts_and_status(api, batch_id) == ({"pending": 3, "total": 3}, "PENDING")

    first = await claim(api)
    assert await counts_and_status(api, batch_id) == (
        {"pending": 2, "processing": 1, "total": 3}, "PROCESSING")

    await api.data(COMPLETE_JOB, {"jobId": first}, as_=WORKER)
    assert await counts_and_status(api, batch_id) == (
        {"pending": 2, "completed": 1, "total": 3}, "PROCESSING")

    second, third = await claim(api), await claim(api)
    await api.data(COMPLETE_JOB, {"jobId": second}, as_=WORKER)
    await api.data(FAIL_JOB, {"jobId": third, "error": {"code": "E", "message": "m"}},
                   as_=WORKER)
    assert await counts_and_status(api, batch_id) == (
        {"completed": 2, "failed": 1, "total": 3}, "FAILED")

    await api.data(RETRY_JOB, {"jobId": third})
    assert await counts_and_status(api, batch_id) == (
        {"pending": 1, "completed": 2, "total": 3}, "PROCESSING")

    await claim(api)
    await api.data(COMPLETE_JOB, {"jobId": third}, as_=WORKER)
    assert await counts_and_status(api, batch_id) == ({"completed": 3, "total": 3}, "COMPLETED")
    listed = (await api.data(BATCHES, {}))["batches"]["edges"][0]["node"]
    assert (listed["status"], listed["counts"]) == ("COMPLETED", {"total": 3})


async def test_batch_counts_every_job_but_lists_only_readable_ones(api: Api) -> None:
    # given: bob may read the batch and its first job; the second has its own access
    batch = await create_batch(api, jobs=[
        {"jobType": "pdf"}, {"jobType": "ocr", "accessControl": {"visibility": "PRIVATE"}}],
        accessControl={"readAccess": ["bob"]})
    hidden = next(e["node"]["jobId"] for e in batch["jobs"]["edges"]
                  if e["node"]["jobType"] == "ocr")

    # when
    seen = await read_batch(api, batch["batchId"], as_=BOB)

    # then
    assert seen["counts"]["total"] == 2
    assert seen["jobs"]["totalCount"] == 1
    assert hidden not in job_ids(seen)


# -- BatchJob.jobs -----------------------------------------------------------------------------


async def five_job_batch(api: Api, store: Store) -> tuple[str, list[str]]:
    """A batch of five jobs at fixed instants; its job ids newest first."""
    batch = await create_batch(api, jobs=5)
    ids = sorted(job_ids(batch))
    for i, job_id in enumerate(ids):
        await store.jobs.collection.update_one({"_id": job_id}, {"$set": {"created_at": at(i)}})
    return batch["batchId"], list(reversed(ids))


async def test_batch_jobs_filters_by_status(api: Api, store: Store) -> None:
    batch_id, newest_first = await five_job_batch(api, store)
    oldest, second_oldest = newest_first[-1], newest_first[-2]
    assert [await claim(api), await claim(api)] == [oldest, second_oldest]

    pending = await read_batch(api, batch_id, status="PENDING")
    processing = await read_batch(api, batch_id, status="PROCESSING")
    failed = await read_batch(api, batch_id, status="FAILED")

    assert (job_ids(pending), pending["jobs"]["totalCount"]) == (newest_first[:3], 3)
    assert (job_ids(processing), processing["jobs"]["totalCount"]) == (newest_first[3:], 2)
    assert (job_ids(failed), failed["jobs"]["totalCount"]) == ([], 0)


async def test_batch_jobs_pages_forward_and_backward(api: Api, store: Store) -> None:
    batch_id, newest_first = await five_job_batch(api, store)

    page1 = (await read_batch(api, batch_id, first=3))["jobs"]
    page2 = (await read_batch(api, batch_id, first=3, after=page1["pageInfo"]["endCursor"]))["jobs"]
    tail = (await read_batch(api, batch_id, last=2))["jobs"]
    before_tail = (await read_batch(api, batch_id, last=2,
                                    before=tail["pageInfo"]["startCursor"]))["jobs"]

    assert [job_ids({"jobs": p}) for p in (page1, page2)] == [newest_first[:3], newest_first[3:]]
    assert (page1["pageInfo"]["hasNextPage"], page2["pageInfo"]["hasNextPage"]) == (True, False)
    assert job_ids({"jobs": tail}) == newest_first[3:]
    assert job_ids({"jobs": before_tail}) == newest_first[1:3]
    assert tail["pageInfo"]["hasPreviousPage"] is True
    assert {p["totalCount"] for p in (page1, page2, tail, before_tail)} == {5}


async def test_batch_jobs_lists_only_the_batchs_jobs(api: Api) -> None:
    ours = await create_batch(api, jobs=2)
    await create_batch(api, "other", jobs=3)

    seen = await read_batch(api, ours["batchId"])

    assert sorted(job_ids(seen)) == sorted(job_ids(ours))
    assert seen["jobs"]["totalCount"] == 2


# -- batches -----------------------------------------------------------------------------------


async def three_batches(api: Api, store: Store) -> list[str]:
    """Batches a, b, c at 10, 20 and 30 ms; ids newest first."""
    ids = [(await create_batch(api, name, jobs=1))["batchId"] for name in "abc"]
    await backdate_batches(store, {batch_id: at(10 * (i + 1)) for i, batch_id in enumerate(ids)})
    return list(reversed(ids))


async def test_batches_filters_by_active(api: Api, store: Store) -> None:
    c, b, a = await three_batches(api, store)
    await api.data(DEACTIVATE_BATCH, {"batchId": b})

    active, _, active_total = await batch_page(api, {"filter": {"active": True}})
    inactive, _, inactive_total = await batch_page(api, {"filter": {"active": False}})
    everything, _, total = await batch_page(api, {"filter": {"active": None}})

    assert (active, active_total) == ([c, a], 2)
    assert (inactive, inactive_total) == ([b], 1)
    assert (everything, total) == ([c, b, a], 3)


BATCH_CREATED_RANGES = [
    ({"createdAfter": at(10).isoformat()}, "cb"),
    ({"createdBefore": at(30).isoformat()}, "ba"),
    ({"createdAfter": at(10).isoformat(), "createdBefore": at(30).isoformat()}, "b"),
    ({"createdAfter": at(30).isoformat()}, ""),
]


async def test_batches_filters_by_created_range(api: Api, store: Store) -> None:
    c, b, a = await three_batches(api, store)
    names = {"a": a, "b": b, "c": c}

    for batch_filter, expected in BATCH_CREATED_RANGES:
        found, _, total = await batch_page(api, {"filter": batch_filter})

        assert found == [names[name] for name in expected], batch_filter
        assert total == len(expected), batch_filter


async def test_batches_pages_forward_and_backward(api: Api, store: Store) -> None:
    newest_first = await three_batches(api, store)

    first, info, total = await batch_page(api, {"first": 2})
    rest, rest_info, _ = await batch_page(api, {"first": 2, "after": info["endCursor"]})
    last, last_info, _ = await batch_page(api, {"last": 1})
    before, before_info, _ = await batch_page(api, {"last": 5, "before": last_info["startCursor"]})

    assert (first, rest) == (newest_first[:2], newest_first[2:])
    assert (info["hasNextPage"], rest_info["hasNextPage"], rest_info["hasPreviousPage"]) == (
        True, False, True)
    assert last == newest_first[2:] and last_info["hasPreviousPage"] is True
    assert before == newest_first[:2] and before_info["hasPreviousPage"] is False
    assert total == 3


async def test_batches_shows_a_caller_only_what_they_may_read(api: Api) -> None:
    mine = await create_batch(api)
    await create_batch(api, as_=BOB)

    found, _, total = await batch_page(api, {})

    assert (found, total) == ([mine["batchId"]], 1)


# -- batch mutations ---------------------------------------------------------------------------


async def test_deactivate_and_activate_batch_switch_it(api: Api, store: Store) -> None:
    batch = await create_batch(api)

    off = (await api.data(DEACTIVATE_BATCH, {"batchId": batch["batchId"]}))["deactivateBatch"]
    assert off["active"] is False
    assert fields_of(await read_batch(api, batch["batchId"])) == off
    assert (await store.batches.collection.find_one({"_id": batch["batchId"]}))["active"] is False

    on = (await api.data(ACTIVATE_BATCH, {"batchId": batch["batchId"]}))["activateBatch"]
    assert on["active"] is True
    assert fields_of(await read_batch(api, batch["batchId"])) == on
    assert datetime.fromisoformat(on["updatedAt"]) >= datetime.fromisoformat(batch["updatedAt"])
    # the jobs are untouched
    assert on["counts"] == batch["counts"]


async def test_set_batch_access_replaces_the_access_control(api: Api) -> None:
    batch = await create_batch(api)
    assert (await api.error(BATCH, {"batchId": batch["batchId"]}, as_=BOB))["extensions"][
        "code"] == "NOT_FOUND"

    updated = (await api.data(SET_BATCH_ACCESS, {"batchId": batch["batchId"], "accessControl": {
        "visibility": "PUBLIC", "adminAccess": ["alice"], "writeAccess": ["bob"]}}
    ))["setBatchAccess"]

    assert updated["accessControl"] == {"visibility": "PUBLIC", "readAccess": [],
                                        "writeAccess": ["bob"], "adminAccess": ["alice"]}
    assert fields_of(await read_batch(api, batch["batchId"])) == updated
    assert (await read_batch(api, batch["batchId"], as_=BOB))["batchId"] == batch["batchId"]


@pytest.mark.parametrize(("document", "variables"), [
    (DEACTIVATE_BATCH, {}),
    (ACTIVATE_BATCH, {}),
    (SET_BATCH_ACCESS, {"accessControl": {"visibility": "PUBLIC"}}),
])
async def test_batch_mutations_return_not_found_for_a_missing_id(
        api: Api, store: Store, document: str, variables: dict[str, Any]) -> None:
    error = await api.error(document, {"batchId": MISSING, **variables})

    assert error["extensions"]["code"] == "NOT_FOUND"
    assert MISSING in error["message"]
    assert await store.batches.collection.count_documents({}) == 0
