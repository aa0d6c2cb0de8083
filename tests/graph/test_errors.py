"""The one error model over HTTP: every error carries extensions.code, bad input names its
field, unexpected failures are masked, and a refused request writes nothing."""

from __future__ import annotations

import base64
import logging
import uuid
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from pymongo.errors import (
    AutoReconnect,
    ExecutionTimeout,
    NetworkTimeout,
    ServerSelectionTimeoutError,
)

from graph.config.settings import Settings
from graph.schema.core.errors import INTERNAL_MESSAGE
from graph.server.app import create_app
from repository.batches import BatchRepository
from repository.database import Store
from repository.documentation_jobs import DocumentationJobRepository
from repository.jobs import JobRepository
from tests.helpers.graphql import ALICE, BOB, Api, make_settings

from .documents import (
    BATCH,
    BATCHES,
    CREATE_BATCH,
    CREATE_JOB,
    DELETE_JOB,
    DOCUMENTATION_JOBS,
    JOB,
    JOBS,
)

LARGE_PAGE = 150
CONNECTIONS = [
    pytest.param(JOBS, "jobs", id="jobs"),
    pytest.param(BATCHES, "batches", id="batches"),
    pytest.param(DOCUMENTATION_JOBS, "documentationJobs", id="documentationJobs"),
]


def encoded(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


async def create_job(api: Api) -> dict[str, Any]:
    return (await api.data(CREATE_JOB, {"input": {"jobType": "pdf"}}))["createJob"]


@pytest.fixture(scope="module")
async def shared_api(mongo_uri: str) -> AsyncIterator[Api]:
    """One API for the tests that write nothing: they skip the per-test database set-up."""
    settings = make_settings(database=f"jobgraph_test_{uuid.uuid4().hex[:12]}")
    app = create_app(settings, mongodb_uri=mongo_uri)
    async with app.router.lifespan_context(app), httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app), base_url="http://test") as client:
        yield Api(client, settings)
        await app.state.store.client.drop_database(settings.database)


# -- unexpected failures ---------------------------------------------------------------------


async def test_unexpected_exception_is_masked_as_internal_server_error(
        api: Api, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture) -> None:
    # given: a repository bug
    async def broken(*args: Any, **kwargs: Any) -> Any:
        raise RuntimeError("secret detail")

    monkeypatch.setattr(JobRepository, "get", broken)

    # when
    with caplog.at_level(logging.ERROR, logger="jobgraph.errors"):
        response = await api.post(JOB, {"jobId": "any"})

    # then: the client learns nothing about the cause
    assert response.status_code == 200
    body = response.json()
    assert body["data"] == {"job": None}
    [error] = body["errors"]
    assert error["message"] == INTERNAL_MESSAGE == "Internal server error"
    assert error["extensions"] == {"code": "INTERNAL_SERVER_ERROR"}
    assert error["path"] == ["job"]
    for leak in ("secret", "RuntimeError", "Traceback", "repository", ".py"):
        assert leak not in response.text
    # and the server log has the details
    assert any(record.exc_info and "secret detail" in str(record.exc_info[1])
               for record in caplog.records)


async def test_unexpected_exception_in_a_mutation_is_masked_and_writes_nothing(
        api: Api, store: Store, monkeypatch: pytest.MonkeyPatch) -> None:
    async def broken(*args: Any, **kwargs: Any) -> Any:
        raise KeyError("secret_key")

    monkeypatch.setattr(BatchRepository, "create", broken)

    error = await api.error(CREATE_BATCH, {"input": {"batchName": "b",
                                                     "jobs": [{"jobType": "pdf"}]}})

    assert (error["message"], error["extensions"]) == (
        "Internal server error", {"code": "INTERNAL_SERVER_ERROR"})
    assert await store.batches.collection.count_documents({}) == 0


