"""Third-party clients against live servers: a uvicorn server in the test's event loop
(``live``), and where a test needs a second API process on the same database, ``other``."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest

from graph.auth.tokens import mint_token
from tests.helpers.api_process import api_process
from tests.helpers.graphql import ALICE, Api, Caller
from tests.helpers.live import DEADLINE, LiveServer, live_server
from tests.helpers.tools import require_node_packages

CREATE_JOB = """mutation($input: CreateJobInput!) { createJob(input: $input) { jobId } }"""
CLAIM = """mutation($types: [String!]) { claimJob(jobTypes: $types) { jobId } }"""
PROGRESS = """mutation($id: ID!, $p: Int!) {
  updateJobProgress(jobId: $id, progress: {step: "s", percent: $p}) { version } }"""
LOG = """mutation($id: ID!, $m: String!) {
  appendJobLogs(jobId: $id, entries: [{level: INFO, message: $m}]) { logSeq } }"""
COMPLETE = """mutation($id: ID!) { completeJob(jobId: $id, results: {ok: true}) { version } }"""


@pytest.fixture
def node_clients() -> str:
    """``pytestmark = pytest.mark.usefixtures("node_clients")`` in a module of Node tests:
    without Node they skip (fail under CI) before any server starts."""
    return require_node_packages()


@pytest.fixture
async def live(settings: Any, mongo_uri: str, store: Any) -> AsyncIterator[LiveServer]:
    async with live_server(settings, mongo_uri) as server:
        yield server


@pytest.fixture
async def http(live: LiveServer, settings: Any) -> AsyncIterator[Api]:
    async with httpx.AsyncClient(base_url=live.url, timeout=DEADLINE) as client:
        yield Api(client, settings)


@pytest.fixture
async def other(settings: Any, mongo_uri: str, store: Any) -> AsyncIterator[LiveServer]:
    """A second API process on the same database."""
    async with api_process(settings, mongo_uri) as server:
        yield server


def token(settings: Any, caller: Caller = ALICE, ttl: float = 3600) -> str:
    return mint_token(settings, caller.user_id, caller.roles, ttl)  # type: ignore[arg-type]


async def create_job(http: Api, job_type: str = "pdf", *, as_: Caller = ALICE,
                     **fields: Any) -> str:
    data = await http.data(CREATE_JOB, {"input": {"jobType": job_type, **fields}}, as_=as_)
    return data["createJob"]["jobId"]
