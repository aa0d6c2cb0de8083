"""Documentation jobs over HTTP: queries, the lifecycle, statistics, files and access."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from repository.database import Store
from tests.helpers.graphql import ALICE, BOB, Api, Caller

from .documents import (
    ADD_GENERATED_FILES,
    COMPLETE_DOCUMENTATION_JOB,
    CREATE_DOCUMENTATION_JOB,
    DELETE_DOCUMENTATION_JOB,
    DOCUMENTATION_JOB,
    DOCUMENTATION_JOBS,
    FAIL_DOCUMENTATION_JOB,
    SET_DOCUMENTATION_JOB_ACCESS,
    SET_DOCUMENTATION_JOB_STATISTICS,
    START_DOCUMENTATION_JOB,
)

BASE = datetime(2025, 3, 1, 12, 0, tzinfo=UTC)
MISSING = "no-such-documentation-job"
FULL_INPUT = {
    "repositoryPath": "/src/jobgraph",
    "repositoryName": "jobgraph",
    "outputDirectory": "/out/docs",
    "commitHash": "2cd5031",
    "branchName": "main",
    "generationOptions": {"createBranch": True, "githubPages": True, "noCache": False,
                          "customOutput": "site"},
    "llmConfig": {"mainModel": "big", "clusterModel": "small", "baseUrl": "http://llm:8080"},
    "accessControl": {"readAccess": ["bob"]},
}


def at(milliseconds: int) -> datetime:
    return BASE + timedelta(milliseconds=milliseconds)


async def create(api: Api, repository: str = "jobgraph", *, as_: Caller = ALICE,
                 **fields: Any) -> dict[str, Any]:
    data = await api.data(CREATE_DOCUMENTATION_JOB, {"input": {
        "repositoryPath": f"/src/{repository}", "repositoryName": repository,
        "outputDirectory": "/out", **fields}}, as_=as_)
    return data["createDocumentationJob"]


async def read(api: Api, job_id: str, *, as_: Caller = ALICE) -> dict[str, Any]:
    return (await api.data(DOCUMENTATION_JOB, {"jobId": job_id}, as_=as_))["documentationJob"]


async def run(api: Api, document: str, job_id: str, **variables: Any) -> dict[str, Any]:
    """Run a mutation on one job; its single root field."""
    data = await api.data(document, {"jobId": job_id, **variables})
    [value] = data.values()
    return value


async def page(api: Api, variables: dict[str, Any]) -> tuple[list[str], dict[str, Any], int]:
    connection = (await api.data(DOCUMENTATION_JOBS, variables))["documentationJobs"]
    return ([edge["node"]["jobId"] for edge in connection["edges"]], connection["pageInfo"],
            connection["totalCount"])


# -- create and read ---------------------------------------------------------------------------


async def test_create_documentation_job_returns_it_and_stores_it(api: Api, store: Store) -> None:
    job = (await api.data(CREATE_DOCUMENTATION_JOB, {"input": FULL_INPUT}))[
        "createDocumentationJob"]

    assert job["__typename"] == "DocumentationJob"
    assert job["status"] == "PENDING"
    assert {key: job[key] for key in FULL_INPUT if key != "accessControl"} == {
        key: value for key, value in FULL_INPUT.items() if key != "accessControl"}
    assert job["accessControl"] == {"visibility": "PRIVATE", "readAccess": ["bob"],
                                    "writeAccess": [], "adminAccess": ["alice"]}
    assert job["owner"] == "alice"
    assert (job["timestampStart"], job["timestampEnd"], job["errorMessage"]) == (None, None, None)
    assert (job["filesGenerated"], job["moduleCount"]) == ([], 0)
    assert job["statistics"] == {"totalFilesAnalyzed": 0, "leafNodes": 0, "maxDepth": 0,
                                 "totalTokensUsed": 0}
    assert await read(api, job["jobId"]) == job
    doc = await store.documentation_jobs.collection.find_one({"_id": job["jobId"]})
    assert doc is not None and doc["repository_name"] == "jobgraph" and doc["status"] == "PENDING"


async def test_create_documentation_job_uses_defaults_for_what_is_left_out(api: Api) -> None:
    job = await create(api)

    assert job["generationOptions"] == {"createBranch": False, "githubPages": False,
                                        "noCache": False, "customOutput": None}
    assert job["llmConfig"] is None
    assert (job["commitHash"], job["branchName"]) == (None, None)


@pytest.mark.parametrize("field", ["repositoryPath", "repositoryName", "outputDirectory"])
async def test_create_documentation_job_refuses_an_empty_required_text(
        api: Api, store: Store, field: str) -> None:
    error = await api.error(CREATE_DOCUMENTATION_JOB, {"input": {**FULL_INPUT, field: " "}})

    assert error["extensions"] == {"code": "VALIDATION_ERROR", "field": field}
    assert await store.documentation_jobs.collection.count_documents({}) == 0


async def test_documentation_job_returns_not_found_for_a_missing_id(api: Api) -> None:
    body = await api.execute(DOCUMENTATION_JOB, {"jobId": MISSING})

    assert body["data"] == {"documentationJob": None}
    [error] = body["errors"]
    assert error["extensions"]["code"] == "NOT_FOUND"
    assert MISSING in error["message"]


# -- lifecycle ---------------------------------------------------------------------------------


async def test_start_then_complete_documentation_job(api: Api) -> None:
    job = await create(api)

    started = await run(api, START_DOCUMENTATION_JOB, job["jobId"])
    assert started["status"] == "RUNNING"
    assert datetime.fromisoformat(started["timestampStart"]) >= datetime.fromisoformat(
        job["createdAt"])
    assert started["timestampEnd"] is None
    assert await read(api, job["jobId"]) == started

    completed = await run(api, COMPLETE_DOCUMENTATION_JOB, job["jobId"])
    assert completed["status"] == "COMPLETED"
    assert completed["timestampStart"] == started["timestampStart"]
    assert datetime.fromisoformat(completed["timestampEnd"]) >= datetime.fromisoformat(
        started["timestampStart"])
    assert await read(api, job["jobId"]) == completed


@pytest.mark.parametrize("start_first", [False, True])
async def test_fail_documentation_job_records_the_message(api: Api, start_first: bool) -> None:
    job = await create(api)
    if start_first:
        await run(api, START_DOCUMENTATION_JOB, job["jobId"])

    failed = await run(api, FAIL_DOCUMENTATION_JOB, job["jobId"], errorMessage="LLM timed out")

    assert failed["status"] == "FAILED"
    assert failed["errorMessage"] == "LLM timed out"
    assert failed["timestampEnd"] is not None
    assert await read(api, job["jobId"]) == failed


@pytest.mark.parametrize(("setup", "document", "variables"), [
    ([START_DOCUMENTATION_JOB, COMPLETE_DOCUMENTATION_JOB], START_DOCUMENTATION_JOB, {}),
    ([FAIL_DOCUMENTATION_JOB], START_DOCUMENTATION_JOB, {}),
    ([], COMPLETE_DOCUMENTATION_JOB, {}),
    ([START_DOCUMENTATION_JOB], START_DOCUMENTATION_JOB, {}),
    ([START_DOCUMENTATION_JOB, COMPLETE_DOCUMENTATION_JOB], FAIL_DOCUMENTATION_JOB,
     {"errorMessage": "late"}),
])
async def test_documentation_job_transitions_refuse_the_wrong_status(
        api: Api, setup: list[str], document: str, variables: dict[str, Any]) -> None:
    # given: a job moved along by the setup mutations
    job = await create(api)
    for step in setup:
        extra = {"errorMessage": "boom"} if step is FAIL_DOCUMENTATION_JOB else {}
        job = await run(api, step, job["jobId"], **extra)

    # when
    error = await api.error(document, {"jobId": job["jobId"], **variables})

    # then
    assert error["extensions"]["code"] == "INVALID_TRANSITION"
    assert job["status"] in error["message"]
    assert await read(api, job["jobId"]) == job


async def test_fail_documentation_job_refuses_an_empty_message(api: Api) -> None:
    job = await create(api)

    error = await api.error(FAIL_DOCUMENTATION_JOB, {"jobId": job["jobId"], "errorMessage": ""})

    assert error["extensions"] == {"code": "VALIDATION_ERROR", "field": "errorMessage"}
    assert await read(api, job["jobId"]) == job


# -- statistics and files ----------------------------------------------------------------------


async def test_set_documentation_job_statistics_keeps_what_is_left_out(api: Api) -> None:
    """Issue 15: setting some statistics must not zero the others; a 0 given sets 0."""
    job = await create(api)
    await run(api, SET_DOCUMENTATION_JOB_STATISTICS, job["jobId"], statistics={
        "totalFilesAnalyzed": 5, "leafNodes": 2, "maxDepth": 3, "totalTokensUsed": 900})

    updated = await run(api, SET_DOCUMENTATION_JOB_STATISTICS, job["jobId"],
                        statistics={"totalFilesAnalyzed": 12, "maxDepth": 0})

    assert updated["statistics"] == {"totalFilesAnalyzed": 12, "leafNodes": 2, "maxDepth": 0,
                                     "totalTokensUsed": 900}
    assert await read(api, job["jobId"]) == updated


async def test_set_documentation_job_statistics_refuses_negative_numbers(api: Api) -> None:
    job = await create(api)

    error = await api.error(SET_DOCUMENTATION_JOB_STATISTICS, {
        "jobId": job["jobId"], "statistics": {"leafNodes": -1}})

    assert error["extensions"]["code"] == "VALIDATION_ERROR"
    assert error["extensions"]["field"] == "leafNodes"
    assert await read(api, job["jobId"]) == job


async def test_add_generated_files_ignores_duplicates_and_sets_the_module_count(
        api: Api) -> None:
    job = await create(api)
    await run(api, ADD_GENERATED_FILES, job["jobId"], files=["index.md", "api.md"])

    updated = await run(api, ADD_GENERATED_FILES, job["jobId"],
                        files=["api.md", "models.md", "models.md"], moduleCount=7)

    assert updated["filesGenerated"] == ["index.md", "api.md", "models.md"]
    assert updated["moduleCount"] == 7
    assert await read(api, job["jobId"]) == updated


async def test_add_generated_files_with_only_a_module_count(api: Api) -> None:
    job = await create(api)

    updated = await run(api, ADD_GENERATED_FILES, job["jobId"], files=[], moduleCount=3)

    assert (updated["filesGenerated"], updated["moduleCount"]) == ([], 3)
    assert await read(api, job["jobId"]) == updated


@pytest.mark.parametrize(("variables", "field"), [
    ({"files": []}, "files"),
    ({"files": [""]}, "files"),
    ({"files": ["a.md"], "moduleCount": -1}, "moduleCount"),
])
async def test_add_generated_files_refuses_bad_input(
        api: Api, variables: dict[str, Any], field: str) -> None:
    job = await create(api)

    error = await api.error(ADD_GENERATED_FILES, {"jobId": job["jobId"], **variables})

    assert error["extensions"] == {"code": "VALIDATION_ERROR", "field": field}
    assert await read(api, job["jobId"]) == job


# -- delete and access -------------------------------------------------------------------------


async def test_delete_documentation_job_returns_what_was_deleted(api: Api, store: Store) -> None:
    job = await create(api)

    deleted = await run(api, DELETE_DOCUMENTATION_JOB, job["jobId"])

    assert deleted == job
    error = await api.error(DOCUMENTATION_JOB, {"jobId": job["jobId"]})
    assert error["extensions"]["code"] == "NOT_FOUND"
    assert await store.documentation_jobs.collection.count_documents({}) == 0


async def test_set_documentation_job_access_replaces_the_access_control(api: Api) -> None:
    job = await create(api)
    assert (await api.error(DOCUMENTATION_JOB, {"jobId": job["jobId"]}, as_=BOB))[
        "extensions"]["code"] == "NOT_FOUND"

    updated = await run(api, SET_DOCUMENTATION_JOB_ACCESS, job["jobId"], accessControl={
        "visibility": "PUBLIC", "adminAccess": ["alice"]})

    assert updated["accessControl"] == {"visibility": "PUBLIC", "readAccess": [],
                                        "writeAccess": [], "adminAccess": ["alice"]}
    assert await read(api, job["jobId"]) == updated
    assert (await read(api, job["jobId"], as_=BOB))["jobId"] == job["jobId"]


@pytest.mark.parametrize(("document", "variables"), [
    (START_DOCUMENTATION_JOB, {}),
    (COMPLETE_DOCUMENTATION_JOB, {}),
    (FAIL_DOCUMENTATION_JOB, {"errorMessage": "m"}),
    (SET_DOCUMENTATION_JOB_STATISTICS, {"statistics": {"leafNodes": 1}}),
    (ADD_GENERATED_FILES, {"files": ["a.md"]}),
    (DELETE_DOCUMENTATION_JOB, {}),
    (SET_DOCUMENTATION_JOB_ACCESS, {"accessControl": {"visibility": "PUBLIC"}}),
])
async def test_documentation_job_mutations_return_not_found_for_a_missing_id(
        api: Api, store: Store, document: str, variables: dict[str, Any]) -> None:
    error = await api.error(document, {"jobId": MISSING, **variables})

    assert error["extensions"]["code"] == "NOT_FOUND"
    assert MISSING in error["message"]
    assert await store.documentation_jobs.collection.count_documents({}) == 0


# -- documentationJobs -------------------------------------------------------------------------


async def seed(api: Api, store: Store) -> dict[str, str]:
    """Four jobs at 10..40 ms: api (RUNNING), web, api-2 of repository api, docs (FAILED)."""
    ids = {
        "api": (await create(api, "api"))["jobId"],
        "web": (await create(api, "web"))["jobId"],
        "api-2": (await create(api, "api"))["jobId"],
        "docs": (await create(api, "docs"))["jobId"],
    }
    for i, job_id in enumerate(ids.values()):
        await store.documentation_jobs.collection.update_one(
            {"_id": job_id}, {"$set": {"created_at": at(10 * (i + 1))}})
    await run(api, START_DOCUMENTATION_JOB, ids["api"])
    await run(api, FAIL_DOCUMENTATION_JOB, ids["docs"], errorMessage="no sources")
    return ids


DOCUMENTATION_JOB_FILTERS = [
    ({}, ["docs", "api-2", "web", "api"]),
    ({"status": "PENDING"}, ["api-2", "web"]),
    ({"status": "RUNNING"}, ["api"]),
    ({"status": "FAILED"}, ["docs"]),
    ({"status": "COMPLETED"}, []),
    ({"repositoryName": "api"}, ["api-2", "api"]),
    ({"repositoryName": "api", "status": "PENDING"}, ["api-2"]),
    ({"createdAfter": at(10).isoformat(), "createdBefore": at(40).isoformat()},
     ["api-2", "web"]),
]


async def test_documentation_jobs_filters_by_each_condition(api: Api, store: Store) -> None:
    ids = await seed(api, store)

    for job_filter, expected in DOCUMENTATION_JOB_FILTERS:
        found, info, total = await page(api, {"filter": job_filter})

        assert found == [ids[name] for name in expected], job_filter
        assert total == len(expected), job_filter
        assert info["hasNextPage"] is False, job_filter


async def test_documentation_jobs_pages_forward_and_backward(api: Api, store: Store) -> None:
    ids = await seed(api, store)
    newest_first = [ids[name] for name in ("docs", "api-2", "web", "api")]

    first, info, total = await page(api, {"first": 3})
    rest, rest_info, _ = await page(api, {"first": 3, "after": info["endCursor"]})
    last, last_info, _ = await page(api, {"last": 3})
    before, before_info, _ = await page(api, {"last": 3, "before": last_info["startCursor"]})

    assert (first, rest) == (newest_first[:3], newest_first[3:])
    assert (info["hasNextPage"], rest_info["hasNextPage"]) == (True, False)
    assert (last, before) == (newest_first[1:], newest_first[:1])
    assert (last_info["hasPreviousPage"], before_info["hasPreviousPage"]) == (True, False)
    assert total == 4
