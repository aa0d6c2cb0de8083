"""``jobgraph seed-demo`` and ``jobgraph demo-worker`` against a real server, and the
session secret ``serve`` shares with them."""

from __future__ import annotations

import asyncio
import os
import random
import stat
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from graph.auth.tokens import mint_token
from graph.commands.cli import client_settings, main, session_secret_path, share_session_secret
from graph.commands.demo import demo_worker, seed_demo
from graph.config.settings import load_settings
from tests.helpers.graphql import TEST_SECRET, Api, Caller
from tests.helpers.live import live_server, ws_client
from tests.helpers.waiting import eventually

WATCH = """subscription { jobsChanged(initial: 0) {
  kind jobId job { status progress { percent } } } }"""
CREATE = """mutation($input: CreateJobInput!) { createJob(input: $input) { jobId } }"""
CANCEL = """mutation($id: ID!) { cancelJob(jobId: $id, reason: "demo") { status } }"""
STATUS = """query($id: ID!) { job(jobId: $id) { status error { code } } }"""
COUNT = """query { jobs { totalCount } batches { totalCount } documentationJobs { totalCount } }"""
QUEUES = """query { queues { jobType paused counts { pending delayed } } }"""
PRIORITIES = """query { jobs(first: 100) { edges { node { priority } } } }"""
OPERATOR = Caller("ops", ("admin",))


@pytest.fixture
async def server(settings: Any, mongo_uri: str, store: Any) -> AsyncIterator[Any]:
    async with live_server(settings, mongo_uri) as live:
        yield live


async def totals(server: Any, settings: Any, user: str) -> dict[str, int]:
    async with httpx.AsyncClient(base_url=server.url) as client:
        data = await Api(client, settings).data(COUNT, as_=Caller(user))
    return {name: value["totalCount"] for name, value in data.items()}


async def test_seed_demo_gives_each_user_a_different_view(server: Any, settings: Any) -> None:
    created = await seed_demo(f"{server.url}/graphql", settings, out=lambda _: None)
    assert created == {"jobs": 17, "batches": 2, "documentation_jobs": 2, "paused_queues": 1}
    views = {user: await totals(server, settings, user) for user in ("alice", "bob", "carol")}
    # public, shared and private objects of three owners: everyone sees something else
    assert views == {
        "alice": {"jobs": 12, "batches": 2, "documentationJobs": 1},
        "bob": {"jobs": 15, "batches": 2, "documentationJobs": 1},
        "carol": {"jobs": 11, "batches": 1, "documentationJobs": 2},
    }
    # with priorities, a delayed job and a paused queue
    async with httpx.AsyncClient(base_url=server.url) as client:
        queues = (await Api(client, settings).data(QUEUES, as_=OPERATOR))["queues"]
        jobs = (await Api(client, settings).data(PRIORITIES, as_=OPERATOR))["jobs"]["edges"]
    by_type = {queue["jobType"]: queue for queue in queues}
    assert by_type["archive"]["paused"] is True and by_type["archive"]["counts"]["pending"] == 2
    assert by_type["pdf"]["counts"]["delayed"] == 1
    assert {edge["node"]["priority"] for edge in jobs} == {0, 5, 10}


async def test_demo_worker_moves_jobs_a_subscriber_can_watch(server: Any, settings: Any) -> None:
    # given a frontend watching every job it may see
    async with ws_client(server, payload={
            "Authorization": f"Bearer {mint_token(settings, 'alice')}"}) as client:
        op = await client.subscribe(WATCH)
        # when the demo worker runs (the empty queue makes it create PUBLIC jobs)
        finished = await demo_worker(f"{server.url}/graphql", settings, jobs=2, step_delay=0,
                                     fail_rate=0.5, rng=random.Random(3), out=lambda _: None)
        # then the subscriber sees each job created, worked on and finished
        seen: dict[str, list[str]] = {}
        while sum(status in ("COMPLETED", "FAILED") for statuses in seen.values()
                  for status in statuses) < 2:
            event = (await client.next(op))["jobsChanged"]
            statuses = seen.setdefault(event["jobId"], [])
            if not statuses or statuses[-1] != event["job"]["status"]:
                statuses.append(event["job"]["status"])
    assert finished == 2
    assert all(statuses[:2] == ["PENDING", "PROCESSING"] and statuses[-1] in (
        "COMPLETED", "FAILED") for statuses in seen.values())


async def test_demo_worker_stops_a_job_whose_cancel_was_requested(
        server: Any, settings: Any) -> None:
    # given a job, and the demo worker working on it slowly
    async with httpx.AsyncClient(base_url=server.url) as client:
        api = Api(client, settings)
        job_id = (await api.data(CREATE, {"input": {"jobType": "pdf"}}, as_=Caller("alice"))
                  )["createJob"]["jobId"]
        said: list[str] = []
        worker = asyncio.create_task(demo_worker(
            f"{server.url}/graphql", settings, jobs=1, step_delay=0.2, fail_rate=0,
            create_when_idle=False, idle_delay=0.05, out=said.append))

        async def running() -> bool:
            state = (await api.data(STATUS, {"id": job_id}, as_=Caller("alice")))["job"]
            return state["status"] == "PROCESSING"

        await eventually(running)
        # when its owner cancels it
        await api.data(CANCEL, {"id": job_id}, as_=Caller("alice"))
        finished = await asyncio.wait_for(worker, 60)
        state = (await api.data(STATUS, {"id": job_id}, as_=Caller("alice")))["job"]

    # then the worker stopped at its next answer and acknowledged: FAILED, CANCELLED
    assert finished == 1
    assert (state["status"], state["error"]["code"]) == ("FAILED", "CANCELLED")
    assert any("CANCELLED" in line for line in said)


async def test_demo_worker_command_runs_against_a_server(
    server: Any, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("JOBGRAPH_JWT_SECRET", TEST_SECRET)
    code = await asyncio.to_thread(main, ["demo-worker", "--url", f"{server.url}/graphql",
                                          "--jobs", "1", "--delay", "0"])
    captured = capsys.readouterr()
    assert code == 0
    assert "finished 1 jobs" in captured.err
    assert "claimed" in captured.out


async def test_seed_demo_command_reports_an_unreachable_server(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("JOBGRAPH_JWT_SECRET", TEST_SECRET)
    code = await asyncio.to_thread(main, ["seed-demo", "--url", "http://127.0.0.1:9/graphql"])
    error = capsys.readouterr().err
    assert code == 2
    assert error.count("\n") == 1 and "is `jobgraph serve` running?" in error


def test_session_secret_is_shared_owner_only_with_the_client_commands(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name in list(os.environ):
        if name.startswith("JOBGRAPH_"):
            monkeypatch.delenv(name)
    monkeypatch.setenv("JOBGRAPH_DATA_DIR", str(tmp_path / "data" / "secantus"))
    settings = load_settings()
    assert client_settings().jwt_secret is None
    path = share_session_secret(settings, "s" * 48)
    assert path == session_secret_path(settings) == tmp_path / "data" / "session-jwt-secret"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert client_settings().jwt_secret == "s" * 48
    # a configured secret always wins
    monkeypatch.setenv("JOBGRAPH_JWT_SECRET", TEST_SECRET)
    assert client_settings().jwt_secret == TEST_SECRET
