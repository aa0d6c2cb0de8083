"""GraphQL over HTTP as the GraphQL-over-HTTP specification describes it: methods, media
types, status codes, body limits, GraphiQL and the health check."""

from __future__ import annotations

import gc
import json
import time
import tracemalloc
import uuid
from collections.abc import AsyncIterator
from typing import Any

import httpx
import jwt
import pytest

from graph.config.settings import Settings
from graph.server.app import create_app
from repository.database import Store
from tests.helpers.graphql import ADMIN, ALICE, ANON, WORKER, Api, Caller, make_settings

from .documents import CREATE_JOB, JOB, VIEWER

GRAPHQL_RESPONSE = "application/graphql-response+json"
JSON = "application/json"
SMALL_BODY_LIMIT = 2048

PARSE_ERROR = "{ viewer { userId "
VALIDATION_ERROR = "{ viewer { nope } }"


def media_type(response: httpx.Response) -> str:
    return response.headers["content-type"].split(";")[0].strip()


async def post(api: Api, body: Any, *, accept: str | None = None, caller: Caller = ALICE,
               content_type: str | None = None) -> httpx.Response:
    headers = caller.headers(api.settings)
    if accept is not None:
        headers["accept"] = accept
    if content_type is None:
        return await api.client.post("/graphql", json=body, headers=headers)
    headers["content-type"] = content_type
    return await api.client.post("/graphql", content=body, headers=headers)


@pytest.fixture(scope="module")
async def shared_api(mongo_uri: str) -> AsyncIterator[Api]:
    """One API for the tests that write nothing: they skip the per-test database set-up."""
    settings = make_settings(database=f"jobgraph_test_{uuid.uuid4().hex[:12]}")
    app = create_app(settings, mongodb_uri=mongo_uri)
    async with app.router.lifespan_context(app), httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app), base_url="http://test") as client:
        yield Api(client, settings)
        await app.state.store.client.drop_database(settings.database)


# -- methods and bodies ----------------------------------------------------------------------


async def test_get_runs_a_query_from_query_parameters(api: Api) -> None:
    # given: one job, and a document with two operations
    await api.data(CREATE_JOB, {"input": {"jobType": "pdf"}})
    document = ("query Who { viewer { userId } } "
                "query Count($n: Int) { jobs(first: $n) { totalCount edges { cursor } } }")

    # when: the second is chosen by name, with variables as JSON
    response = await api.client.get("/graphql", params={
        "query": document, "variables": json.dumps({"n": 0}), "operationName": "Count",
    }, headers=ALICE.headers(api.settings))

    # then
    assert response.status_code == 200
    assert media_type(response) == JSON
    assert response.json() == {"data": {"jobs": {"totalCount": 1, "edges": []}}}


@pytest.mark.parametrize("accept, status", [(GRAPHQL_RESPONSE, 400), (JSON, 200)])
async def test_several_operations_without_a_name_are_a_request_error(
        api: Api, accept: str, status: int) -> None:
    # given: a document with two operations and no operationName (the spec refuses to guess)
    document = "query Who { viewer { userId } } query Roles { viewer { roles } }"

    # when
    response = await post(api, {"query": document}, accept=accept)

    # then: nothing ran
    assert response.status_code == status
    body = response.json()
    assert "data" not in body
    assert body["errors"][0]["extensions"]["code"] == "GRAPHQL_VALIDATION_FAILED"
    assert "operation name" in body["errors"][0]["message"]


async def test_post_json_runs_a_mutation(api: Api, store: Store) -> None:
    response = await post(api, {"query": CREATE_JOB, "variables": {"input": {"jobType": "pdf"}},
                                "operationName": "CreateJob"})

    assert response.status_code == 200
    job = response.json()["data"]["createJob"]
    assert await store.jobs.collection.count_documents({"_id": job["jobId"]}) == 1


async def test_mutation_over_get_is_405_and_writes_nothing(api: Api, store: Store) -> None:
    response = await api.client.get("/graphql", params={
        "query": 'mutation { createJob(input: {jobType: "pdf"}) { jobId } }'},
        headers=ALICE.headers(api.settings))

    assert response.status_code == 405
    assert response.json()["errors"][0]["extensions"]["code"] == "BAD_REQUEST"
    assert await store.jobs.collection.count_documents({}) == 0


