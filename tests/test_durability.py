"""Every write the API acknowledged survives a kill -9 of the embedded database.

Workers create, claim, log and complete jobs through the API while the database process
is killed without warning (twice); after each restart every acknowledged create, log
append and completion must be there. The embedded server writes its journal to the OS on
every commit only when started durable (``--sync-on-commit``); without it, recent
acknowledged writes sit in WiredTiger's log buffer and die with the process.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from tests.helpers.graphql import ADMIN, ALICE, WORKER, Api, make_settings
from tests.outage import Outage, app_on_own_database

WORKERS = 6
KILLS = 2
ACKS_BEFORE_KILL = 40
"""Completions acknowledged in a round before the database is killed mid-flight."""
DEADLINE = 60.0

CREATE = """mutation($type: String!) { createJob(input: {jobType: $type}) { jobId } }"""
CLAIM = """mutation($type: String!) { claimJob(jobTypes: [$type]) { jobId } }"""
LOG = """mutation($id: ID!) {
  appendJobLogs(jobId: $id, entries: [{level: INFO, message: "step"}]) { logSeq } }"""
COMPLETE = """mutation($id: ID!) { completeJob(jobId: $id, results: {ok: true}) { status } }"""
JOB = """query($id: ID!) { job(jobId: $id) { status logSeq } }"""


@dataclass
class Acknowledged:
    created: set[str] = field(default_factory=set)
    logged: dict[str, int] = field(default_factory=dict)
    completed: set[str] = field(default_factory=set)


async def acknowledged(api: Api, query: str, variables: dict[str, Any], caller: Any
                       ) -> dict[str, Any] | None:
    """The data of a request the server answered without error, else None."""
    try:
        body = await api.execute(query, variables, as_=caller)
    except Exception:  # the transport failed mid-request: not acknowledged
        return None
    return None if body.get("errors") else body["data"]


async def work(api: Api, number: int, acks: Acknowledged, stop: asyncio.Event) -> None:
    job_type = f"durable-{number}"
    while not stop.is_set():
        created = await acknowledged(api, CREATE, {"type": job_type}, ALICE)
        if created is None:
            return
        acks.created.add(created["createJob"]["jobId"])
        claimed = await acknowledged(api, CLAIM, {"type": job_type}, WORKER)
        if claimed is None or claimed["claimJob"] is None:
            return
        job_id = claimed["claimJob"]["jobId"]
        logged = await acknowledged(api, LOG, {"id": job_id}, WORKER)
        if logged is None:
            return
        acks.logged[job_id] = logged["appendJobLogs"]["logSeq"]
        if await acknowledged(api, COMPLETE, {"id": job_id}, WORKER) is None:
            return
        acks.completed.add(job_id)


async def kill_mid_flight(outage: Outage, api: Api, acks: Acknowledged) -> None:
    """Run the workers, and kill the database while they write."""
    stop = asyncio.Event()
    goal = len(acks.completed) + ACKS_BEFORE_KILL
    workers = [asyncio.create_task(work(api, number, acks, stop))
               for number in range(WORKERS)]
    try:
        async with asyncio.timeout(DEADLINE):
            while len(acks.completed) < goal:
                assert not all(task.done() for task in workers), "the workers stopped early"
                await asyncio.sleep(0.01)
        await asyncio.to_thread(outage.stop_database)
    finally:
        stop.set()
        async with asyncio.timeout(DEADLINE):
            await asyncio.gather(*workers, return_exceptions=True)


async def lost_writes(api: Api, acks: Acknowledged) -> list[str]:
    lost = []
    for job_id in sorted(acks.created | acks.logged.keys() | acks.completed):
        body = await api.execute(JOB, {"id": job_id}, as_=ADMIN)
        job = body["data"]["job"]
        if job is None:
            assert body["errors"][0]["extensions"]["code"] == "NOT_FOUND", body
            lost.append(f"{job_id}: created, now missing")
            continue
        if job["logSeq"] < acks.logged.get(job_id, 0):
            lost.append(f"{job_id}: log {acks.logged[job_id]} acknowledged, "
                        f"{job['logSeq']} kept")
        if job_id in acks.completed and job["status"] != "COMPLETED":
            lost.append(f"{job_id}: completed, now {job['status']}")
    return lost


@pytest.mark.slow
async def test_acknowledged_writes_survive_kill_9_of_the_embedded_database(
    tmp_path: Path
) -> None:
    settings = make_settings(database="durable", mongodb_timeout_ms=2000,
                             reaper_interval_seconds=3600)
    async with app_on_own_database(settings, tmp_path / "durable") as outage:
        api = Api(outage.client, settings)
        acks = Acknowledged()
        for _ in range(KILLS):
            await kill_mid_flight(outage, api, acks)
            await asyncio.to_thread(outage.server.start)
            await outage.end()  # answers again
            assert await lost_writes(api, acks) == []
        assert len(acks.completed) >= KILLS * ACKS_BEFORE_KILL
