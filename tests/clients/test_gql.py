"""Python's gql client with its websockets transport, on both subprotocols: a query over
the socket and a subscription that receives real events."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from gql import Client, GraphQLRequest
from gql.transport.exceptions import TransportQueryError
from gql.transport.websockets import WebsocketsTransport

from tests.helpers.graphql import ALICE, BOB, Api
from tests.helpers.live import DEADLINE, LiveServer

from .conftest import LOG, create_job, token

PROTOCOLS = [WebsocketsTransport.GRAPHQLWS_SUBPROTOCOL,  # graphql-transport-ws
             WebsocketsTransport.APOLLO_SUBPROTOCOL]  # graphql-ws

FOLLOW = GraphQLRequest("""subscription($id: ID!) {
  jobChanged(jobId: $id) { jobId status version logSeq } }""")


def transport(live: LiveServer, settings: Any, protocol: str, caller: Any = ALICE
              ) -> WebsocketsTransport:
    bearer = f"Bearer {token(settings, caller)}"
    return WebsocketsTransport(url=live.ws_url, subprotocols=[protocol],
                               init_payload={"Authorization": bearer})


@pytest.mark.parametrize("protocol", PROTOCOLS)
async def test_a_query_over_the_socket(
    live: LiveServer, http: Api, settings: Any, protocol: str
) -> None:
    job_id = await create_job(http)
    async with Client(transport=transport(live, settings, protocol)) as session:
        result = await session.execute(GraphQLRequest(
            "query($id: ID!) { viewer { userId } job(jobId: $id) { jobId status } }",
            variable_values={"id": job_id}))
    assert result == {"viewer": {"userId": "alice"},
                      "job": {"jobId": job_id, "status": "PENDING"}}


@pytest.mark.parametrize("protocol", PROTOCOLS)
async def test_a_subscription_receives_each_change(
    live: LiveServer, http: Api, settings: Any, protocol: str
) -> None:
    job_id = await create_job(http)
    events = []
    async with Client(transport=transport(live, settings, protocol)) as session:
        request = GraphQLRequest(FOLLOW, variable_values={"id": job_id})
        async with asyncio.timeout(DEADLINE):
            async for event in session.subscribe(request):
                events.append(event["jobChanged"])
                if len(events) == 3:
                    break
                await http.data(LOG, {"id": job_id, "m": f"entry {len(events)}"})
    assert [(e["jobId"], e["version"], e["logSeq"]) for e in events] == [
        (job_id, 0, 0), (job_id, 1, 1), (job_id, 2, 2)]


@pytest.mark.parametrize("protocol", PROTOCOLS)
async def test_an_unreadable_job_ends_the_subscription_with_not_found(
    live: LiveServer, http: Api, settings: Any, protocol: str
) -> None:
    job_id = await create_job(http)  # alice's, private
    async with Client(transport=transport(live, settings, protocol, BOB)) as session:
        with pytest.raises(TransportQueryError) as refused:
            async with asyncio.timeout(DEADLINE):
                async for _ in session.subscribe(
                        GraphQLRequest(FOLLOW, variable_values={"id": job_id})):
                    pass
    assert refused.value.errors[0]["extensions"]["code"] == "NOT_FOUND"


@pytest.mark.parametrize("protocol", PROTOCOLS)
async def test_a_mutation_over_the_socket_runs_as_the_sockets_caller(
    live: LiveServer, http: Api, settings: Any, protocol: str
) -> None:
    """Deliberate (README, Subscriptions): mutations are refused only by GET, which must be
    safe; a socket authenticates in its connection-init payload and is checked against
    JOBGRAPH_CORS_ORIGINS, so a mutation over it runs under the same rules as a POST."""
    create = GraphQLRequest('mutation Make { createJob(input: {jobType: "socket"}) '
                            "{ jobId owner status } }")
    async with Client(transport=transport(live, settings, protocol)) as session:
        made = (await session.execute(create))["createJob"]
    assert made["owner"] == "alice" and made["status"] == "PENDING"
    # it was written, and is alice's
    assert (await http.data("query($id: ID!) { job(jobId: $id) { jobType owner } }",
                            {"id": made["jobId"]})) == {
        "job": {"jobType": "socket", "owner": "alice"}}
    # and an anonymous socket may no more create a job than an anonymous POST
    anonymous = WebsocketsTransport(url=live.ws_url, subprotocols=[protocol])
    async with Client(transport=anonymous) as session:
        with pytest.raises(TransportQueryError) as refused:
            await session.execute(create)
    assert refused.value.errors[0]["extensions"]["code"] == "FORBIDDEN"
