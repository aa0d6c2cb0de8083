"""Per-request caches (DataLoaders) live one operation, or one subscription event, never as
long as the connection: what a socket learnt before access was revoked is not served
after. Python's gql client over WebSockets (both subprotocols) and the npm graphql-sse
client over HTTP."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from gql import Client, GraphQLRequest
from gql.transport.websockets import WebsocketsTransport

from tests.helpers.graphql import BOB, Api
from tests.helpers.live import DEADLINE, LiveServer
from tests.helpers.node import node_script

from .conftest import LOG, token

PROTOCOLS = [WebsocketsTransport.GRAPHQLWS_SUBPROTOCOL,  # graphql-transport-ws
             WebsocketsTransport.APOLLO_SUBPROTOCOL]  # graphql-ws

JOB_AND_BATCH = "query($id: ID!) { job(jobId: $id) { jobId batch { batchId } } }"
FOLLOW_BATCH = """subscription($id: ID!) {
  jobChanged(jobId: $id) { version batch { batchId counts { total } } } }"""
SET_BATCH_ACCESS = """mutation($id: ID!, $ac: AccessControlInput!) {
  setBatchAccess(batchId: $id, accessControl: $ac) { version } }"""


async def batch_bob_can_read(http: Api) -> tuple[str, str]:
    """(batch id, job id): alice's batch and its one job, both readable by bob."""
    data = await http.data("""mutation { createBatch(input: {batchName: "b",
        accessControl: {readAccess: ["bob"]},
        jobs: [{jobType: "pdf", accessControl: {readAccess: ["bob"]}}]}) {
        batchId jobs(first: 1) { edges { node { jobId } } } } }""")
    batch = data["createBatch"]
    return batch["batchId"], batch["jobs"]["edges"][0]["node"]["jobId"]


async def revoke_bob(http: Api, batch_id: str) -> None:
    await http.data(SET_BATCH_ACCESS, {"id": batch_id, "ac": {"adminAccess": ["alice"]}})


def transport(live: LiveServer, settings: Any, protocol: str) -> WebsocketsTransport:
    return WebsocketsTransport(url=live.ws_url, subprotocols=[protocol],
                               init_payload={"Authorization": f"Bearer {token(settings, BOB)}"})


@pytest.mark.parametrize("protocol", PROTOCOLS)
async def test_a_later_query_on_the_same_socket_does_not_see_a_revoked_batch(
    live: LiveServer, http: Api, settings: Any, protocol: str
) -> None:
    batch_id, job_id = await batch_bob_can_read(http)
    request = GraphQLRequest(JOB_AND_BATCH, variable_values={"id": job_id})
    async with Client(transport=transport(live, settings, protocol)) as session:
        before = await session.execute(request)
        await revoke_bob(http, batch_id)
        after = await session.execute(request)
    assert before["job"]["batch"] == {"batchId": batch_id}
    # the job is still bob's to read, its batch no longer: null, as for a missing batch
    assert after == {"job": {"jobId": job_id, "batch": None}}


@pytest.mark.parametrize("protocol", PROTOCOLS)
async def test_a_later_subscription_event_does_not_see_a_revoked_batch(
    live: LiveServer, http: Api, settings: Any, protocol: str
) -> None:
    batch_id, job_id = await batch_bob_can_read(http)
    events = []
    async with Client(transport=transport(live, settings, protocol)) as session:
        request = GraphQLRequest(FOLLOW_BATCH, variable_values={"id": job_id})
        async with asyncio.timeout(DEADLINE):
            async for event in session.subscribe(request):
                events.append(event["jobChanged"])
                if len(events) == 1:
                    await revoke_bob(http, batch_id)
                    await http.data(LOG, {"id": job_id, "m": "after the revocation"})
                elif event["jobChanged"]["version"] >= 1:
                    break
    assert events[0]["batch"] == {"batchId": batch_id, "counts": {"total": 1}}
    assert events[-1] == {"version": 1, "batch": None}


@pytest.mark.usefixtures("node_clients")
async def test_a_later_event_over_server_sent_events_does_not_see_a_revoked_batch(
    live: LiveServer, http: Api, settings: Any
) -> None:
    batch_id, job_id = await batch_bob_can_read(http)
    async with node_script("graphql-sse-subscribe.mjs", {
            "url": f"{live.url}/graphql", "token": token(settings, BOB),
            "query": FOLLOW_BATCH, "variables": {"id": job_id}}) as client:
        first = (await client.next())["next"]["data"]["jobChanged"]
        await revoke_bob(http, batch_id)
        await http.data(LOG, {"id": job_id, "m": "after the revocation"})
        later = (await client.next())["next"]["data"]["jobChanged"]
    assert first["batch"] == {"batchId": batch_id, "counts": {"total": 1}}
    assert later == {"version": 1, "batch": None}

