"""The express lane (graph/engine/express.py, graph/server/express.py) answers exactly
as Strawberry's path does.

A document's first request takes Strawberry's path (which parses and validates it);
the same request again takes the lane when the document is valid. Every request here
is sent twice and both answers must be equal: status, media type and body. A spy on
the lane checks which requests it answered, so the comparison cannot pass vacuously.
"""

from __future__ import annotations

import uuid
from typing import Any

import httpx
import pytest

from graph.server.http import GraphQLView
from tests.helpers.graphql import ALICE, ANON, BOB, METRICS, WORKER, Api, Caller

JOB_FIELDS = """jobId jobType status parameters createdAt updatedAt results batchId owner
    processingStartedAt completedAt claimedBy leaseExpiresAt attempts maxAttempts retryable
    logSeq version progress { step percent message }
    logs(last: 10) { timestamp level message seq attempt }"""


def view_of(api: Api) -> GraphQLView:
    return next(route.endpoint for route in api.app.routes  # type: ignore[attr-defined]
                if getattr(route, "path", None) == "/graphql"
                and isinstance(getattr(route, "endpoint", None), GraphQLView))


@pytest.fixture
async def lane(api: Api, app: Any, monkeypatch: pytest.MonkeyPatch) -> list[bool]:
    """Whether the lane answered each request, in order."""
    api.app = app  # type: ignore[attr-defined]
    express = view_of(api).express
    answered: list[bool] = []
    answer = express.answer

    async def spy(request: Any, media: str) -> Any:
        response = await answer(request, media)
        answered.append(response is not None)
        return response

    monkeypatch.setattr(express, "answer", spy)
    return answered


async def send(api: Api, body: Any, *, caller: Caller = ALICE, accept: str | None = None,
               content_type: str = "application/json", raw: bytes | None = None
               ) -> httpx.Response:
    headers = {**caller.headers(api.settings), "content-type": content_type}
    if accept is not None:
        headers["accept"] = accept
    if raw is None:
        return await api.client.post("/graphql", json=body, headers=headers)
    return await api.client.post("/graphql", content=raw, headers=headers)


async def twice(api: Api, lane: list[bool], body: Any, *, express: bool, **options: Any
                ) -> dict[str, Any]:
    """Send ``body`` twice; the answers must be equal; returns the parsed body."""
    first = await send(api, body, **options)
    del lane[:]
    second = await send(api, body, **options)
    assert lane == [express], f"express lane answered: {lane}, expected {express}"
    assert (second.status_code, second.headers["content-type"]) == (
        first.status_code, first.headers["content-type"])
    assert second.json() == first.json()
    return first.json()


async def new_job(api: Api, *, caller: Caller = ALICE, **fields: Any) -> dict[str, Any]:
    data = await api.data("mutation($input: CreateJobInput!) { createJob(input: $input) "
                          "{ jobId status } }",
                          {"input": {"jobType": "pdf", "parameters": {"n": 1}, **fields}},
                          as_=caller)
    return data["createJob"]


async def test_a_job_read_by_id_is_the_same_both_ways(api: Api, lane: list[bool]) -> None:
    job = await new_job(api)
    body = await twice(api, lane, {"query": f"query Job($id: ID!) {{ job(jobId: $id) "
                                            f"{{ {JOB_FIELDS} }} }}",
                                   "variables": {"id": job["jobId"]}}, express=True)
    assert body["data"]["job"]["jobId"] == job["jobId"]
    assert body["data"]["job"]["parameters"] == {"n": 1}


