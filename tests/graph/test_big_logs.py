"""Big logs never travel through the change stream: a job's log stays in its document, but
change events carry no log entries, and what a subscription selects of the log is read
for it, bounded (``logs(last: N)``, ``jobLogs``), so an append to a multi-megabyte job
costs each API process a few kilobytes, not the job.

The subscriptions run on a live server whose database client is watched (every reply it
reads is measured); the appends go through another app, as a worker's would."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import bson
import pytest
from pymongo import monitoring

from tests.helpers.graphql import WORKER, Api, make_settings, open_api
from tests.helpers.live import DEADLINE, LiveServer, live_server, ws_client

from .test_subscriptions import bearer

LINE = "x" * 4000
ENTRIES = 200  # 800 KB of log: big enough that carrying it anywhere shows
APPEND = """mutation($id: ID!, $entries: [LogEntryInput!]!) {
  appendJobLogs(jobId: $id, entries: $entries) { logSeq } }"""
FOLLOW = """subscription($id: ID!) {
  jobChanged(jobId: $id) { version logSeq logs(last: 2) { seq message } } }"""
TAIL = """subscription($id: ID!, $after: Int!) {
  jobLogs(jobId: $id, after: $after) { entries { seq } gap { fromSeq toSeq } lastSeq } }"""


@dataclass
class Reads(monitoring.CommandListener):
    """Every reply the watched client reads from one database: its size, and the change
    events among them."""

    database: str
    sizes: list[int] = field(default_factory=list)
    events: list[dict[str, Any]] = field(default_factory=list)
    stream_requests: set[int] = field(default_factory=set)
    stream_cursors: set[int] = field(default_factory=set)
    getmores: dict[int, int] = field(default_factory=dict)

    def started(self, event: monitoring.CommandStartedEvent) -> None:
        if event.database_name != self.database:
            return
        command = event.command
        if event.command_name == "aggregate" and any(
                "$changeStream" in stage for stage in command.get("pipeline", ())):
            self.stream_requests.add(event.request_id)
        elif event.command_name == "getMore":
            self.getmores[event.request_id] = command.get("getMore")

    def succeeded(self, event: monitoring.CommandSucceededEvent) -> None:
        if event.database_name != self.database:
            return
        reply = event.reply
        self.sizes.append(len(bson.encode(reply)))
        cursor = reply.get("cursor") or {}
        if event.request_id in self.stream_requests:
            self.stream_requests.discard(event.request_id)
            self.stream_cursors.add(cursor.get("id"))
        if (event.request_id in self.stream_requests or
                self.getmores.pop(event.request_id, None) in self.stream_cursors):
            self.events += [*cursor.get("firstBatch", ()), *cursor.get("nextBatch", ())]

    def failed(self, event: monitoring.CommandFailedEvent) -> None:
        self.stream_requests.discard(event.request_id)
        self.getmores.pop(event.request_id, None)


@pytest.fixture
async def watched(settings: Any, mongo_uri: str, store: Any
                  ) -> AsyncIterator[tuple[LiveServer, Reads]]:
    reads = Reads(settings.database)
    async with live_server(settings, mongo_uri,
                           client_options={"event_listeners": [reads]}) as server:
        yield server, reads


async def big_job(api: Api) -> str:
    """A job a worker holds, with ENTRIES log entries of 4,000 characters."""
    data = await api.data('mutation { createJob(input: {jobType: "big"}) { jobId } }')
    job_id = data["createJob"]["jobId"]
    await api.data('mutation { claimJob(jobTypes: ["big"]) { jobId } }', as_=WORKER)
    for _ in range(ENTRIES // 100):
        await append(api, job_id, 100)
    return job_id


async def append(api: Api, job_id: str, count: int = 1) -> None:
    await api.data(APPEND, {"id": job_id, "entries": [{"level": "INFO", "message": LINE}]
                            * count}, as_=WORKER)


def log_paths(event: dict[str, Any]) -> list[str]:
    """Whatever of the log a change event carries."""
    description = event.get("updateDescription") or {}
    paths = [key for key in (description.get("updatedFields") or {})
             if key.split(".")[0] == "logs"]
    paths += [path for path in description.get("removedFields") or ()
              if path.split(".")[0] == "logs"]
    paths += [t["field"] for t in description.get("truncatedArrays") or ()
              if t["field"].split(".")[0] == "logs"]
    if "logs" in (event.get("fullDocument") or {}):
        paths.append("fullDocument.logs")
    return paths


async def test_an_append_costs_the_subscribers_process_what_they_select_not_the_job(
    watched: tuple[LiveServer, Reads], api: Api, settings: Any
) -> None:
    server, reads = watched
    job_id = await big_job(api)
    async with ws_client(server, payload=bearer(settings, WORKER)) as client:
        follows = [await client.subscribe(FOLLOW, {"id": job_id}) for _ in range(3)]
        tail = await client.subscribe(TAIL, {"id": job_id, "after": ENTRIES})
        for op in follows:
            first = (await client.next(op))["jobChanged"]
            assert [entry["seq"] for entry in first["logs"]] == [ENTRIES - 1, ENTRIES]
        assert (await client.next(tail))["jobLogs"]["lastSeq"] == ENTRIES
        read_before = len(reads.sizes)
        # when a worker appends one entry to the 800 KB log
        await append(api, job_id)
        # then every subscriber gets what it selected
        for op in follows:
            event = (await client.next(op))["jobChanged"]
            assert event["logSeq"] == ENTRIES + 1
            assert [entry["seq"] for entry in event["logs"]] == [ENTRIES, ENTRIES + 1]
            assert all(len(entry["message"]) == len(LINE) for entry in event["logs"])
        batch = (await client.next(tail))["jobLogs"]
        assert batch == {"entries": [{"seq": ENTRIES + 1}], "gap": None,
                         "lastSeq": ENTRIES + 1}
    # and no change event ever carried the log
    assert reads.events, "the change stream's replies were not seen"
    assert [log_paths(event) for event in reads.events if log_paths(event)] == []
    # and delivering the append read a few entries' worth, not the job (800 KB)
    delivered = sum(reads.sizes[read_before:])
    assert delivered < 64 * 1024, f"{delivered} bytes read to deliver one append"


async def test_each_event_shows_the_log_as_it_was_at_that_change(
    watched: tuple[LiveServer, Reads], api: Api, settings: Any
) -> None:
    server, _reads = watched
    job_id = await big_job(api)
    async with ws_client(server, payload=bearer(settings, WORKER)) as client:
        follow = await client.subscribe(FOLLOW, {"id": job_id})
        tail = await client.subscribe(TAIL, {"id": job_id, "after": ENTRIES - 3})
        assert (await client.next(follow))["jobChanged"]["logSeq"] == ENTRIES
        first = (await client.next(tail))["jobLogs"]
        # when three appends follow each other without waiting for anyone
        for _ in range(3):
            await append(api, job_id)
        events = [(await client.next(follow))["jobChanged"] for _ in range(3)]
        seen = [entry["seq"] for entry in first["entries"]]
        while not seen or seen[-1] < ENTRIES + 3:
            batch = (await client.next(tail))["jobLogs"]
            assert batch["gap"] is None
            seen += [entry["seq"] for entry in batch["entries"]]
    # then each state carries the newest entries as of its own change, none later
    assert [(e["logSeq"], [entry["seq"] for entry in e["logs"]]) for e in events] == [
        (ENTRIES + n, [ENTRIES + n - 1, ENTRIES + n]) for n in (1, 2, 3)]
    # and the log stream has every entry once, in order
    assert seen == list(range(ENTRIES - 2, ENTRIES + 4))


async def test_appends_at_the_cap_write_their_entries_not_the_whole_log(
    mongo_uri: str, store: Any, database_name: str
) -> None:
    # given a job whose capped log (100 entries) is full
    settings = make_settings(database=database_name, max_logs_per_job=100)
    async with open_api(settings, mongo_uri) as api:
        data = await api.data('mutation { createJob(input: {jobType: "capped"}) { jobId } }')
        job_id = data["createJob"]["jobId"]
        await api.data('mutation { claimJob(jobTypes: ["capped"]) { jobId } }', as_=WORKER)
        await append(api, job_id, 100)
        # when 30 more entries come one by one, each dropping the oldest
        async with await store.db.watch([{"$match": {"documentKey._id": job_id}}]) as stream:
            for _ in range(30):
                await append(api, job_id)
            descriptions = []
            async with asyncio.timeout(DEADLINE):
                while len(descriptions) < 30:
                    event = await stream.try_next()
                    if event is not None:
                        descriptions.append(event["updateDescription"])
        held = await api.data("""query($id: ID!) { job(jobId: $id) {
            logSeq logs { seq } last: logs(last: 3) { seq } } }""", {"id": job_id})
    # then the database was told the new entries, rewriting the whole log (~400 KB) only
    # once per tenth of the cap
    rewrites = [d for d in descriptions if "logs" in d["updatedFields"]]
    assert len(rewrites) <= 30 // 10 + 1, f"{len(rewrites)} of 30 appends rewrote the log"
    assert max(len(bson.encode(d)) for d in descriptions if d not in rewrites) < 16 * 1024
    # and readers see the newest 100 entries, exactly as before
    job = held["job"]
    assert job["logSeq"] == 130
    assert [entry["seq"] for entry in job["logs"]] == list(range(31, 131))
    assert [entry["seq"] for entry in job["last"]] == [128, 129, 130]
