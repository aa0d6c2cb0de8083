"""Subscriptions over HTTP: Server-Sent Events (the npm graphql-sse client, distinct
connections mode) and multipart/mixed (Apollo Client's HttpLink). Access control, query
limits, token expiry and the subscription caps apply to them as to WebSockets; where no
stream is asked for, the answer is a coded 406, never INTERNAL_SERVER_ERROR."""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import httpx
import pytest

from tests.helpers.graphql import ALICE, BOB, METRICS, WORKER, Api, make_settings
from tests.helpers.live import DEADLINE, LiveServer, live_server
from tests.helpers.node import node_script
from tests.helpers.waiting import eventually

from .conftest import CLAIM, LOG, create_job, token

NODE = pytest.mark.usefixtures("node_clients")  # skips (fails under CI) without Node

FOLLOW = "subscription($id: ID!) { jobChanged(jobId: $id) { jobId status version logSeq } }"
MULTIPART = 'multipart/mixed;boundary="graphql";subscriptionSpec=1.0,application/json'
SET_ACCESS = """mutation($id: ID!, $ac: AccessControlInput!) {
  setJobAccess(jobId: $id, accessControl: $ac) { version } }"""


def sse(server: LiveServer, query: str, bearer: str | None, **variables: Any) -> Any:
    return node_script("graphql-sse-subscribe.mjs", {
        "url": f"{server.url}/graphql", "token": bearer, "query": query,
        "variables": variables})


def codes(line: dict[str, Any]) -> list[str]:
    errors = (line.get("next") or line.get("error") or {}).get("errors") or []
    return [error["extensions"]["code"] for error in errors]


def followed(line: dict[str, Any]) -> Any:
    """The job of a jobChanged event: graphql-sse prints the result, Apollo its data."""
    result = line.get("next") or {}
    return (result.get("data") or result).get("jobChanged")


@pytest.fixture
def no_tracebacks(caplog: pytest.LogCaptureFixture) -> Any:
    """After the test: nothing was logged at ERROR (an unexpected error is logged there,
    with its traceback)."""
    caplog.set_level(logging.INFO)
    yield caplog
    assert [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR] == []


@asynccontextmanager
async def server_with(mongo_uri: str, database_name: str, **overrides: Any
                      ) -> AsyncIterator[tuple[LiveServer, Api]]:
    settings = make_settings(database=database_name, **overrides)
    async with live_server(settings, mongo_uri) as server, httpx.AsyncClient(
            base_url=server.url, timeout=DEADLINE) as client:
        yield server, Api(client, settings)


async def active_subscriptions(http: Api) -> float:
    text = (await http.client.get("/metrics", headers=METRICS)).text
    [line] = [line for line in text.splitlines()
              if line.startswith("jobgraph_subscriptions_active ")]
    return float(line.split()[1])


@NODE
async def test_graphql_sse_streams_a_subscription_and_answers_a_query(
    live: LiveServer, http: Api, settings: Any, no_tracebacks: Any
) -> None:
    job_id = await create_job(http)
    async with sse(live, FOLLOW, token(settings), id=job_id) as client:
        first = await client.next()
        await http.data(LOG, {"id": job_id, "m": "one"})
        await http.data(CLAIM, {"types": ["pdf"]}, as_=WORKER)
        lines = await client.until(lambda line: line["next"]["data"]["jobChanged"]["version"] == 2)
        assert await active_subscriptions(http) == 1
    assert [line["next"]["data"]["jobChanged"] for line in (first, *lines)] == [
        {"jobId": job_id, "status": "PENDING", "version": 0, "logSeq": 0},
        {"jobId": job_id, "status": "PENDING", "version": 1, "logSeq": 1},
        {"jobId": job_id, "status": "PROCESSING", "version": 2, "logSeq": 1},
    ]
    # and once the client has gone, so has its subscription
    assert await eventually(lambda: _none_active(http))
    # and a query over SSE is one event, then the end of the stream
    async with sse(live, "query($id: ID!) { job(jobId: $id) { status } }", token(settings),
                   id=job_id) as client:
        assert await client.until(lambda line: "complete" in line) == [
            {"next": {"data": {"job": {"status": "PROCESSING"}}}}, {"complete": True}]
    # and the stream was logged as one request, when it ended
    def stream_lines() -> list[Any]:
        return [(r.transport, r.status, r.error_codes) for r in no_tracebacks.records
                if getattr(r, "operation_type", None) == "subscription"]

    assert await eventually(stream_lines) == [("http", 200, [])]


