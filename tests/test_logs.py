"""Structured logs: one JSON object per line, one line per GraphQL request."""

from __future__ import annotations

import asyncio
import json
import logging
import re
import sys
from typing import Any

import pytest

from graph.config.logs import JsonFormatter, configure_logging
from graph.config.settings import Settings, load_settings
from tests.helpers.graphql import ALICE, TEST_SECRET, WORKER, Api, make_settings
from tests.helpers.live import DEADLINE, live_server, ws_client

ME = "query Me { viewer { userId } }"
CREATE_JOB = """mutation CreatePdf { createJob(input: {jobType: "pdf"}) { jobId } }"""
COMPLETE_PENDING = """mutation Finish($id: ID!) { completeJob(jobId: $id) { jobId } }"""


@pytest.fixture
def settings(database_name: str) -> Settings:
    return load_settings(jwt_secret=TEST_SECRET, database=database_name, log_format="json")


def request_lines(stderr: str) -> list[dict[str, Any]]:
    """The JSON lines of the per-request logger; every line must be JSON."""
    entries = [json.loads(line) for line in stderr.splitlines() if line.strip()]
    return [entry for entry in entries if entry["logger"] == "jobgraph.request"]


async def test_request_logs_one_json_line_with_its_fields(
        api: Api, capsys: pytest.CaptureFixture[str]) -> None:
    # given
    capsys.readouterr()
    # when
    response = await api.post(ME, headers={"X-Request-Id": "req-42"})
    # then
    (line,) = request_lines(capsys.readouterr().err)
    assert response.headers["X-Request-Id"] == "req-42"
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z", line["time"])
    assert line["level"] == "INFO"
    assert line["message"] == "POST /graphql 200"
    assert line["request_id"] == "req-42"
    assert line["operation_name"] == "Me"
    assert line["operation_type"] == "query"
    assert line["user_id"] == ALICE.user_id
    assert line["status"] == 200
    assert line["error_codes"] == []
    assert isinstance(line["duration_ms"], float) and line["duration_ms"] >= 0


@pytest.mark.parametrize("incoming", [None, "", "has spaces", "x" * 129, "bad\nline"])
async def test_request_without_usable_id_gets_a_generated_one(
        api: Api, capsys: pytest.CaptureFixture[str], incoming: str | None) -> None:
    # given
    capsys.readouterr()
    headers = {} if incoming is None else {"X-Request-Id": incoming.replace("\n", "%0A")}
    # when
    response = await api.post(ME, headers=headers)
    # then
    (line,) = request_lines(capsys.readouterr().err)
    assert re.fullmatch(r"[0-9a-f]{32}", response.headers["X-Request-Id"])
    assert line["request_id"] == response.headers["X-Request-Id"]


async def test_request_logs_error_codes_of_a_failed_mutation(
        api: Api, capsys: pytest.CaptureFixture[str]) -> None:
    # given
    job_id = (await api.data(CREATE_JOB))["createJob"]["jobId"]
    capsys.readouterr()
    # when: a PENDING job cannot be completed
    await api.execute(COMPLETE_PENDING, {"id": job_id})
    # then
    (line,) = request_lines(capsys.readouterr().err)
    assert line["operation_name"] == "Finish"
    assert line["operation_type"] == "mutation"
    assert line["error_codes"] == ["INVALID_TRANSITION"]


async def test_request_refused_before_execution_logs_status_and_code(
        api: Api, capsys: pytest.CaptureFixture[str]) -> None:
    # given
    capsys.readouterr()
    # when
    response = await api.client.post("/graphql", json={"query": ME},
                                     headers={"Authorization": "Bearer not-a-token"})
    # then
    (line,) = request_lines(capsys.readouterr().err)
    assert response.status_code == 401
    assert line["status"] == 401
    assert line["error_codes"] == ["UNAUTHENTICATED"]
    assert line["operation_name"] is None
    assert line["request_id"] == response.headers["X-Request-Id"]


async def test_request_with_syntax_error_logs_parse_failure(
        api: Api, capsys: pytest.CaptureFixture[str]) -> None:
    capsys.readouterr()
    await api.post("query Broken { viewer(")
    (line,) = request_lines(capsys.readouterr().err)
    assert line["error_codes"] == ["GRAPHQL_PARSE_FAILED"]
    assert line["operation_type"] == "unknown"