async def test_other_methods_are_405(shared_api: Api) -> None:
    response = await shared_api.client.put("/graphql", json={"query": "{ viewer { userId } }"})

    assert response.status_code == 405
    assert response.headers["Allow"] == "GET, POST"
    assert response.json()["errors"][0]["message"] == (
        "PUT is not allowed here; allowed: GET, POST")


async def test_head_is_not_offered_where_it_is_refused(shared_api: Api) -> None:
    head = await shared_api.client.head("/graphql")
    health = await shared_api.client.post("/healthz")

    assert head.status_code == 405 and head.headers["Allow"] == "GET, POST"
    assert health.status_code == 405 and health.headers["Allow"] == "GET, HEAD"


async def test_allow_lists_its_methods_in_one_order_whatever_the_process() -> None:
    """Starlette joins a set, whose order each process draws anew (PYTHONHASHSEED):
    replicas answered the same request with different bodies."""
    from starlette.exceptions import HTTPException
    from starlette.requests import Request

    from graph.server.error_bodies import routing_refusal

    request = Request({"type": "http", "method": "PUT", "path": "/graphql", "headers": []})
    for drawn in ("POST, HEAD, GET", "GET, POST, HEAD", "HEAD, GET, POST"):
        response = await routing_refusal(request, HTTPException(405, headers={"Allow": drawn}))
        assert response.headers["Allow"] == "GET, HEAD, POST"
        assert json.loads(bytes(response.body))["errors"][0]["message"].endswith(
            "allowed: GET, HEAD, POST")


async def test_graphql_over_get_and_post_skips_the_router_and_nothing_else(
        app: Any, api: Api, monkeypatch: pytest.MonkeyPatch) -> None:
    """GET and POST to /graphql go from our middleware straight to the view (``App``):
    the router is not entered, the request observer, CORS and the body limit are."""
    routed: list[str] = []
    through = app.router.middleware_stack

    async def spy(scope: Any, receive: Any, send: Any) -> None:
        routed.append(f"{scope.get('method')} {scope['path']}")
        await through(scope, receive, send)

    monkeypatch.setattr(app.router, "middleware_stack", spy)
    posted = await api.post(VIEWER, headers={"X-Request-ID": "lean-1"})
    got = await api.client.get("/graphql", params={"query": VIEWER},
                               headers=ALICE.headers(api.settings))
    put = await api.client.put("/graphql", json={"query": VIEWER})
    health = await api.client.get("/healthz")

    assert posted.status_code == got.status_code == 200, (posted.text, got.text)
    assert posted.json() == got.json() and posted.json()["data"]["viewer"]["userId"] == "alice"
    assert posted.headers["X-Request-ID"] == "lean-1"  # observed as before
    assert put.status_code == 405 and health.status_code == 200
    assert routed == ["PUT /graphql", "GET /healthz"]  # the spy sees what is routed


async def test_an_unexpected_failure_in_the_view_is_a_500_with_its_request_id(
        settings: Settings, mongo_uri: str, store: Store, monkeypatch: pytest.MonkeyPatch,
        caplog: pytest.LogCaptureFixture) -> None:
    """Starlette's answer, as on the router's way, and now with the request's id (its
    error middleware sat outside ours), so an operator finds its log lines."""
    async def broken(self: Any, request: Any, media: str) -> None:
        raise RuntimeError("a bug in the view")

    application = create_app(settings, mongodb_uri=mongo_uri)
    monkeypatch.setattr(application.graphql_view.express, "answer",  # type: ignore[union-attr]
                        broken.__get__(application.graphql_view.express))  # type: ignore[union-attr]
    async with application.router.lifespan_context(application):
        transport = httpx.ASGITransport(app=application, raise_app_exceptions=False)
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
            response = await client.post("/graphql", json={"query": VIEWER},
                                         headers={"X-Request-ID": "broken-1",
                                                  **ALICE.headers(settings)})

    assert response.status_code == 500
    assert response.text == "Internal Server Error"
    assert response.headers["X-Request-ID"] == "broken-1"
    assert any(record.getMessage() == "POST /graphql 500"
               and getattr(record, "request_id", None) == "broken-1"
               for record in caplog.records)