async def _none_active(http: Api) -> bool:
    return await active_subscriptions(http) == 0


@pytest.mark.parametrize("method", ["POST", "GET"])
@pytest.mark.parametrize("accept", [None, "application/json",
                                    "application/graphql-response+json", "*/*"])
async def test_a_subscription_without_a_stream_is_refused_with_a_code(
    live: LiveServer, http: Api, settings: Any, no_tracebacks: Any, method: str,
    accept: str | None
) -> None:
    job_id = await create_job(http)
    body = {"query": FOLLOW, "variables": {"id": job_id}}
    headers = ALICE.headers(settings) | ({"Accept": accept} if accept else {})
    if method == "POST":
        response = await http.client.post("/graphql", json=body, headers=headers)
    else:
        response = await http.client.get("/graphql", headers=headers, params={
            "query": FOLLOW, "variables": json.dumps(body["variables"])})
    assert response.status_code == 406
    [error] = response.json()["errors"]
    assert error["extensions"] == {"code": "UNSUPPORTED_TRANSPORT"}
    assert "text/event-stream" in error["message"]


@pytest.mark.parametrize(("method", "accept", "document"), [
    ("POST", "multipart/mixed;subscriptionSpec=1.0", "query { viewer { userId } }"),
    ("POST", "multipart/mixed;subscriptionSpec=1.0",
     'mutation { createJob(input: {jobType: "x"}) { jobId } }'),
    ("GET", "text/event-stream", 'mutation { createJob(input: {jobType: "x"}) { jobId } }'),
])
async def test_an_operation_a_stream_does_not_carry_gets_a_code(
    live: LiveServer, http: Api, settings: Any, no_tracebacks: Any, method: str, accept: str,
    document: str
) -> None:
    headers = ALICE.headers(settings) | {"Accept": accept}
    arguments = {"json": {"query": document}} if method == "POST" else {
        "params": {"query": document}}
    response = await http.client.request(method, "/graphql", headers=headers, **arguments)
    assert response.status_code == 200
    assert "UNSUPPORTED_TRANSPORT" in response.text
    assert "INTERNAL_SERVER_ERROR" not in response.text
    assert (await http.data("{ jobs { totalCount } }"))["jobs"]["totalCount"] == 0


SEVERAL = ("query Who { viewer { userId } } subscription Follow { jobsChanged { jobId } } "
           'mutation Make { createJob(input: {jobType: "x"}) { jobId } }')


@pytest.mark.parametrize(("method", "accept", "document"), [
    ("POST", "multipart/mixed;subscriptionSpec=1.0", SEVERAL),  # a query first
    ("POST", "text/event-stream", SEVERAL),
    ("GET", "text/event-stream", SEVERAL),
    ("POST", "application/json", SEVERAL.replace("query Who { viewer { userId } }",
                                                 "subscription Who { jobChanged(jobId: 1) "
                                                 "{ jobId } }")),
    ("GET", "application/json", SEVERAL.replace("query Who { viewer { userId } }",
                                                'mutation Who { cancelJob(jobId: 1, reason: "x")'
                                                " { jobId } }")),
])
async def test_several_operations_and_no_name_are_refused_for_that_on_every_transport(
    live: LiveServer, http: Api, settings: Any, no_tracebacks: Any, method: str, accept: str,
    document: str
) -> None:
    """As the GraphQL spec says, not for the type of the first operation (which no one
    asked for: "queries are not allowed over this transport")."""
    headers = ALICE.headers(settings) | {"Accept": accept}
    arguments = {"json": {"query": document}} if method == "POST" else {
        "params": {"query": document}}
    response = await http.client.request(method, "/graphql", headers=headers, **arguments)
    assert "GRAPHQL_VALIDATION_FAILED" in response.text, response.text
    assert "Must provide operation name" in response.text, response.text
    assert "UNSUPPORTED_TRANSPORT" not in response.text
    assert (await http.data("{ jobs { totalCount } }"))["jobs"]["totalCount"] == 0


