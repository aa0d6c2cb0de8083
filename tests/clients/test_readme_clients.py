"""Every snippet of README's "Clients" section, run as written against a live server
(only its address changed to the test server's): Apollo Client, urql, graphql-ws,
graphql-sse, gql and curl, each with a query and a subscription that receives a change."""

from __future__ import annotations

import json
import os
import re
import sys
from pathlib import Path
from typing import Any

import pytest

from tests.helpers.graphql import TEST_SECRET, Api
from tests.helpers.live import LiveServer
from tests.helpers.node import node_script, run_script
from tests.helpers.tools import ROOT, require_tool

from .conftest import LOG, create_job, token

README = ROOT / "README.md"
FENCE = re.compile(r"^```(\w*)\n(.*?)^```\n", re.DOTALL | re.MULTILINE)
NODE_CLIENTS = ["Apollo Client", "urql", "graphql-ws", "graphql-sse"]


def clients_section() -> dict[str, list[tuple[str, str]]]:
    """The fenced blocks (language, code) under each heading of "## Clients"; the
    section's introduction is under ""."""
    text = README.read_text()
    section = text[text.index("\n## Clients\n"):text.index("\n## Reliability\n")]
    parts = re.split(r"^### (.+)\n", section, flags=re.MULTILINE)
    headings = ["", *parts[1::2]]
    return {heading: FENCE.findall(body) for heading, body in zip(headings, parts[::2],
                                                                    strict=True)}


SNIPPETS = clients_section()


def snippet(heading: str, language: str, index: int = 0) -> str:
    return [code for lang, code in SNIPPETS[heading] if lang == language][index]


def at(server: LiveServer, code: str) -> str:
    return code.replace("127.0.0.1:8000", f"127.0.0.1:{server.port}")


def untyped(value: Any) -> Any:
    """Without the ``__typename`` that Apollo and urql add to every selection."""
    if isinstance(value, dict):
        return {key: untyped(item) for key, item in value.items() if key != "__typename"}
    return value


def test_the_section_has_a_snippet_per_client() -> None:
    assert list(SNIPPETS) == ["", *NODE_CLIENTS, "gql (Python)", "curl"]
    assert all(SNIPPETS[heading] for heading in SNIPPETS)


async def test_the_setup_snippet_mints_a_token_and_creates_a_job(
    live: LiveServer, http: Api
) -> None:
    bash = require_tool("bash", "the shell snippets run in bash")
    require_tool("curl", "install curl to run the README's curl snippets")
    jobgraph = Path(sys.executable).parent / "jobgraph"
    code = at(live, snippet("", "sh")).replace(".venv/bin/jobgraph", str(jobgraph))
    env = {**os.environ, "JOBGRAPH_JWT_SECRET": TEST_SECRET}
    async with run_script("setup", bash, "-c", code + '\necho "$TOKEN"\necho "$JOB_ID"\n',
                          cwd=ROOT, env=env) as setup:
        minted, job_id = await setup.line(), await setup.line()
    response = await http.client.post("/graphql", headers={
        "Authorization": f"Bearer {minted}"}, json={
        "query": "query($id: ID!) { viewer { userId } job(jobId: $id) { jobType } }",
        "variables": {"id": job_id}})
    assert response.json() == {"data": {"viewer": {"userId": "alice"},
                                        "job": {"jobType": "pdf"}}}


async def follow_a_change(client: Any, http: Api, job_id: str) -> list[Any]:
    """The subscription's first two events: the job as it is, and after a change."""
    first = await client.next()
    await http.data(LOG, {"id": job_id, "m": "seen by the snippet"})
    return [untyped(first), untyped(await client.next())]


def changes(job_id: str) -> list[Any]:
    return [{"jobChanged": {"jobId": job_id, "status": "PENDING", "version": version}}
            for version in (0, 1)]


@pytest.mark.usefixtures("node_clients")
@pytest.mark.parametrize("heading", NODE_CLIENTS)
async def test_a_javascript_snippet(
    live: LiveServer, http: Api, settings: Any, heading: str
) -> None:
    job_id = await create_job(http)
    env = {**os.environ, "TOKEN": token(settings), "JOB_ID": job_id}
    async with node_script(heading, code=at(live, snippet(heading, "js")), env=env) as client:
        query = untyped(await client.next())
        events = await follow_a_change(client, http, job_id)
    if heading in ("Apollo Client", "urql"):
        assert query == {"job": {"jobId": job_id, "status": "PENDING"}}
    else:
        assert query == {"viewer": {"userId": "alice"}}
    assert events == changes(job_id)


async def test_the_gql_snippet(live: LiveServer, http: Api, settings: Any) -> None:
    job_id = await create_job(http)
    env = {**os.environ, "TOKEN": token(settings), "JOB_ID": job_id, "PYTHONUNBUFFERED": "1"}
    code = at(live, snippet("gql (Python)", "python"))
    async with run_script("gql", sys.executable, "-c", code, env=env) as client:
        query = await client.next()
        events = await follow_a_change(client, http, job_id)
    assert query == {"viewer": {"userId": "alice"}}
    assert events == changes(job_id)


async def test_the_curl_snippets(live: LiveServer, http: Api, settings: Any) -> None:
    bash = require_tool("bash", "the shell snippets run in bash")
    require_tool("curl", "install curl to run the README's curl snippets")
    env = {**os.environ, "TOKEN": token(settings)}
    query, sse, multipart = (at(live, snippet("curl", "sh", index)) for index in range(3))
    async with run_script("curl query", bash, "-c", query, env=env) as curl:
        assert json.loads(await curl.line()) == {"data": {"viewer": {"userId": "alice"}}}
    existing = await create_job(http)
    # Server-Sent Events: "event: next" lines, each followed by its "data: <result>"
    async with run_script("curl sse", bash, "-c", sse, env=env) as curl:
        assert (await curl.line(), await curl.line()) == ("event: next", "data: " + json.dumps(
            {"data": {"jobsChanged": {"kind": "CURRENT", "jobId": existing,
                                      "job": {"status": "PENDING"}}}}, separators=(",", ":")))
        created = await create_job(http)
        assert await curl.line() == "event: next"
        assert json.loads((await curl.line()).removeprefix("data: "))["data"] == {
            "jobsChanged": {"kind": "CREATED", "jobId": created, "job": {"status": "PENDING"}}}
    # multipart: each part's body is {"payload": <result>} (an empty {} is a heartbeat)
    async with run_script("curl multipart", bash, "-c", multipart, env=env) as curl:
        payloads = []
        while len(payloads) < 2:
            line = await curl.line()
            if line.startswith("{") and line != "{}":
                payloads.append(json.loads(line)["payload"]["data"]["jobsChanged"])
    assert [(p["kind"], p["jobId"]) for p in payloads] == [
        ("CURRENT", existing), ("CURRENT", created)]