@pytest.mark.parametrize("failure", [
    ServerSelectionTimeoutError("db.internal:27017: timed out"),
    AutoReconnect("db.internal:27017: connection closed"),
    NetworkTimeout("db.internal:27017: timed out"),
    ExecutionTimeout("operation exceeded time limit"),
], ids=lambda failure: type(failure).__name__)
async def test_database_failures_map_to_database_unavailable(
        api: Api, monkeypatch: pytest.MonkeyPatch, failure: Exception) -> None:
    async def unavailable(*args: Any, **kwargs: Any) -> Any:
        raise failure

    monkeypatch.setattr(JobRepository, "list", unavailable)

    response = await api.post(JOBS, {})

    body = response.json()
    [error] = body["errors"]
    assert error["extensions"] == {"code": "DATABASE_UNAVAILABLE"}
    assert error["message"] == "The database is unavailable; try again later."
    assert "db.internal" not in response.text and "27017" not in response.text


async def test_database_unavailable_in_a_mutation(
        api: Api, store: Store, monkeypatch: pytest.MonkeyPatch) -> None:
    async def unavailable(*args: Any, **kwargs: Any) -> Any:
        raise ServerSelectionTimeoutError("no servers")

    monkeypatch.setattr(DocumentationJobRepository, "create", unavailable)

    error = await api.error("""mutation { createDocumentationJob(input: {
        repositoryPath: "/r", repositoryName: "r", outputDirectory: "/o"}) { jobId } }""")

    assert error["extensions"]["code"] == "DATABASE_UNAVAILABLE"
    assert error["path"] == ["createDocumentationJob"]


# -- arguments that cannot be right --------------------------------------------------------


@pytest.mark.parametrize(("document", "variables"), [
    pytest.param(JOBS, {"filter": {"status": "DONE"}}, id="jobs"),
    pytest.param(BATCH, {"batchId": "b", "status": "DONE"}, id="batch.jobs"),
    pytest.param(DOCUMENTATION_JOBS, {"filter": {"status": "PROCESSING"}},
                 id="documentationJobs"),
])
async def test_unknown_status_in_a_filter_fails_validation(
        shared_api: Api, document: str, variables: dict[str, Any]) -> None:
    error = await shared_api.error(document, variables)

    assert error["extensions"] == {"code": "GRAPHQL_VALIDATION_FAILED"}
    bad = variables.get("status") or variables["filter"]["status"]
    assert f"'{bad}'" in error["message"]
    assert "status" in error["message"]


async def test_unknown_status_written_inline_names_the_value(shared_api: Api) -> None:
    error = await shared_api.error("{ jobs(filter: {status: DONE}) { totalCount } }")

    assert error["extensions"] == {"code": "GRAPHQL_VALIDATION_FAILED"}
    assert "DONE" in error["message"] and "JobStatus" in error["message"]
    assert error["locations"] == [{"line": 1, "column": 25}]


async def test_malformed_date_in_a_filter_fails_validation(shared_api: Api) -> None:
    error = await shared_api.error(JOBS, {"filter": {"createdAfter": "yesterday"}})

    assert error["extensions"] == {"code": "GRAPHQL_VALIDATION_FAILED"}
    assert "createdAfter" in error["message"] and "yesterday" in error["message"]


BAD_CURSORS = [
    pytest.param("!!!", id="not-base64"),
    pytest.param(encoded(b"not json"), id="not-json"),
    pytest.param(encoded(b'["soon", "id"]'), id="not-a-time"),
    pytest.param(encoded(b"[1700000000000]"), id="no-id"),
    pytest.param(encoded(b'{"a": 1}'), id="an-object"),
    pytest.param("", id="empty"),
]


@pytest.mark.parametrize("cursor", BAD_CURSORS)
async def test_malformed_cursor_is_a_validation_error(shared_api: Api, cursor: str) -> None:
    body = await shared_api.execute(JOBS, {"after": cursor})

    assert body["data"] is None
    [error] = body["errors"]
    assert error["extensions"] == {"code": "VALIDATION_ERROR", "field": "after"}
    assert error["message"] == "after: is not a valid cursor"