@pytest.mark.parametrize("accept", [
    MULTIPART,  # Apollo's, for subscriptions
    "application/graphql-response+json, application/graphql+json, application/json, "
    "text/event-stream, multipart/mixed",  # urql's, for every operation
])
async def test_a_query_is_answered_as_json_when_the_client_takes_json(
    live: LiveServer, http: Api, settings: Any, no_tracebacks: Any, accept: str
) -> None:
    response = await http.client.post("/graphql", json={"query": "{ viewer { userId } }"},
                                      headers=ALICE.headers(settings) | {"Accept": accept})
    assert response.status_code == 200
    assert response.headers["content-type"].startswith(
        "application/graphql-response+json" if accept.startswith("application/graphql")
        else "application/json")
    assert response.json() == {"data": {"viewer": {"userId": "alice"}}}


@NODE
async def test_access_control_applies_to_streams(
    live: LiveServer, http: Api, settings: Any, no_tracebacks: Any
) -> None:
    private = await create_job(http)  # alice's
    # a job bob may not read looks missing, over SSE as over a socket
    async with sse(live, FOLLOW, token(settings, BOB), id=private) as client:
        assert [codes(line) for line in await client.until(lambda line: "complete" in line)
                ] == [["NOT_FOUND"], []]
    # a bad token is refused before any stream starts
    async with sse(live, FOLLOW, "not-a-token", id=private) as client:
        refused = await client.next()
    assert "401" in refused["error"]["message"]
    # and a reader who loses access hears NOT_FOUND, then nothing more
    shared = await create_job(http, accessControl={"readAccess": ["bob"]})
    async with sse(live, FOLLOW, token(settings, BOB), id=shared) as client:
        assert (await client.next())["next"]["data"]["jobChanged"]["jobId"] == shared
        await http.data(SET_ACCESS, {"id": shared, "ac": {"adminAccess": ["alice"]}})
        await http.data(LOG, {"id": shared, "m": "after revocation"})
        assert [codes(line) for line in await client.until(lambda line: "complete" in line)
                ] == [["NOT_FOUND"], []]


@NODE
async def test_query_limits_apply_to_streams(
    mongo_uri: str, store: Any, database_name: str, no_tracebacks: Any
) -> None:
    deep = "subscription { jobsChanged { job { batch { jobs { edges { node { jobId } } } } } } }"
    async with server_with(mongo_uri, database_name, max_query_depth=3) as (server, http), sse(
            server, deep, token(http.settings)) as client:
        lines = await client.until(lambda line: "complete" in line)
    assert [codes(line) for line in lines] == [["QUERY_TOO_COMPLEX"], []]


@pytest.mark.slow
@NODE
@pytest.mark.parametrize("client", ["graphql-sse", "apollo-multipart"])
async def test_a_stream_ends_when_its_token_expires(
    live: LiveServer, http: Api, settings: Any, no_tracebacks: Any, client: str
) -> None:
    job_id = await create_job(http)
    short = token(settings, ALICE, ttl=8)  # long enough to start under load
    if client == "graphql-sse":
        script = sse(live, FOLLOW, short, id=job_id)
    else:
        script = node_script("apollo.mjs", {
            "http": f"{live.url}/graphql", "ws": live.ws_url, "token": short,
            "jobId": job_id, "jobType": "apollo", "subscriptions": "http"})
    async with script as subscriber:
        lines = await subscriber.until(lambda line: "error" in line or codes(line))
    # the current state first, then the end: UNAUTHENTICATED, the token expired
    assert any(followed(line) for line in lines[:-1]), lines
    assert codes(lines[-1]) == ["UNAUTHENTICATED"]
    assert "expired" in json.dumps(lines[-1])
    assert await eventually(lambda: _none_active(http))


@NODE
async def test_the_per_process_cap_counts_streams_and_frees_ended_ones(
    mongo_uri: str, store: Any, database_name: str, no_tracebacks: Any
) -> None:
    async with server_with(mongo_uri, database_name,
                           max_subscriptions_per_process=2) as (server, http):
        job_id = await create_job(http)
        bearer = token(http.settings)
        async with sse(server, FOLLOW, bearer, id=job_id) as first, sse(
                server, FOLLOW, bearer, id=job_id) as second:
            for held in (first, second):
                assert "next" in await held.next()
            async with sse(server, FOLLOW, bearer, id=job_id) as third:
                refused = await third.until(lambda line: "complete" in line)
            assert [codes(line) for line in refused] == [["TOO_MANY_SUBSCRIPTIONS"], []]
        # once those two clients are gone, a stream gets a place again
        assert await eventually(lambda: _none_active(http))
        async with sse(server, FOLLOW, bearer, id=job_id) as again:
            assert "next" in await again.next()


