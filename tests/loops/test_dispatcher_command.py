"""``jobgraph dispatcher``: the loops without the API, as their own process."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys

import httpx
import pytest

from graph.commands import cli
from repository.access import Principal
from repository.database import Store, free_port
from repository.schedules import JobTemplate
from tests.helpers.waiting import eventually

from .processes import FAST_LOOPS


async def test_the_dispatcher_command_fires_schedules_and_stops_on_sigterm(
        mongo_uri: str, database_name: str, store: Store) -> None:
    # given: a schedule that fires every second
    schedule = await store.schedules.create(Principal("alice"), name="tick",
                                            cron="* * * * * *", job_template=JobTemplate("t"))
    port = free_port()
    env = {**os.environ, **FAST_LOOPS, "JOBGRAPH_MONGODB_URI": mongo_uri,
           "JOBGRAPH_DATABASE": database_name, "JOBGRAPH_LOG_LEVEL": "WARNING"}

    # when
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "graph.commands.cli", "dispatcher", "--metrics-port", str(port),
        env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        async def fired() -> bool:
            return await store.jobs.collection.count_documents(
                {"schedule_id": schedule.schedule_id}) >= 2
        await eventually(fired, deadline=60)

        async def reported() -> bool:
            try:
                async with httpx.AsyncClient() as client:
                    text = (await client.get(f"http://127.0.0.1:{port}/metrics")).text
            except httpx.HTTPError:
                return False
            return "jobgraph_schedule_fires_total" in text and \
                "jobgraph_webhook_outbox_depth 0.0" in text
        await eventually(reported, deadline=30)
        process.send_signal(signal.SIGTERM)
        code = await asyncio.wait_for(process.wait(), 30)
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()

    # then
    assert code == 0
    stderr = (await process.stderr.read()).decode() if process.stderr else ""
    assert "Traceback" not in stderr


def test_the_dispatcher_command_needs_a_database_uri(
        monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.delenv("JOBGRAPH_MONGODB_URI", raising=False)

    code = cli.main(["dispatcher"])

    assert code == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "JOBGRAPH_MONGODB_URI" in err
