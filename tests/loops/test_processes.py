"""The loops across real API processes: two processes fire a schedule once per tick, and
webhook deliveries survive an API process killed (SIGKILL) in the middle of sending one.
GraphQL goes through Python's gql client; signatures are checked by the Standard
Webhooks library."""

from __future__ import annotations

import asyncio
import itertools
from datetime import datetime, timedelta
from typing import Any

import httpx
import pytest
from gql import Client, GraphQLRequest
from gql.transport.httpx import HTTPXAsyncTransport
from standardwebhooks.webhooks import Webhook as Verifier

from graph.auth.tokens import mint_token
from repository.access import Principal
from repository.database import Store
from repository.deliveries import DeliveryStatus
from repository.pagination import PageRequest
from tests.helpers.graphql import METRICS, make_settings
from tests.helpers.receiver import Received, receiver
from tests.helpers.waiting import eventually

from .processes import api_processes, start_api

WORKER = Principal("w", frozenset({"worker"}))
DEADLINE = 90.0


async def gql(url: str, user: str, document: str, variables: dict[str, Any]) -> Any:
    token = mint_token(make_settings(), user, ())
    transport = HTTPXAsyncTransport(url=f"{url}/graphql",
                                    headers={"Authorization": f"Bearer {token}"})
    async with Client(transport=transport) as session:
        return await session.execute(GraphQLRequest(document, variable_values=variables))


@pytest.mark.slow
async def test_two_api_processes_fire_a_schedule_once_per_tick(
        mongo_uri: str, database_name: str, store: Store) -> None:
    async with api_processes(mongo_uri, database_name, 2) as (first, second):
        # given: a schedule that fires every second, created through the first process
        created = await gql(first.url, "alice", """mutation Every($input: CreateScheduleInput!) {
          createSchedule(input: $input) { scheduleId } }""", {"input": {
            "name": "every second", "cron": "* * * * * *",
            "jobTemplate": {"jobType": "tick"}}})
        sid = created["createSchedule"]["scheduleId"]

        # when: both processes' schedulers run for a few ticks
        await eventually(lambda: _at_least(store, sid, 6), deadline=DEADLINE)
        await gql(second.url, "alice", """mutation Stop($id: ID!) {
          pauseSchedule(scheduleId: $id) { paused } }""", {"id": sid})

        # each process counts only the jobs it inserted (a tick read just before the pause
        # may still land: wait until the counts agree)
        async def counted() -> bool:
            fires = [await _fires(api.url) for api in (first, second)]
            total = await store.jobs.collection.count_documents({"schedule_id": sid})
            return sum(fires) == total
        await eventually(counted, deadline=DEADLINE)

    # then: one job per fire time, and no fire time between the first and last missing
    jobs = await store.jobs.collection.find({"schedule_id": sid}).to_list()
    ticks = sorted(job["scheduled_for"] for job in jobs)
    assert len(ticks) == len(set(ticks)) >= 6
    assert all(later - earlier == timedelta(seconds=1)
               for earlier, later in itertools.pairwise(ticks))
    schedule = await store.schedules.get(Principal("alice"), sid)
    assert schedule.skipped_fires == 0 and schedule.last_fire_at == ticks[-1]


async def _at_least(store: Store, schedule_id: str, count: int) -> bool:
    return await store.jobs.collection.count_documents({"schedule_id": schedule_id}) >= count


async def _fires(url: str) -> float:
    async with httpx.AsyncClient(base_url=url) as client:
        text = (await client.get("/metrics", headers=METRICS)).text
    for line in text.splitlines():
        if line.startswith("jobgraph_schedule_fires_total "):
            return float(line.split()[1])
    return 0.0


@pytest.mark.slow
async def test_a_delivery_cut_off_by_a_killed_process_is_sent_again(
        mongo_uri: str, database_name: str, store: Store) -> None:
    held, release = asyncio.Event(), asyncio.Event()

    async def hold_the_first(request: Received) -> int:
        if not held.is_set():
            held.set()
            await release.wait()  # its sender is killed meanwhile
        return 204

    async with receiver() as hook, api_processes(mongo_uri, database_name, 1) as running:
        hook.answer = hold_the_first
        api = running[0]
        # given: alice's webhook and a job, through the API
        webhook = (await gql(api.url, "alice", """mutation Hook($input: CreateWebhookInput!) {
          createWebhook(input: $input) { webhookId secret } }""", {"input": {
            "url": hook.url, "events": ["JOB_STATUS_CHANGED"]}}))["createWebhook"]
        job = (await gql(api.url, "alice", """mutation Job {
          createJob(input: {jobType: "pdf"}) { jobId } }""", {}))["createJob"]

        # when: the process is killed while the receiver holds the first delivery
        await asyncio.wait_for(held.wait(), DEADLINE)
        await api.kill()
        release.set()
        # ... the job moves on while no API process runs (a worker elsewhere)
        await store.jobs.claim(WORKER)
        await store.jobs.complete(WORKER, job["jobId"])
        # ... and an API process starts again
        running.append(await start_api(mongo_uri, database_name))

        # then: every status arrives, the cut-off message again under the same id
        def statuses() -> list[str] | None:
            found = [r.json["data"]["status"] for r in hook.requests
                     if r.json["data"]["jobId"] == job["jobId"]]
            done = {"PENDING", "PROCESSING", "COMPLETED"} <= set(found) and \
                found.count("PENDING") >= 2
            return found if done else None
        await eventually(statuses, deadline=DEADLINE)

        async def all_delivered() -> bool:
            page = await store.deliveries.list(Principal("alice"), webhook["webhookId"], None,
                                               PageRequest(first=10))
            return len(page.items) == 3 and all(
                d.status is DeliveryStatus.DELIVERED for d in page.items)
        await eventually(all_delivered, deadline=DEADLINE)

    by_id = hook.by_id()
    assert len(by_id) == 3  # three messages; duplicates share their id
    first_id = hook.requests[0].id
    assert len(by_id[first_id]) >= 2
    for request in hook.requests:
        body = Verifier(webhook["secret"]).verify(request.body, request.headers)
        assert body["data"]["jobId"] == job["jobId"]
    assert datetime.fromisoformat(hook.requests[0].json["timestamp"]) is not None