@NODE
async def test_one_request_holds_one_subscription_within_the_connection_cap(
    mongo_uri: str, store: Any, database_name: str, no_tracebacks: Any
) -> None:
    async with server_with(mongo_uri, database_name,
                           max_subscriptions_per_connection=1) as (server, http):
        job_id = await create_job(http)
        # a stream is one subscription of its connection: within a cap of one
        async with sse(server, FOLLOW, token(http.settings), id=job_id) as client:
            assert "next" in await client.next()
        # and one request cannot carry more (a batch of subscriptions is refused)
        body = [{"query": FOLLOW, "variables": {"id": job_id}}] * 2
        for accept in ("text/event-stream", MULTIPART):
            response = await http.client.post("/graphql", json=body, headers={
                "Accept": accept, **ALICE.headers(http.settings)})
            assert response.status_code == 400
            assert response.json()["errors"][0]["extensions"]["code"] == "BAD_REQUEST"


SHAPES = {
    "query": "query Me { viewer { userId } }",
    "mutation": 'mutation Make { createJob(input: {jobType: "shape"}) { jobId } }',
    "subscription": "subscription Any { jobsChanged(initial: 1) { kind } }",
    "syntax error": "subscription {",
    "invalid": "subscription { jobsChanged { nope } }",
    "two operations, no name":
        "query A { viewer { userId } } subscription B { jobsChanged { kind } }",
}
ACCEPTS = [None, "application/json", "application/graphql-response+json", "*/*", "text/html",
           "text/event-stream", MULTIPART, "multipart/mixed;subscriptionSpec=1.0",
           "application/graphql-response+json, application/json, text/event-stream, "
           "multipart/mixed", "image/png"]


async def test_no_request_shape_yields_an_internal_error(
    live: LiveServer, http: Api, settings: Any, no_tracebacks: Any
) -> None:
    """Every operation kind, by GET and POST, under every Accept: a coded answer."""
    answers = {}
    for name, document in SHAPES.items():
        for method in ("GET", "POST"):
            for accept in ACCEPTS:
                headers = ALICE.headers(settings) | ({"Accept": accept} if accept else {})
                arguments = ({"params": {"query": document}} if method == "GET"
                             else {"json": {"query": document}})
                try:
                    async with http.client.stream(method, "/graphql", headers=headers,
                                                  **arguments) as response:
                        text = ""
                        async for chunk in response.aiter_text():
                            text += chunk
                            if '"data"' in text or '"errors"' in text:
                                break
                    answers[name, method, accept] = response.status_code, text
                except httpx.HTTPError as exc:
                    answers[name, method, accept] = 599, repr(exc)
    internal = {shape: answer for shape, answer in answers.items()
                if answer[0] >= 500 or "INTERNAL_SERVER_ERROR" in answer[1]}
    assert internal == {}
    uncoded = {shape: answer for shape, answer in answers.items()
               if answer[0] >= 400 and '"code"' not in answer[1]}
    assert uncoded == {}