@pytest.mark.parametrize("direction", ["after", "before"])
@pytest.mark.parametrize(("document", "root"), CONNECTIONS)
async def test_malformed_cursor_names_its_argument_on_every_connection(
        shared_api: Api, document: str, root: str, direction: str) -> None:
    body = await shared_api.execute(document, {direction: "not-a-cursor"})

    assert body["data"] is None
    [error] = body["errors"]
    assert error["extensions"] == {"code": "VALIDATION_ERROR", "field": direction}
    assert error["message"].startswith(f"{direction}:")
    assert error["path"] == [root]


async def test_malformed_cursor_of_batch_jobs_names_its_argument(api: Api) -> None:
    batch = (await api.data(CREATE_BATCH, {"input": {"batchName": "b",
                                                     "jobs": [{"jobType": "pdf"}]}}))
    error = await api.error(BATCH, {"batchId": batch["createBatch"]["batchId"], "after": "%%"})

    assert error["extensions"] == {"code": "VALIDATION_ERROR", "field": "after"}
    assert error["path"] == ["batch", "jobs"]


@pytest.mark.parametrize("size", ["first", "last"])
@pytest.mark.parametrize(("document", "root"), CONNECTIONS)
async def test_page_size_above_the_maximum_is_a_validation_error(
        shared_api: Api, document: str, root: str, size: str) -> None:
    too_many = shared_api.settings.max_page_size + 1

    error = await shared_api.error(document, {size: too_many})

    assert error["extensions"] == {"code": "VALIDATION_ERROR", "field": size}
    assert str(shared_api.settings.max_page_size) in error["message"]
    assert str(too_many) in error["message"]
    assert error["path"] == [root]


@pytest.mark.parametrize("size", ["first", "last"])
async def test_negative_page_size_is_a_validation_error(shared_api: Api, size: str) -> None:
    error = await shared_api.error(JOBS, {size: -1})

    assert error["extensions"] == {"code": "VALIDATION_ERROR", "field": size}


async def test_page_size_at_the_maximum_is_accepted(api: Api, settings: Settings) -> None:
    await create_job(api)

    data = await api.data(JOBS, {"first": settings.max_page_size})
    backwards = await api.data(JOBS, {"last": settings.max_page_size})

    assert data["jobs"]["totalCount"] == backwards["jobs"]["totalCount"] == 1
    assert len(data["jobs"]["edges"]) == len(backwards["jobs"]["edges"]) == 1


async def test_first_and_last_together_are_refused(shared_api: Api) -> None:
    error = await shared_api.error(JOBS, {"first": 1, "last": 1})

    assert error["extensions"] == {"code": "VALIDATION_ERROR", "field": "first"}
    assert "last" in error["message"]


# -- other codes -----------------------------------------------------------------------------


async def test_forbidden_when_the_caller_may_read_but_not_delete(api: Api, store: Store) -> None:
    # given: bob may read alice's job
    job = (await api.data(CREATE_JOB, {"input": {"jobType": "pdf",
                                                 "accessControl": {"readAccess": ["bob"]}}}))
    job_id = job["createJob"]["jobId"]

    error = await api.error(DELETE_JOB, {"jobId": job_id}, as_=BOB)

    assert error["extensions"] == {"code": "FORBIDDEN"}
    assert await store.jobs.collection.count_documents({"_id": job_id}) == 1


async def test_parse_error_has_its_code(shared_api: Api) -> None:
    body = (await shared_api.post("{ jobs { totalCount ")).json()

    [error] = body["errors"]
    assert error["extensions"] == {"code": "GRAPHQL_PARSE_FAILED"}
    assert error["message"].startswith("Syntax Error")


async def test_unknown_field_fails_validation(shared_api: Api) -> None:
    error = await shared_api.error("{ jobs { totalCount secretField } }")

    assert error["extensions"] == {"code": "GRAPHQL_VALIDATION_FAILED"}
    assert "secretField" in error["message"]


async def test_missing_required_variable_fails_validation(shared_api: Api) -> None:
    error = await shared_api.error(JOB, {})

    assert error["extensions"] == {"code": "GRAPHQL_VALIDATION_FAILED"}
    assert "$jobId" in error["message"]


