"""Third-party clients against live servers: a uvicorn server in the test's event loop
(``live``), and where a test needs a second API process on the same database, ``other``."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from gql import Client
from gql.transport.websockets import WebsocketsTransport

from graph.auth.tokens import mint_token
from repository import changes
from tests.helpers.api_process import api_process
from tests.helpers.graphql import ALICE, WORKER, Api, Caller, make_settings
from tests.helpers.live import DEADLINE, LiveServer, live_server
from tests.helpers.tools import require_node_packages
from tests.helpers.waiting import eventually

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


@pytest.fixture
def writer(other: LiveServer) -> LiveServer:
    """Process B of a two-process test, started first: it holds the loops' leases, so
    process A's client hears nothing of B's writes until A's change stream reads them."""
    return other


@contextlib.asynccontextmanager
async def quiet_process(database: str, uri: str) -> AsyncIterator[LiveServer]:
    """Process A of a two-process test: no loop of its own reads the database meanwhile
    (reaper, history writer's retries, dispatcher), and its stream, with no subscriber,
    is in a gulp (until a subscriber comes, with ``UNHEARD_GATHER_SECONDS`` patched long):
    the newest cluster time it knows is from before B's writes."""
    settings = make_settings(database=database, reaper_interval_seconds=3600.0,
                             history_poll_seconds=60.0, dispatcher=False)
    async with live_server(settings, uri) as server:
        hub = server.app.state.hub
        await eventually(lambda: hub.feed._unheard is not None)
        yield server


@pytest.fixture
async def follower(writer: LiveServer, database_name: str, mongo_uri: str,
                   monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[LiveServer]:
    """Process A (``quiet_process``) of a two-process test, B being ``writer``."""
    monkeypatch.setattr(changes, "UNHEARD_GATHER_SECONDS", 3600.0)
    async with quiet_process(database_name, mongo_uri) as server:
        yield server


def ws_client(server: LiveServer, settings: Any, caller: Caller = WORKER) -> Client:
    """Python gql over graphql-transport-ws, signed in as ``caller``."""
    return Client(transport=WebsocketsTransport(
        url=server.ws_url, subprotocols=[WebsocketsTransport.GRAPHQLWS_SUBPROTOCOL],
        init_payload={"Authorization": f"Bearer {token(settings, caller)}"}))


def token(settings: Any, caller: Caller = ALICE, ttl: float = 3600) -> str:
    return mint_token(settings, caller.user_id, caller.roles, ttl)  # type: ignore[arg-type]


async def create_job(http: Api, job_type: str = "pdf", *, as_: Caller = ALICE,
                     **fields: Any) -> str:
    data = await http.data(CREATE_JOB, {"input": {"jobType": job_type, **fields}}, as_=as_)
    return data["createJob"]["jobId"]