async def test_aliases_fragments_typename_and_directives(api: Api, lane: list[bool]) -> None:
    job = await new_job(api)
    query = """
    query Shapes($id: ID!, $withLogs: Boolean!, $skipType: Boolean!) {
      first: job(jobId: $id) { ...Parts kind: __typename type: jobType @skip(if: $skipType) }
      again: job(jobId: $id) { jobId logs(last: 1) @include(if: $withLogs) { seq } }
      viewer { userId roles anonymous }
    }
    fragment Parts on SecretaryJob { jobId ... on SecretaryJob { status } }
    """
    for flags in ({"withLogs": True, "skipType": False}, {"withLogs": False, "skipType": True}):
        body = await twice(api, lane, {"query": query, "variables": {"id": job["jobId"], **flags}},
                           express=True)
        assert body["data"]["first"]["kind"] == "SecretaryJob"
        assert ("type" in body["data"]["first"]) is not flags["skipType"]
        assert ("logs" in body["data"]["again"]) is flags["withLogs"]


async def test_a_page_of_jobs_is_the_same_both_ways(api: Api, lane: list[bool]) -> None:
    for _ in range(3):
        await new_job(api)
    body = await twice(api, lane, {
        "query": "query Page($first: Int!) { jobs(first: $first) { totalCount edges { cursor "
                 "node { jobId batch { batchName } } } pageInfo { hasNextPage endCursor } } }",
        "variables": {"first": 2}}, express=True)
    assert body["data"]["jobs"]["totalCount"] == 3
    assert body["data"]["jobs"]["pageInfo"]["hasNextPage"] is True


@pytest.mark.parametrize("caller", [ALICE, BOB, ANON, WORKER], ids=lambda c: c.user_id or "anon")
async def test_field_errors_carry_the_same_codes(api: Api, lane: list[bool],
                                                 caller: Caller) -> None:
    job = await new_job(api)
    body = await twice(api, lane, {"query": "query($id: ID!) { job(jobId: $id) { jobId } "
                                            "viewer { userId } }",
                                   "variables": {"id": job["jobId"]}},
                       caller=caller, express=True)
    if caller is ALICE:
        assert "errors" not in body
    else:  # private to alice: hidden, as if missing
        assert [e["extensions"]["code"] for e in body["errors"]] == ["NOT_FOUND"]
        assert body["data"]["viewer"]["userId"] == caller.user_id


async def test_refused_mutations_carry_the_same_codes(api: Api, lane: list[bool]) -> None:
    job = await new_job(api)
    cases = [
        ("mutation($id: ID!) { completeJob(jobId: $id) { jobId } }", {"id": job["jobId"]},
         "INVALID_TRANSITION"),
        ("mutation($id: ID!) { completeJob(jobId: $id) { jobId } }", {"id": "missing"},
         "NOT_FOUND"),
        ("mutation($id: ID!, $p: JobProgressInput!) { updateJobProgress(jobId: $id, "
         "progress: $p) { jobId } }", {"id": job["jobId"], "p": {"step": "s", "percent": 150}},
         "VALIDATION_ERROR"),
    ]
    for query, variables, code in cases:
        body = await twice(api, lane, {"query": query, "variables": variables}, express=True)
        assert body["data"] is None
        assert body["errors"][0]["extensions"]["code"] == code, body
    stored = await api.data("query($id: ID!) { job(jobId: $id) { status version } }",
                            {"id": job["jobId"]})
    assert stored["job"] == {"status": "PENDING", "version": 0}  # nothing changed


async def test_a_repeated_idempotent_create_is_the_same_both_ways(api: Api,
                                                                  lane: list[bool]) -> None:
    key = uuid.uuid4().hex
    body = await twice(api, lane, {
        "query": "mutation($key: String) { createJob(input: {jobType: \"pdf\", "
                 "idempotencyKey: $key}) { jobId status owner } }",
        "variables": {"key": key}, "extensions": {"client": "test"}}, express=True)
    assert body["data"]["createJob"]["owner"] == "alice"
    jobs = await api.data("{ jobs { totalCount } }")
    assert jobs["jobs"]["totalCount"] == 1


@pytest.mark.parametrize("accept", [None, "application/json",
                                    "application/graphql-response+json"])
