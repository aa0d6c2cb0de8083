"""Python gql against two API processes: writes through B, followed through A, which had
not yet read them when its subscriber came. Those changes (a job's creation the worker
could not read, and its claim; a reader's revoke, then the regrant) reach the subscriber
after its current state; they are old news, and must not end it as NOT_FOUND nor say
DELETED (the flaky ``test_big_logs`` of a loaded suite; ``graph/realtime/follow.py``
skips a state no newer than the one sent before it looks at its access). Deterministic:
A's stream gathers unheard until the subscriber comes, and nothing else of A's reads the
database meanwhile, so B's writes are always news to it."""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

import httpx
import pytest
from gql import GraphQLRequest

from tests.helpers.graphql import ALICE, BOB, WORKER, Api
from tests.helpers.live import DEADLINE, LiveServer
from tests.helpers.waiting import eventually

from .conftest import CLAIM, CREATE_JOB, LOG, PROGRESS, ws_client

CREATE_BATCH = """mutation($input: CreateBatchInput!) { createBatch(input: $input) { batchId } }"""
CREATE_DOCUMENTATION_JOB = """mutation($input: CreateDocumentationJobInput!) {
  createDocumentationJob(input: $input) { jobId } }"""
FOLLOW_EACH = {
    "jobChanged": "subscription($id: ID!) { jobChanged(jobId: $id) { version } }",
    "batchChanged": "subscription($id: ID!) { batchChanged(batchId: $id) { version } }",
    "documentationJobChanged": """subscription($id: ID!) {
  documentationJobChanged(jobId: $id) { version } }"""}
FOLLOW = """subscription($id: ID!) { jobChanged(jobId: $id) { jobId status version
  progress { percent } } }"""
LOGS = """subscription($id: ID!) { jobLogs(jobId: $id) { lastSeq entries { message } } }"""
LIST = """subscription($type: String) { jobsChanged(filter: {jobType: $type}, initial: 5) {
  kind jobId job { status version progress { percent } } } }"""
ACCESS = """mutation($b: ID!, $d: ID!, $j: ID!, $a: AccessControlInput!) {
  setBatchAccess(batchId: $b, accessControl: $a) { version }
  setDocumentationJobAccess(jobId: $d, accessControl: $a) { version }
  setJobAccess(jobId: $j, accessControl: $a) { version } }"""


def finished(field: str, event: dict[str, Any]) -> bool:
    if field == "jobLogs":
        return bool(event["lastSeq"] == 1)
    job = event["job"] if field == "jobsChanged" else event
    return job is not None and (job["progress"] or {}).get("percent") == 50


@pytest.mark.parametrize(("document", "field"), [
    (FOLLOW, "jobChanged"), (LOGS, "jobLogs"), (LIST, "jobsChanged")],
    ids=["jobChanged", "jobLogs", "jobsChanged"])
async def test_a_worker_follows_through_another_process_the_job_it_just_claimed(
        writer: LiveServer, follower: LiveServer, settings: Any, document: str,
        field: str) -> None:
    async with httpx.AsyncClient(base_url=writer.url, timeout=DEADLINE) as client:
        b = Api(client, settings)
        job_type = f"stale-{uuid.uuid4().hex[:8]}"
        # given a job alice created (the worker may not read it) that the worker claimed,
        # both through process B
        job_id = (await b.data(CREATE_JOB, {"input": {"jobType": job_type}}, as_=ALICE)
                  )["createJob"]["jobId"]
        assert (await b.data(CLAIM, {"types": [job_type]}, as_=WORKER)
                )["claimJob"]["jobId"] == job_id
        # when the worker follows it through process A and drives it through B
        seen: list[dict[str, Any]] = []
        async with ws_client(follower, settings) as gql, asyncio.timeout(DEADLINE):
            request = GraphQLRequest(document, variable_values={"id": job_id,
                                                                "type": job_type})
            async for event in gql.subscribe(request):
                seen.append(event[field])
                if len(seen) == 1:
                    await b.data(PROGRESS, {"id": job_id, "p": 50}, as_=WORKER)
                    await b.data(LOG, {"id": job_id, "m": "half"}, as_=WORKER)
                if finished(field, seen[-1]):
                    break
    # then it hears its current state and its own changes, in order, and is not ended
    # as NOT_FOUND by the creation it could not read (gql raises on that error)
    if field == "jobLogs":
        assert [entry["message"] for batch in seen for entry in batch["entries"]] == ["half"]
        return
    if field == "jobsChanged":  # sent as CURRENT, then its changes; never DELETED
        assert [event["kind"] for event in seen] == ["CURRENT"] + ["UPDATED"] * (len(seen) - 1)
        seen = [event["job"] for event in seen]
    assert seen[0]["status"] == "PROCESSING"
    versions = [state["version"] for state in seen]
    assert versions == sorted(set(versions))


