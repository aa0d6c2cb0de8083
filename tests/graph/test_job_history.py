"""A job's history through the public API: every change recorded with who made it (a user
or "system"), newest first, paged; readable by the job's admins only."""

from __future__ import annotations

import base64
from typing import Any

from pymongo import monitoring

from tests.helpers.graphql import ADMIN, ALICE, BOB, WORKER, Api, Caller, make_settings, open_api
from tests.helpers.waiting import eventually

CREATE = """mutation($input: CreateJobInput!) { createJob(input: $input) { jobId } }"""
CLAIM = """mutation { claimJob { jobId } }"""
PROGRESS = """mutation($id: ID!) {
  updateJobProgress(jobId: $id, progress: {step: "s", percent: 40}) { version } }"""
HEARTBEAT = """mutation($id: ID!) { heartbeatJob(jobId: $id) { version } }"""
LOG = """mutation($id: ID!) {
  appendJobLogs(jobId: $id, entries: [{level: INFO, message: "m"}]) { logSeq } }"""
CANCEL = """mutation($id: ID!) { cancelJob(jobId: $id, reason: "stop") { status } }"""
FAIL = """mutation($id: ID!) { failJob(jobId: $id, error: {code: "X", message: "m"}) {
  status } }"""
RETRY = """mutation($id: ID!) { retryJob(jobId: $id) { status } }"""
COMPLETE = """mutation($id: ID!) { completeJob(jobId: $id, results: {ok: true}) { status } }"""
ACCESS = """mutation($id: ID!) { setJobAccess(jobId: $id,
  accessControl: {adminAccess: ["alice"], writeAccess: ["bob"],
  readAccess: ["carol", "dave"]}) { version } }"""
HISTORY = """query($id: ID!, $first: Int, $after: String) { job(jobId: $id) {
  history(first: $first, after: $after) { totalCount
    edges { cursor node { kind by status changes at } }
    pageInfo { hasNextPage endCursor } } } }"""
SHARED = {"accessControl": {"writeAccess": ["bob"], "readAccess": ["carol"]}}
CAROL = Caller("carol")


async def create(api: Api, **fields: Any) -> str:
    data = await api.data(CREATE, {"input": {"jobType": "pdf", **SHARED, **fields}})
    return data["createJob"]["jobId"]


async def history(api: Api, job_id: str, count: int, as_: Caller = ALICE
                  ) -> list[dict[str, Any]]:
    """The newest-first entries, once there are ``count`` of them."""
    async def read() -> list[dict[str, Any]] | None:
        found = (await api.data(HISTORY, {"id": job_id, "first": 100}, as_=as_))["job"]
        edges = found["history"]["edges"]
        return [edge["node"] for edge in edges] if len(edges) >= count else None
    return await eventually(read)


async def test_every_change_is_recorded_with_who_made_it_newest_first(api: Api) -> None:
    # given a job alice created, bob may write, a worker claims and drives
    job_id = await create(api)
    assert (await api.data(CLAIM, as_=WORKER))["claimJob"]["jobId"] == job_id
    await api.data(PROGRESS, {"id": job_id}, as_=WORKER)
    await api.data(HEARTBEAT, {"id": job_id}, as_=WORKER)  # neither of these two
    await api.data(LOG, {"id": job_id}, as_=WORKER)        # is an entry
    await api.data(CANCEL, {"id": job_id}, as_=BOB)
    await api.data(FAIL, {"id": job_id}, as_=WORKER)
    await api.data(RETRY, {"id": job_id}, as_=BOB)
    await api.data(ACCESS, {"id": job_id})
    # when alice reads its history
    entries = await history(api, job_id, 7)
    # then each change is there once, newest first, with who made it
    assert [(e["kind"], e["by"], e["status"]) for e in entries] == [
        ("ACCESS_CHANGED", "alice", None),
        ("RETRIED", "bob", "PENDING"),
        ("FAILED", "worker-1", "FAILED"),
        ("CANCEL_REQUESTED", "bob", None),
        ("PROGRESS", "worker-1", None),
        ("CLAIMED", "worker-1", "PROCESSING"),
        ("CREATED", "alice", "PENDING"),
    ]
    # and what changed is said
    assert entries[4]["changes"]["progress"]["percent"] == 40
    assert entries[2]["changes"]["error"]["code"] == "CANCELLED"
    assert entries[3]["changes"]["cancel_requested"]["reason"] == "stop"
    assert entries[0]["changes"]["access_control"]["read_access"] == ["carol", "dave"]