@pytest.mark.parametrize("variables", [{}, {"first": "ten"}, {"first": None}])
async def test_request_errors_in_variables_are_the_same_both_ways(
        api: Api, lane: list[bool], accept: str | None, variables: dict[str, Any]) -> None:
    body = await twice(api, lane, {"query": "query($first: Int!) { jobs(first: $first) "
                                            "{ totalCount } }", "variables": variables},
                       accept=accept, express=True)
    assert "data" not in body
    assert body["errors"][0]["extensions"]["code"] == "GRAPHQL_VALIDATION_FAILED"


async def test_operation_names_pick_the_same_operation(api: Api, lane: list[bool]) -> None:
    query = "query A { viewer { userId } } query B { viewer { roles } }"
    body = await twice(api, lane, {"query": query, "operationName": "B"}, express=True)
    assert body == {"data": {"viewer": {"roles": []}}}
    # What graphql-core would refuse to pick is left to Strawberry's path, which refuses
    # it too: several operations and no name (as the GraphQL spec says), an unknown name.
    body = await twice(api, lane, {"query": query, "operationName": None}, express=False)
    assert "data" not in body
    assert body["errors"][0]["extensions"]["code"] == "GRAPHQL_VALIDATION_FAILED"
    assert "operation name" in body["errors"][0]["message"]
    body = await twice(api, lane, {"query": query, "operationName": "C"}, express=False)
    assert body["errors"][0]["extensions"]["code"] == "BAD_REQUEST"


@pytest.mark.parametrize("body, raw, content_type", [
    ({"query": "{ viewer { userId } }"}, None, "application/json; charset=utf-8"),
    ({"query": "{ viewer { userId } }", "variables": None, "operationName": None}, None,
     "application/json"),
], ids=["charset", "nulls"])
async def test_equivalent_bodies_take_the_lane(api: Api, lane: list[bool], body: Any,
                                               raw: bytes | None, content_type: str) -> None:
    answer = await twice(api, lane, body, raw=raw, content_type=content_type, express=True)
    assert answer == {"data": {"viewer": {"userId": "alice"}}}


@pytest.mark.parametrize("body, raw, content_type", [
    ({"query": "{ viewer { userId } }", "variables": []}, None, "application/json"),
    ({"query": "{ viewer { userId } }", "operationName": 1}, None, "application/json"),
    ([{"query": "{ viewer { userId } }"}], None, "application/json"),
    (None, b'{"query": "{ viewer { userId } }"', "application/json"),
    ({"query": "{ viewer { userId } }"}, None, "text/plain"),
    ({"query": "{ viewer { nope } }"}, None, "application/json"),
    ({"query": "subscription { jobsChanged { jobId } }"}, None, "application/json"),
], ids=["variables-list", "name-number", "batch", "broken-json", "text-plain",
        "invalid-document", "subscription"])
async def test_everything_else_takes_strawberrys_path(api: Api, lane: list[bool], body: Any,
                                                     raw: bytes | None,
                                                     content_type: str) -> None:
    await send(api, {"query": "{ viewer { userId } }"})  # the document is known and valid
    answer = await twice(api, lane, body, raw=raw, content_type=content_type, express=False)
    assert answer.get("errors") or isinstance(answer, list)


async def test_a_bad_token_is_refused_the_same_both_ways(api: Api, lane: list[bool]) -> None:
    await send(api, {"query": "{ viewer { userId } }"})
    headers = {"authorization": "Bearer not-a-token"}
    answers = [await api.client.post("/graphql", json={"query": "{ viewer { userId } }"},
                                     headers=headers) for _ in range(2)]
    assert [a.status_code for a in answers] == [401, 401]
    assert answers[0].json() == answers[1].json()
    assert answers[0].json()["errors"][0]["extensions"]["code"] == "UNAUTHENTICATED"


async def test_the_lane_records_operations_in_metrics(api: Api, lane: list[bool]) -> None:
    for _ in range(2):
        await send(api, {"query": "query Me { viewer { userId } }"})
    assert lane[-1] is True
    metrics = (await api.client.get("/metrics", headers=METRICS)).text
    line = next(line for line in metrics.splitlines()
                if line.startswith("jobgraph_graphql_requests_total")
                and 'operation_name="Me"' in line)
    assert line.endswith(" 2.0")
