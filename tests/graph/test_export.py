"""GET /export/jobs and /export/documentation-jobs with a real HTTP client (httpx) against
a served app: NDJSON and CSV (parsed by Python's csv module), the list's filter given as
JSON and refused as the API refuses it, each caller's own jobs only, and a client that
leaves mid-stream stops the cursor (killed, not read to its end)."""

from __future__ import annotations

import asyncio
import csv
import io
import json
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from pymongo import monitoring

from graph.server import export as export_module
from repository.access import Principal
from repository.database import Store
from repository.job_documents import job_to_document
from repository.models import AccessControl, AccessVisibility
from tests.helpers.graphql import ADMIN, ALICE, BOB, WORKER, Api, Caller
from tests.helpers.live import DEADLINE, LiveServer, live_server
from tests.helpers.waiting import eventually

CREATE = """mutation($input: CreateJobInput!) { createJob(input: $input) { jobId } }"""
CREATE_DOC = """mutation($input: CreateDocumentationJobInput!) {
  createDocumentationJob(input: $input) { jobId } }"""
CLAIM = """mutation($types: [String!]) { claimJob(jobTypes: $types) { jobId } }"""
FAIL = """mutation($id: ID!) { failJob(jobId: $id, error: {code: "E1", message: "m"},
  retryable: false) { status } }"""
CAROL = Caller("carol")
ANON = Caller()


@pytest.fixture
async def live(settings: Any, mongo_uri: str, store: Store) -> AsyncIterator[LiveServer]:
    async with live_server(settings, mongo_uri) as server:
        yield server


@pytest.fixture
async def http(live: LiveServer, settings: Any) -> AsyncIterator[Api]:
    async with httpx.AsyncClient(base_url=live.url, timeout=DEADLINE) as client:
        yield Api(client, settings)


async def create(http: Api, job_type: str, as_: Caller = ALICE, **fields: Any) -> str:
    data = await http.data(CREATE, {"input": {"jobType": job_type, **fields}}, as_=as_)
    return data["createJob"]["jobId"]


async def export(http: Api, path: str = "/export/jobs", *, as_: Caller = ALICE,
                 params: dict[str, str] | None = None, accept: str | None = None
                 ) -> httpx.Response:
    headers = as_.headers(http.settings)
    if accept is not None:
        headers["Accept"] = accept
    return await http.client.get(path, params=params, headers=headers)


def ndjson(response: httpx.Response) -> list[dict[str, Any]]:
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("application/x-ndjson")
    return [json.loads(line) for line in response.text.splitlines()]


def csv_rows(response: httpx.Response) -> list[dict[str, str]]:
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("text/csv")
    return list(csv.DictReader(io.StringIO(response.text, newline="")))


async def test_each_caller_exports_what_the_list_shows_them(http: Api) -> None:
    # given jobs of alice (one public, one shared with bob), bob's own, and carol's
    public = await create(http, "exp", accessControl={"visibility": "PUBLIC"})
    shared = await create(http, "exp", accessControl={"readAccess": ["bob"]})
    private = await create(http, "exp")
    bobs = await create(http, "exp", as_=BOB)
    carols = await create(http, "exp", as_=CAROL)
    other_type = await create(http, "other")
    selected = {"filter": json.dumps({"jobType": "exp"})}
    expected = [
        (ALICE, [private, shared, public]), (BOB, [bobs, shared, public]),
        (CAROL, [carols, public]), (ANON, [public]),
        (ADMIN, [carols, bobs, private, shared, public]), (WORKER, [public]),
    ]
    for caller, ids in expected:
        rows = ndjson(await export(http, as_=caller, params=selected))
        # then newest first, exactly what `jobs` lists for them
        assert [row["jobId"] for row in rows] == ids, caller
        listed = await http.data("""query { jobs(filter: {jobType: "exp"}, first: 100) {
          edges { node { jobId } } } }""", as_=caller)
        assert [e["node"]["jobId"] for e in listed["jobs"]["edges"]] == ids
    everything = ndjson(await export(http, as_=ADMIN))
    assert other_type in {row["jobId"] for row in everything}