@pytest.mark.parametrize("content_type", ["text/plain", "application/xml"])
async def test_unsupported_content_type_is_400(shared_api: Api, content_type: str) -> None:
    response = await post(shared_api, b"{ viewer { userId } }", content_type=content_type)

    assert response.status_code == 400
    [error] = response.json()["errors"]
    assert error["extensions"] == {"code": "BAD_REQUEST"}
    assert "content type" in error["message"].lower()


@pytest.mark.parametrize(("body", "message"), [
    (b"{not json", "JSON"),
    (b"{}", "query"),
])
async def test_malformed_request_body_is_400(shared_api: Api, body: bytes, message: str) -> None:
    response = await post(shared_api, body, content_type=JSON)

    assert response.status_code == 400
    [error] = response.json()["errors"]
    assert error["extensions"] == {"code": "BAD_REQUEST"}
    assert message in error["message"]


# -- media types -----------------------------------------------------------------------------


@pytest.mark.parametrize(("accept", "expected"), [
    (GRAPHQL_RESPONSE, GRAPHQL_RESPONSE),
    (JSON, JSON),
    ("*/*", JSON),
    ("application/*", JSON),
    (f"{GRAPHQL_RESPONSE}, {JSON};q=0.9", GRAPHQL_RESPONSE),
    (f"{GRAPHQL_RESPONSE};q=0.5, {JSON}", JSON),
    (f"text/html;q=0.9, {GRAPHQL_RESPONSE}", GRAPHQL_RESPONSE),
])
async def test_response_media_type_follows_accept(
        shared_api: Api, accept: str, expected: str) -> None:
    response = await post(shared_api, {"query": VIEWER}, accept=accept)

    assert response.status_code == 200
    assert media_type(response) == expected
    assert response.json()["data"]["viewer"]["userId"] == "alice"


async def test_response_is_application_json_without_accept(shared_api: Api) -> None:
    request = shared_api.client.build_request("POST", "/graphql", json={"query": VIEWER})
    del request.headers["accept"]

    response = await shared_api.client.send(request)

    assert response.status_code == 200
    assert media_type(response) == JSON


@pytest.mark.parametrize("accept", ["text/plain", "application/xml", f"{JSON};q=0"])
async def test_unsupported_accept_is_406(shared_api: Api, accept: str) -> None:
    response = await post(shared_api, {"query": VIEWER}, accept=accept)

    assert response.status_code == 406
    [error] = response.json()["errors"]
    assert error["extensions"] == {"code": "NOT_ACCEPTABLE"}
    assert GRAPHQL_RESPONSE in error["message"]


@pytest.mark.slow
async def test_accept_headers_are_not_kept_after_their_requests(shared_api: Api) -> None:
    """Nothing bounds a header's size before the app (uvicorn with httptools took 3 MB
    Accept headers): keeping the last 256 distinct ones kept up to 256 of them alive for
    the process's life (breaker11: 300 of 3 MB left the API 790 MB larger than without)."""
    size, count = 64 * 1024, 300
    gc.collect()
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        for number in range(count):
            accept = f"{JSON}, x/{number}-" + "a" * size
            response = await post(shared_api, {"query": VIEWER}, accept=accept)
            assert response.status_code == 200
            del response, accept
        gc.collect()
        kept = tracemalloc.get_traced_memory()[0] - before
    finally:
        tracemalloc.stop()

    assert kept < count * size // 8, f"{kept} bytes still held after {count} requests"


REQUEST_ERRORS = [
    pytest.param({"query": PARSE_ERROR}, "GRAPHQL_PARSE_FAILED", id="parse"),
    pytest.param({"query": VALIDATION_ERROR}, "GRAPHQL_VALIDATION_FAILED", id="validation"),
    pytest.param({"query": JOB, "variables": {"jobId": None}}, "GRAPHQL_VALIDATION_FAILED",
                 id="variables"),
]