async def test_too_deep_a_query_is_too_complex(shared_api: Api) -> None:
    # given: job -> batch -> jobs -> job ... four levels per round, beyond the limit
    nested = "jobId"
    for _ in range(shared_api.settings.max_query_depth // 4 + 1):
        nested = f"batch {{ jobs {{ edges {{ node {{ {nested} }} }} }} }}"

    error = await shared_api.error(f"{{ jobs {{ edges {{ node {{ {nested} }} }} }} }}")

    assert error["extensions"] == {"code": "QUERY_TOO_COMPLEX"}
    assert "depth" in error["message"]


async def test_too_many_aliases_are_too_complex(shared_api: Api) -> None:
    count = shared_api.settings.max_aliases + 1
    aliases = " ".join(f"v{i}: viewer {{ userId }}" for i in range(count))

    error = await shared_api.error(f"{{ {aliases} }}")

    assert error["extensions"] == {"code": "QUERY_TOO_COMPLEX"}
    assert "aliases" in error["message"]


async def test_too_many_tokens_are_too_complex(shared_api: Api) -> None:
    fields = " ".join("userId" for _ in range(shared_api.settings.max_tokens))

    error = await shared_api.error(f"{{ viewer {{ {fields} }} }}")

    assert error["extensions"] == {"code": "QUERY_TOO_COMPLEX"}
    assert "tokens" in error["message"]


async def test_every_error_of_a_partial_result_has_a_code(api: Api) -> None:
    # given: one readable job, one missing
    job = await create_job(api)

    body = await api.execute(
        "query($a: ID!, $b: ID!) { a: job(jobId: $a) { jobId } b: job(jobId: $b) { jobId } }",
        {"a": job["jobId"], "b": "missing"}, as_=ALICE)

    assert body["data"] == {"a": {"jobId": job["jobId"]}, "b": None}
    assert [error["extensions"]["code"] for error in body["errors"]] == ["NOT_FOUND"]


@pytest.fixture
async def roomy_api(mongo_uri: str, database_name: str, store: Store) -> AsyncIterator[Api]:
    """An API configured with a page size maximum above the built-in default."""
    settings = make_settings(database=database_name, max_page_size=LARGE_PAGE)
    app = create_app(settings, mongodb_uri=mongo_uri)
    async with app.router.lifespan_context(app), httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app), base_url="http://test") as client:
        yield Api(client, settings)


@pytest.mark.parametrize(("document", "root"), CONNECTIONS)
async def test_configured_page_size_maximum_is_honoured(
        roomy_api: Api, document: str, root: str) -> None:
    accepted = await roomy_api.data(document, {"first": LARGE_PAGE})
    error = await roomy_api.error(document, {"last": LARGE_PAGE + 1})

    assert accepted[root]["edges"] == []
    assert error["extensions"] == {"code": "VALIDATION_ERROR", "field": "last"}
    assert str(LARGE_PAGE) in error["message"]


ORDERED_JOBS = """
query Ordered($after: String, $before: String, $orderBy: JobOrderInput) {
  jobs(first: 5, after: $after, before: $before, orderBy: $orderBy) { totalCount }
}
"""


@pytest.mark.parametrize("field", ["after", "before"])
@pytest.mark.parametrize("value", [2**63, -(2**63) - 1, 10**30], ids=["2^63", "-2^63-1", "10^30"])
async def test_cursor_with_an_integer_beyond_64_bits_is_a_validation_error(
        shared_api: Api, field: str, value: int) -> None:
    """A forged cursor must not reach the driver, which cannot encode such an int."""
    cursor = encoded(f'["priority_asc",{value},1700000000000,"id"]'.encode())
    body = await shared_api.execute(
        ORDERED_JOBS, {field: cursor, "orderBy": {"field": "PRIORITY", "direction": "ASC"}})

    assert body["data"] is None
    [error] = body["errors"]
    assert error["extensions"] == {"code": "VALIDATION_ERROR", "field": field}
    assert error["message"] == f"{field}: is not a valid cursor"