async def test_a_csv_export_parses_with_pythons_csv_module(http: Api) -> None:
    job_id = await create(http, "csv", parameters={"path": "/a,b \"quoted\"\nnext line"},
                          priority=7)
    assert (await http.data(CLAIM, {"types": ["csv"]}, as_=WORKER))["claimJob"]["jobId"] == job_id
    await http.data(FAIL, {"id": job_id}, as_=WORKER)
    await create(http, "csv")
    selected = {"filter": json.dumps({"jobType": "csv", "status": "FAILED"})}
    by_param = csv_rows(await export(http, params={**selected, "format": "csv"}))
    by_accept = csv_rows(await export(http, params=selected, accept="text/csv"))
    assert by_param == by_accept
    [row] = by_param
    assert row["jobId"] == job_id and row["status"] == "FAILED" and row["priority"] == "7"
    assert row["errorCode"] == "E1" and row["claimedBy"] == "worker-1"
    assert row["attempts"] == "1" and row["batchId"] == ""
    assert json.loads(row["parameters"]) == {"path": "/a,b \"quoted\"\nnext line"}
    assert row["createdAt"].endswith("+00:00")
    # nothing matched: the header alone
    empty = await export(http, params={"filter": json.dumps({"jobType": "none"}),
                                       "format": "csv"})
    assert csv_rows(empty) == [] and empty.text.startswith("jobId,jobType,status")


async def test_csv_cells_never_start_a_spreadsheet_formula(http: Api) -> None:
    """A worker's error message like ``=HYPERLINK(...)`` must stay text when an operator
    opens the CSV in a spreadsheet: such cells get a leading ``'``; NDJSON keeps them."""
    message = '=HYPERLINK("http://evil.example","x")'
    job_id = await create(http, "formula", priority=-5)
    await http.data(CLAIM, {"types": ["formula"]}, as_=WORKER)
    await http.data("""mutation($id: ID!, $m: String!) { failJob(jobId: $id,
        error: {code: "E", message: $m}, retryable: false) { status } }""",
                    {"id": job_id, "m": message}, as_=WORKER)
    selected = {"filter": json.dumps({"jobType": "formula"})}

    [row] = csv_rows(await export(http, params={**selected, "format": "csv"}))
    [line] = ndjson(await export(http, params=selected))

    assert row["errorMessage"] == "'" + message
    assert row["priority"] == "-5"  # a number is no formula
    assert line["errorMessage"] == message


async def test_documentation_jobs_export_with_their_filter(http: Api) -> None:
    for name in ("repo-a", "repo-b"):
        await http.data(CREATE_DOC, {"input": {"repositoryPath": f"/src/{name}",
                                               "repositoryName": name,
                                               "outputDirectory": "/out"}})
    rows = ndjson(await export(http, "/export/documentation-jobs",
                               params={"filter": json.dumps({"repositoryName": "repo-b"})}))
    assert [(row["repositoryName"], row["status"]) for row in rows] == [("repo-b", "PENDING")]
    assert ndjson(await export(http, "/export/documentation-jobs", as_=BOB)) == []
    table = csv_rows(await export(http, "/export/documentation-jobs", params={"format": "csv"}))
    assert sorted(row["repositoryName"] for row in table) == ["repo-a", "repo-b"]


@pytest.mark.parametrize(("params", "accept", "status", "code", "names"), [
    ({"filter": "{not json"}, None, 400, "VALIDATION_ERROR", "filter"),
    ({"filter": json.dumps({"status": "DONE"})}, None, 400, "VALIDATION_ERROR", "status"),
    ({"filter": json.dumps({"nope": 1})}, None, 400, "VALIDATION_ERROR", "nope"),
    ({"filter": json.dumps({"createdAfter": "soon"})}, None, 400, "VALIDATION_ERROR",
     "createdAfter"),
    ({"format": "xml"}, None, 400, "VALIDATION_ERROR", "format"),
    # what MongoDB cannot hold, or nesting past JOBGRAPH_MAX_BODY_DEPTH: refused as the
    # /graphql body would be, never a 500
    ({"filter": '{"jobType": "\\ud800"}'}, None, 400, "VALIDATION_ERROR", "filter"),
    ({"filter": '{"a":' * 3000 + "1" + "}" * 3000}, None, 400, "VALIDATION_ERROR", "filter"),
    ({}, "image/png", 406, "NOT_ACCEPTABLE", "text/csv"),
])
async def test_refusals_are_the_apis_json_error_bodies(
        http: Api, params: dict[str, str], accept: str | None, status: int, code: str,
        names: str) -> None:
    response = await export(http, params=params, accept=accept)
    assert response.status_code == status
    [error] = response.json()["errors"]
    assert error["extensions"]["code"] == code
    assert names in error["message"]