async def test_history_is_paged_newest_first_without_gaps(api: Api) -> None:
    job_id = await create(api)
    assert (await api.data(CLAIM, as_=WORKER))["claimJob"]["jobId"] == job_id
    await api.data(COMPLETE, {"id": job_id}, as_=WORKER)
    await api.data(ACCESS, {"id": job_id})
    everything = await history(api, job_id, 4)
    seen, after = [], None
    while True:
        page = (await api.data(HISTORY, {"id": job_id, "first": 1, "after": after})
                )["job"]["history"]
        assert page["totalCount"] == 4
        seen += [edge["node"] for edge in page["edges"]]
        if not page["pageInfo"]["hasNextPage"]:
            break
        after = page["pageInfo"]["endCursor"]
    assert seen == everything
    assert [entry["kind"] for entry in seen] == ["ACCESS_CHANGED", "COMPLETED", "CLAIMED",
                                                "CREATED"]


async def test_only_the_jobs_admins_read_its_history(api: Api) -> None:
    job_id = await create(api)
    await history(api, job_id, 1)
    # a writer (bob), a reader (carol), the worker: null, as an admin-only field
    for caller in (BOB, CAROL):
        found = (await api.data(HISTORY, {"id": job_id}, as_=caller))["job"]
        assert found["history"] is None
    # the admin role and the job's own admins read it
    for caller in (ALICE, ADMIN):
        found = (await api.data(HISTORY, {"id": job_id}, as_=caller))["job"]
        assert [e["node"]["kind"] for e in found["history"]["edges"]] == ["CREATED"]


async def test_the_reaper_requeueing_an_expired_claim_is_recorded_as_system(
        mongo_uri: str, database_name: str, store: Any) -> None:
    settings = make_settings(database=database_name, lease_seconds=0.5,
                             reaper_interval_seconds=0.1, retry_base_seconds=0)
    async with open_api(settings, mongo_uri) as api:
        job_id = await create(api)
        assert (await api.data(CLAIM, as_=WORKER))["claimJob"]["jobId"] == job_id
        entries = await history(api, job_id, 3)
        assert [(e["kind"], e["by"]) for e in entries[:2]] == [
            ("REQUEUED", "system"), ("CLAIMED", "worker-1")]
        assert entries[0]["changes"]["status"] == "PENDING"


async def test_a_forged_history_cursor_is_a_validation_error(api: Api) -> None:
    """Cursors are the entries' sequence numbers; one beyond 64 bits, or not plain digits,
    must be refused before it reaches the driver (which cannot encode such an int)."""
    job_id = await create(api)
    await history(api, job_id, 1)
    for text in ("9" * 30, "9223372036854775808", "-" + "9" * 30, "1e5", " 1", "1_0"):
        cursor = base64.urlsafe_b64encode(text.encode()).decode().rstrip("=")
        body = await api.execute(HISTORY, {"id": job_id, "after": cursor})
        [error] = body["errors"]
        assert error["extensions"] == {"code": "VALIDATION_ERROR", "field": "after"}, text
        assert body["data"]["job"]["history"] is None



class HistoryPolls(monitoring.CommandListener):
    """The history writer's polls (its ``getMore``s wait ``history_poll_seconds``) that
    were answered, in order."""

    def __init__(self, poll_ms: int) -> None:
        self.poll_ms = poll_ms
        self.polls: set[int] = set()
        self.answered = 0

    def started(self, event: monitoring.CommandStartedEvent) -> None:
        if event.command_name == "getMore" and event.command.get("maxTimeMS") == self.poll_ms:
            self.polls.add(event.request_id)

    def succeeded(self, event: monitoring.CommandSucceededEvent) -> None:
        if event.request_id in self.polls:
            self.answered += 1

    def failed(self, event: monitoring.CommandFailedEvent) -> None:
        pass


async def test_start_up_records_from_its_start_without_waiting_for_a_poll(
        mongo_uri: str, database_name: str, store: Any) -> None:
    # the history writer's stream is opened before serving, so the changes from then on are
    # recorded; the first round it ran for that also waited for a change, up to the poll
    # interval (half a second of every start, 60 s here, up to the embedded database's cap)
    settings = make_settings(database=database_name, history_poll_seconds=60)
    polls = HistoryPolls(60_000)
    async with open_api(settings, mongo_uri,
                        client_options={"event_listeners": [polls]}) as api:
        assert polls.answered == 0, "start-up waited for the history writer's poll"
        job_id = await create(api)
        entries = await history(api, job_id, 1)
        assert [(e["kind"], e["by"]) for e in entries] == [("CREATED", "alice")]