@pytest.mark.parametrize("field", ["jobChanged", "batchChanged", "documentationJobChanged"])
async def test_a_reader_whose_access_came_back_is_not_ended_by_its_revoke_read_late(
        writer: LiveServer, follower: LiveServer, settings: Any, field: str) -> None:
    grant = {"readAccess": ["bob"], "adminAccess": ["alice"]}
    async with httpx.AsyncClient(base_url=writer.url, timeout=DEADLINE) as client:
        b = Api(client, settings)
        # given a job, a batch and a documentation job of alice's that bob could read, could
        # not, and can again: all written through process B
        ids = {"j": (await b.data(CREATE_JOB, {"input": {"jobType": "regrant",
                                                        "accessControl": grant}})
                     )["createJob"]["jobId"],
               "b": (await b.data(CREATE_BATCH, {"input": {
                   "batchName": "regrant", "accessControl": grant,
                   "jobs": [{"jobType": "regrant"}]}}))["createBatch"]["batchId"],
               "d": (await b.data(CREATE_DOCUMENTATION_JOB, {"input": {
                   "repositoryPath": "/r", "repositoryName": "r", "outputDirectory": "/o",
                   "accessControl": grant}}))["createDocumentationJob"]["jobId"]}
        await b.data(ACCESS, {**ids, "a": {"adminAccess": ["alice"]}})
        after = await b.data(ACCESS, {**ids, "a": grant})
        # when bob follows one through process A, and alice changes it through B
        target = {"jobChanged": ("j", "setJobAccess"), "batchChanged": ("b", "setBatchAccess"),
                  "documentationJobChanged": ("d", "setDocumentationJobAccess")}[field]
        granted = after[target[1]]["version"]
        seen: list[dict[str, Any]] = []
        async with ws_client(follower, settings, BOB) as gql, asyncio.timeout(DEADLINE):
            request = GraphQLRequest(FOLLOW_EACH[field], variable_values={"id": ids[target[0]]})
            async for event in gql.subscribe(request):
                seen.append(event[field])
                if len(seen) == 1:
                    await b.data(ACCESS, {**ids, "a": {**grant, "writeAccess": ["carol"]}})
                if seen[-1]["version"] > granted:
                    break
    # then it hears the state it may read and alice's change, and is not ended as NOT_FOUND
    # by the revoke, read late (gql raises on that error)
    versions = [state["version"] for state in seen]
    assert versions[0] >= granted
    assert versions == sorted(set(versions))


async def test_a_reader_revoked_before_it_subscribes_hears_nothing_of_that_job(
        writer: LiveServer, follower: LiveServer, settings: Any) -> None:
    """Found by a tester (breaker13): bob, revoked through B, then following every job
    through A, was sent the job's creation and update from before the revoke, then
    DELETED (A's cut-off was the last cluster time its client had been told)."""
    grant = {"readAccess": ["bob"], "adminAccess": ["alice"]}
    job_type = f"revoked-{uuid.uuid4().hex[:8]}"
    async with httpx.AsyncClient(base_url=writer.url, timeout=DEADLINE) as client:
        b = Api(client, settings)
        # given a job of alice's that bob could read, changed, then taken from him: all
        # through process B
        job_id = (await b.data(CREATE_JOB, {"input": {"jobType": job_type,
                                                     "accessControl": grant}})
                  )["createJob"]["jobId"]
        await b.data("mutation($id: ID!) { setJobPriority(jobId: $id, priority: 42) "
                     "{ version } }", {"id": job_id})
        await b.data("""mutation($id: ID!, $a: AccessControlInput!) {
          setJobAccess(jobId: $id, accessControl: $a) { version } }""",
                     {"id": job_id, "a": {"adminAccess": ["alice"]}})
        # when bob follows that type of job through process A (the job is not among the
        # current ones he is sent), and alice then creates one he may read, through B
        seen: list[dict[str, Any]] = []
        async with ws_client(follower, settings, BOB) as gql, asyncio.timeout(DEADLINE):
            request = GraphQLRequest("""subscription($type: String) {
              jobsChanged(filter: {jobType: $type}, initial: 5) { kind jobId } }""",
                                     variable_values={"type": job_type})
            subscription = gql.subscribe(request)
            created = asyncio.ensure_future(anext(subscription))
            await eventually(lambda: follower.app.state.hub.count == 1
                             and not follower.app.state.hub.feed._joiners)
            marker = (await b.data(CREATE_JOB, {"input": {"jobType": job_type,
                                                         "accessControl": grant}})
                      )["createJob"]["jobId"]
            seen.append((await created)["jobsChanged"])
            await subscription.aclose()
    # then the first (and only) thing he hears is the new job: nothing of the one taken
    assert seen == [{"kind": "CREATED", "jobId": marker}]