@pytest.mark.parametrize(("accept", "media"), [
    ("text/csv;q=0.1, application/x-ndjson;q=0.9", "application/x-ndjson"),
    ("application/x-ndjson;q=0.2, text/csv", "text/csv"),
    ("text/csv;q=0, */*", "application/x-ndjson"),
    ("application/x-ndjson;q=0, text/*;q=0.5", "text/csv"),
    ("text/csv;q=0", None),
    ("*/*;q=0", None),
])
async def test_accept_weights_decide_the_format(http: Api, accept: str, media: str | None
                                                ) -> None:
    """q values rank the media ranges, and q=0 refuses one (RFC 9110), not the order."""
    response = await export(http, accept=accept)
    if media is None:
        assert response.status_code == 406
        assert response.json()["errors"][0]["extensions"]["code"] == "NOT_ACCEPTABLE"
    else:
        assert response.status_code == 200
        assert response.headers["content-type"].split(";")[0] == media


async def test_a_bad_token_is_unauthenticated(http: Api) -> None:
    response = await http.client.get("/export/jobs",
                                     headers={"Authorization": "Bearer not-a-token"})
    assert response.status_code == 401
    assert response.json()["errors"][0]["extensions"]["code"] == "UNAUTHENTICATED"


class ExportCursor(monitoring.CommandListener):
    """The export's cursor on ``jobs``: its getMores, and whether it was killed."""

    def __init__(self, database: str) -> None:
        self.database = database
        self.find_requests: set[int] = set()
        self.cursor: int | None = None
        self.get_mores = 0
        self.killed = False

    def started(self, event: monitoring.CommandStartedEvent) -> None:
        command = event.command
        if event.database_name != self.database:
            return
        if event.command_name == "find" and command.get("find") == "jobs" and (
                command.get("batchSize") == 20):
            self.find_requests.add(event.request_id)
        elif event.command_name == "getMore" and command.get("getMore") == self.cursor:
            self.get_mores += 1
        elif event.command_name == "killCursors" and self.cursor in command.get("cursors", ()):
            self.killed = True

    def succeeded(self, event: monitoring.CommandSucceededEvent) -> None:
        if event.request_id in self.find_requests:
            self.cursor = event.reply["cursor"]["id"]

    def failed(self, event: monitoring.CommandFailedEvent) -> None:
        pass


@pytest.mark.slow
async def test_a_client_leaving_mid_stream_stops_the_cursor(
        settings: Any, mongo_uri: str, store: Store, monkeypatch: pytest.MonkeyPatch) -> None:
    # given 400 readable jobs of 40 KB parameters each: 20 cursor batches of 20, 16 MB,
    # more than the sockets' buffers hold
    monkeypatch.setattr(export_module, "BATCH_SIZE", 20)
    alice = Principal("alice")
    docs = [job_to_document(store.jobs.new_job(
        alice, job_type="big", parameters={"blob": "x" * 40_000},
        access_control=AccessControl(visibility=AccessVisibility.PUBLIC))) for _ in range(400)]
    for start in range(0, len(docs), 100):
        await store.jobs.collection.insert_many(docs[start:start + 100])
    listener = ExportCursor(settings.database)
    options = {"event_listeners": [listener]}
    async with (live_server(settings, mongo_uri, client_options=options) as live,
                httpx.AsyncClient(base_url=live.url, timeout=DEADLINE) as client):
        # when a client reads the first bytes of the export and goes away
        async with client.stream("GET", "/export/jobs",
                                 headers=ALICE.headers(settings)) as response:
            assert response.status_code == 200
            async for chunk in response.aiter_bytes():
                assert chunk
                break
        # then the server kills the cursor, short of reading it to its end
        await eventually(lambda: listener.killed)
        read = listener.get_mores
        await asyncio.sleep(0)  # nothing later reads more
        assert listener.get_mores == read < 19