async def test_websocket_operation_logs_one_line_with_connection_request_id(
        mongo_uri: str, store: Any, database_name: str,
        capsys: pytest.CaptureFixture[str]) -> None:
    # given
    settings = load_settings(jwt_secret=TEST_SECRET, database=database_name, log_format="json")
    api_settings = make_settings(database=database_name)
    async with live_server(settings, mongo_uri) as server:
        headers = {"X-Request-Id": "socket-7"}
        payload = WORKER.headers(api_settings)
        capsys.readouterr()
        # when
        async with ws_client(server, payload=payload, headers=headers) as client:
            op = await client.subscribe(ME)
            data = await client.next(op)
            lines: list[dict[str, Any]] = []
            async with asyncio.timeout(DEADLINE):
                while not lines:  # the line is written once the operation has completed
                    lines = [line for line in request_lines(capsys.readouterr().err)
                             if line.get("operation_name") == "Me"]
                    await asyncio.sleep(0.02)
    # then
    assert data == {"viewer": {"userId": WORKER.user_id}}
    (line,) = lines
    assert line["request_id"] == "socket-7"
    assert line["transport"] == "websocket"
    assert line["operation_type"] == "query"
    assert line["user_id"] == WORKER.user_id
    assert line["error_codes"] == []


async def test_a_client_gone_before_its_body_is_logged_499_with_no_error(
        mongo_uri: str, store: Any, database_name: str,
        capsys: pytest.CaptureFixture[str], caplog: pytest.LogCaptureFixture) -> None:
    """A client that hangs up halfway through sending its body is nothing the server did
    wrong: one request line with 499, no traceback, no INTERNAL_SERVER_ERROR counted."""
    import httpx

    from tests.helpers.graphql import METRICS

    settings = make_settings(database=database_name, log_format="json")
    logging.getLogger("uvicorn.error").addHandler(caplog.handler)
    try:
        async with live_server(settings, mongo_uri) as server, httpx.AsyncClient(
                base_url=server.url) as client:
            before = (await client.get("/metrics", headers=METRICS)).text
            capsys.readouterr()
            _reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
            writer.write(b"POST /graphql HTTP/1.1\r\nHost: test\r\n"
                         b"Content-Type: application/json\r\nContent-Length: 1000\r\n"
                         b"X-Request-Id: gone-1\r\n\r\n" + b'{"query": "{ vie')
            await writer.drain()
            writer.close()  # gone, 985 bytes short
            await writer.wait_closed()
            lines: list[dict[str, Any]] = []
            async with asyncio.timeout(DEADLINE):
                while not lines:
                    err = capsys.readouterr().err  # (a traceback is not JSON: not read)
                    lines = [line for line in map(json.loads, re.findall(r"^\{.*$", err, re.M))
                             if line.get("request_id") == "gone-1"]
                    await asyncio.sleep(0.02)
            after = (await client.get("/metrics", headers=METRICS)).text
    finally:
        logging.getLogger("uvicorn.error").removeHandler(caplog.handler)
    (line,) = lines
    assert line["message"] == "POST /graphql 499" and line["error_codes"] == []
    assert [record.getMessage() for record in caplog.records
            if record.levelno >= logging.ERROR] == []
    errors = [row for row in after.splitlines()
              if row.startswith("jobgraph_graphql_errors_total")]
    assert errors == [row for row in before.splitlines()
                      if row.startswith("jobgraph_graphql_errors_total")]


def test_json_formatter_writes_extras_and_exception() -> None:
    # given
    try:
        raise ValueError("boom")
    except ValueError:
        record = logging.getLogger("jobgraph.test").makeRecord(
            "jobgraph.test", logging.ERROR, __file__, 1, "failed %s", ("twice",),
            sys.exc_info(), extra={"job_id": "j-1", "attempt": 2})
    # when
    entry = json.loads(JsonFormatter().format(record))
    # then
    assert entry["level"] == "ERROR"
    assert entry["logger"] == "jobgraph.test"
    assert entry["message"] == "failed twice"
    assert entry["job_id"] == "j-1" and entry["attempt"] == 2
    assert "ValueError: boom" in entry["exception"]


def test_configure_logging_replaces_only_its_own_handler() -> None:
    # given
    root = logging.getLogger()
    before = list(root.handlers)
    level = root.level
    try:
        # when
        configure_logging(make_settings(log_level="WARNING"))
        configure_logging(make_settings(log_level="DEBUG"))
        # then
        assert len([h for h in root.handlers if type(h).__name__ == "_StderrHandler"]) == 1
        assert root.level == logging.DEBUG
        assert all(handler in root.handlers for handler in before
                   if type(handler).__name__ != "_StderrHandler")
    finally:
        root.setLevel(level)