@pytest.mark.parametrize(("body", "code"), REQUEST_ERRORS)
async def test_request_error_is_400_without_data_under_graphql_response_json(
        shared_api: Api, body: dict[str, Any], code: str) -> None:
    response = await post(shared_api, body, accept=GRAPHQL_RESPONSE)

    assert response.status_code == 400
    assert media_type(response) == GRAPHQL_RESPONSE
    payload = response.json()
    assert "data" not in payload
    assert [error["extensions"]["code"] for error in payload["errors"]] == [code]


@pytest.mark.parametrize(("body", "code"), REQUEST_ERRORS)
async def test_request_error_is_200_under_application_json(
        shared_api: Api, body: dict[str, Any], code: str) -> None:
    response = await post(shared_api, body, accept=JSON)

    assert response.status_code == 200
    assert media_type(response) == JSON
    payload = response.json()
    assert "data" not in payload
    assert [error["extensions"]["code"] for error in payload["errors"]] == [code]


async def test_field_error_is_200_with_data_under_graphql_response_json(shared_api: Api) -> None:
    response = await post(shared_api, {"query": JOB, "variables": {"jobId": "missing"}},
                          accept=GRAPHQL_RESPONSE)

    assert response.status_code == 200
    assert media_type(response) == GRAPHQL_RESPONSE
    payload = response.json()
    assert payload["data"] == {"job": None}
    assert payload["errors"][0]["extensions"]["code"] == "NOT_FOUND"


# -- body size -------------------------------------------------------------------------------


@pytest.fixture
async def small_client(mongo_uri: str, database_name: str, store: Store
                       ) -> AsyncIterator[httpx.AsyncClient]:
    """An API that accepts request bodies of at most SMALL_BODY_LIMIT bytes."""
    settings = make_settings(database=database_name, max_body_bytes=SMALL_BODY_LIMIT)
    app = create_app(settings, mongodb_uri=mongo_uri)
    headers = ALICE.headers(settings)
    async with app.router.lifespan_context(app), httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app), base_url="http://test",
            headers=headers) as client:
        yield client


def create_job_body(size: int) -> bytes:
    """A createJob request body of exactly ``size`` bytes."""
    def body(filler: str) -> bytes:
        return json.dumps({"query": CREATE_JOB, "variables": {
            "input": {"jobType": "pdf", "parameters": {"filler": filler}}}}).encode()

    padding = size - len(body(""))
    assert padding >= 0, "the limit is too small for a createJob request"
    return body("x" * padding)


async def test_request_body_at_the_limit_is_accepted(
        small_client: httpx.AsyncClient, store: Store) -> None:
    response = await small_client.post("/graphql", content=create_job_body(SMALL_BODY_LIMIT),
                                       headers={"content-type": JSON})

    assert response.status_code == 200, response.text
    assert await store.jobs.collection.count_documents({}) == 1


async def test_request_body_above_the_limit_is_413_and_writes_nothing(
        small_client: httpx.AsyncClient, store: Store) -> None:
    response = await small_client.post("/graphql", content=create_job_body(SMALL_BODY_LIMIT + 1),
                                       headers={"content-type": JSON})

    assert response.status_code == 413
    [error] = response.json()["errors"]
    assert error["extensions"] == {"code": "PAYLOAD_TOO_LARGE"}
    assert str(SMALL_BODY_LIMIT) in error["message"]
    assert await store.jobs.collection.count_documents({}) == 0


async def test_streamed_request_body_above_the_limit_is_413_and_writes_nothing(
        small_client: httpx.AsyncClient, store: Store) -> None:
    # given: a body sent in chunks, without a Content-Length to check up front
    body = create_job_body(SMALL_BODY_LIMIT * 2)

    async def chunks() -> AsyncIterator[bytes]:
        for start in range(0, len(body), 512):
            yield body[start:start + 512]

    response = await small_client.post("/graphql", content=chunks(),
                                       headers={"content-type": JSON})

    assert response.status_code == 413
    assert response.json()["errors"][0]["extensions"] == {"code": "PAYLOAD_TOO_LARGE"}
    assert await store.jobs.collection.count_documents({}) == 0


