"""``documentationJobChanged`` with Python's gql client: a documentation job's claim,
statistics and requeue reach subscribers with the new fields, and a worker follows the job
it holds, which it may read only while it holds it."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from gql import Client, GraphQLRequest
from gql.transport.exceptions import TransportQueryError
from gql.transport.websockets import WebsocketsTransport

from tests.helpers.graphql import ALICE, WORKER, Api
from tests.helpers.live import DEADLINE, LiveServer

from .conftest import token

FOLLOW = GraphQLRequest("""subscription($id: ID!) {
  documentationJobChanged(jobId: $id) {
    status version claimedBy attempts runAt leaseExpiresAt
    statistics { leafNodes totalTokensUsed }
    previousErrors { message attempt worker }
  } }""")
CREATE = """mutation { createDocumentationJob(input: {repositoryPath: "/src/app",
  repositoryName: "app", outputDirectory: "/docs",
  retryPolicy: {backoff: FIXED, baseSeconds: 0}}) { jobId } }"""
CLAIM = "mutation { claimDocumentationJob { jobId } }"
ADD = """mutation($id: ID!) { addDocumentationJobStatistics(jobId: $id,
  increments: {leafNodes: 3, totalTokensUsed: 700}) { version } }"""
FAIL = """mutation($id: ID!) { failDocumentationJob(jobId: $id,
  errorMessage: "the LLM timed out") { status } }"""


def session(live: LiveServer, settings: Any, caller: Any) -> Client:
    return Client(transport=WebsocketsTransport(
        url=live.ws_url, subprotocols=[WebsocketsTransport.GRAPHQLWS_SUBPROTOCOL],
        init_payload={"Authorization": f"Bearer {token(settings, caller)}"}))


async def test_documentation_job_changed_reports_claims_statistics_and_requeues(
    live: LiveServer, http: Api, settings: Any
) -> None:
    job_id = (await http.data(CREATE))["createDocumentationJob"]["jobId"]
    steps = [(CLAIM, {}), (ADD, {"id": job_id}), (FAIL, {"id": job_id})]
    events: list[dict[str, Any]] = []
    async with session(live, settings, ALICE) as alice:
        async with asyncio.timeout(DEADLINE):
            async for event in alice.subscribe(GraphQLRequest(
                    FOLLOW, variable_values={"id": job_id})):
                events.append(event["documentationJobChanged"])
                if len(events) == 4:
                    break
                document, variables = steps[len(events) - 1]
                await http.data(document, variables, as_=WORKER)

    assert [(e["status"], e["version"], e["claimedBy"], e["attempts"]) for e in events] == [
        ("PENDING", 0, None, 0), ("RUNNING", 1, WORKER.user_id, 1),
        ("RUNNING", 2, WORKER.user_id, 1), ("PENDING", 3, None, 1)]
    assert events[1]["leaseExpiresAt"] is not None and events[3]["leaseExpiresAt"] is None
    assert events[2]["statistics"] == {"leafNodes": 3, "totalTokensUsed": 700}
    assert events[3]["previousErrors"] == [
        {"message": "the LLM timed out", "attempt": 1, "worker": WORKER.user_id}]


async def test_a_worker_follows_the_job_it_holds_until_it_gives_it_back(
    live: LiveServer, http: Api, settings: Any
) -> None:
    job_id = (await http.data(CREATE))["createDocumentationJob"]["jobId"]  # alice's, private
    await http.data(CLAIM, as_=WORKER)
    seen: list[str] = []
    async with session(live, settings, WORKER) as worker:
        with pytest.raises(TransportQueryError) as ended:
            async with asyncio.timeout(DEADLINE):
                async for event in worker.subscribe(GraphQLRequest(
                        FOLLOW, variable_values={"id": job_id})):
                    seen.append(event["documentationJobChanged"]["status"])
                    await http.data(FAIL, {"id": job_id}, as_=WORKER)

    assert seen == ["RUNNING"]
    assert ended.value.errors[0]["extensions"]["code"] == "NOT_FOUND"