QUERY = "query Me { viewer { userId } }"
MUTATION = 'mutation Make { createJob(input: {jobType: "sweep"}) { jobId } }'
SUBSCRIPTION = "subscription Any { jobsChanged(initial: 1) { kind } }"
BODIES: dict[str, Any] = {
    "batch of queries": [{"query": QUERY}, {"query": QUERY}],
    "batch with a mutation": [{"query": QUERY}, {"query": MUTATION}],
    "batch with a subscription": [{"query": SUBSCRIPTION}],
    "batch with a syntax error": [{"query": "query {"}],
    "empty batch": [],
    "batch of junk": [1, "x", None, [], {}],
    "query not a string": {"query": 5},
    "query a list": {"query": [QUERY]},
    "query null": {"query": None},
    "no query": {"variables": {}},
    "variables a list": {"query": QUERY, "variables": [1]},
    "variables a string": {"query": QUERY, "variables": "{}"},
    "operationName an object": {"query": QUERY, "operationName": {}},
    "unknown operationName": {"query": QUERY, "operationName": "Nope"},
    "extensions a list": {"query": QUERY, "extensions": []},
    "persisted query": {"extensions": {"persistedQuery": {"version": 1, "sha256Hash": "0" * 64}}},
    "edge date": {"query": "query($d: DateTime) { jobs(filter: {createdAfter: $d}) "
                           "{ totalCount } }", "variables": {"d": "0001-01-01T00:00:00+14:00"}},
    "edge date literal": {"query": '{ jobs(filter: {createdBefore: "9999-12-31T23:59:59-14:00"})'
                                   " { totalCount } }"},
}
CONTENT_TYPES = [None, "application/json", "application/json; charset=utf-8",
                 "application/graphql", "application/graphql-response+json", "text/plain",
                 "application/x-www-form-urlencoded", "multipart/form-data; boundary=x",
                 "multipart/form-data", "application/octet-stream", "nonsense"]
METHODS = ["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS", "TRACE", "PURGE"]


async def answer(http: Api, method: str, headers: dict[str, str], **arguments: Any
                 ) -> tuple[int, str]:
    """Status and the start of the body (a stream is read until its first result)."""
    text = ""
    try:
        async with asyncio.timeout(DEADLINE), http.client.stream(
                method, "/graphql", headers=headers, **arguments) as response:
            async for chunk in response.aiter_text():
                text += chunk
                if '"data"' in text or '"errors"' in text:
                    break
            return response.status_code, text
    except TimeoutError:
        return 598, f"no result within {DEADLINE} s: {text[:200]!r}"
    except httpx.HTTPError as exc:
        return 599, repr(exc)


def refused_wrongly(answers: dict[Any, tuple[int, str]]) -> dict[Any, tuple[int, str]]:
    """Answers that are internal errors, or refusals without a code."""
    return {shape: (status, text[:300]) for shape, (status, text) in answers.items()
            if status >= 500 or "INTERNAL_SERVER_ERROR" in text
            or (status >= 400 and '"code"' not in text and shape[0] != "HEAD")}


async def test_no_method_body_content_type_or_batch_yields_an_internal_error(
    live: LiveServer, http: Api, settings: Any, no_tracebacks: Any
) -> None:
    """Every method; bodies of every wrong shape and batches, with every content type and
    with the Accept values that pick another path through the server; GET with each."""
    auth = ALICE.headers(settings)
    await create_job(http)  # so that each subscription has a first event to send at once
    answers: dict[Any, tuple[int, str]] = {}
    for method in METHODS:
        answers[method, "query"] = await answer(http, method, auth, json={"query": QUERY})
    for name, body in BODIES.items():
        raw = json.dumps(body)
        for content_type in CONTENT_TYPES:
            for accept in (None, "application/graphql-response+json", "text/event-stream",
                           MULTIPART):
                headers = auth | ({"Content-Type": content_type} if content_type else {}) \
                    | ({"Accept": accept} if accept else {})
                answers["POST", name, content_type, accept] = await answer(
                    http, "POST", headers, content=raw)
        params = ({key: value if isinstance(value, str) else json.dumps(value)
                   for key, value in body.items()} if isinstance(body, dict) else
                  {"query": raw})
        for accept in (None, "text/event-stream"):
            answers["GET", name, accept] = await answer(
                http, "GET", auth | ({"Accept": accept} if accept else {}), params=params)
    # GET with a mutation and a subscription, under each Accept
    for document in (MUTATION, SUBSCRIPTION):
        for accept in ACCEPTS:
            answers["GET", document, accept] = await answer(
                http, "GET", auth | ({"Accept": accept} if accept else {}),
                params={"query": document})
    assert refused_wrongly(answers) == {}
    # nothing was created by a GET or by a refused request
    assert (await http.data('{ jobs(filter: {jobType: "sweep"}) { totalCount } }')
            )["jobs"]["totalCount"] == sum(
        1 for shape, (status, text) in answers.items()
        if "createJob" in text and '"jobId"' in text and shape[0] == "POST")