async def test_default_body_limit_refuses_a_larger_body(
        api: Api, settings: Settings, store: Store) -> None:
    response = await api.client.post(
        "/graphql", content=create_job_body(settings.max_body_bytes + 1),
        headers={"content-type": JSON, **ALICE.headers(settings)})

    assert response.status_code == 413
    assert response.json()["errors"][0]["extensions"] == {"code": "PAYLOAD_TOO_LARGE"}
    assert await store.jobs.collection.count_documents({}) == 0


# -- identity --------------------------------------------------------------------------------


@pytest.mark.parametrize(("caller", "expected"), [
    (ANON, {"userId": None, "roles": [], "anonymous": True}),
    (ALICE, {"userId": "alice", "roles": [], "anonymous": False}),
    (WORKER, {"userId": "worker-1", "roles": ["worker"], "anonymous": False}),
    (ADMIN, {"userId": "root", "roles": ["admin"], "anonymous": False}),
])
async def test_viewer_is_who_the_token_says(
        shared_api: Api, caller: Caller, expected: dict[str, Any]) -> None:
    data = await shared_api.data(VIEWER, as_=caller)

    assert data == {"viewer": {"__typename": "Viewer", **expected}}


@pytest.mark.parametrize("authorization", [
    "Bearer not-a-jwt",
    "Basic YWxpY2U6c2VjcmV0",
    "Bearer <expired>",
])
async def test_bad_credentials_are_401_unauthenticated(
        shared_api: Api, authorization: str) -> None:
    if authorization == "Bearer <expired>":
        now = int(time.time())
        token = jwt.encode({"sub": "alice", "iat": now - 120, "exp": now - 60},
                           shared_api.settings.jwt_secret, algorithm="HS256")
        authorization = f"Bearer {token}"

    response = await shared_api.client.post("/graphql", json={"query": VIEWER},
                                     headers={"authorization": authorization})

    assert response.status_code == 401
    assert response.headers["www-authenticate"].startswith("Bearer")
    [error] = response.json()["errors"]
    assert error["extensions"] == {"code": "UNAUTHENTICATED"}


# -- GraphiQL and health ---------------------------------------------------------------------


async def test_graphiql_is_served_to_a_browser(shared_api: Api) -> None:
    response = await shared_api.client.get("/graphql", headers={
        "accept": "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8"})

    assert response.status_code == 200
    assert media_type(response) == "text/html"
    assert "graphiql" in response.text.lower()


async def test_graphiql_is_not_served_to_an_api_client(shared_api: Api) -> None:
    response = await shared_api.client.get("/graphql", headers={"accept": JSON})

    assert response.status_code == 400
    assert "html" not in media_type(response)


async def test_healthz_answers_200(shared_api: Api) -> None:
    response = await shared_api.client.get("/healthz")

    assert response.status_code == 200
    assert response.json()["status"] == "ok"


@pytest.mark.parametrize("method", ["PUT", "PATCH", "DELETE", "OPTIONS", "TRACE", "PURGE"])
async def test_other_methods_get_the_json_error_body_and_allow(
    shared_api: Api, method: str
) -> None:
    response = await shared_api.client.request(
        method, "/graphql", json={"query": "{ viewer { userId } }"},
        headers={"Accept": "application/json"})

    assert response.status_code == 405
    assert media_type(response) == JSON
    [error] = response.json()["errors"]
    assert error["extensions"] == {"code": "BAD_REQUEST"}
    assert method in error["message"]
    assert {part.strip() for part in response.headers["allow"].split(",")} >= {"GET", "POST"}


@pytest.mark.parametrize(("method", "path", "status", "code"), [
    ("GET", "/nothing-here", 404, "NOT_FOUND"),
    ("POST", "/metrics", 405, "BAD_REQUEST"),
    ("DELETE", "/healthz", 405, "BAD_REQUEST"),
])
async def test_routing_refusals_elsewhere_are_json_too(
    shared_api: Api, method: str, path: str, status: int, code: str
) -> None:
    response = await shared_api.client.request(method, path)

    assert response.status_code == status
    assert response.json()["errors"][0]["extensions"] == {"code": code}
