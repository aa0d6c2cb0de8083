"""``jobsChanged`` when read access changes: a job you lose read access to leaves your
list exactly as a deleted job does (DELETED, no data), at the change that took your
access, and after that you hear nothing of it, not even its deletion. Python's gql client
over both WebSocket subprotocols."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import pytest
from gql import Client, GraphQLRequest
from gql.transport.websockets import WebsocketsTransport

from tests.helpers.graphql import BOB, Api
from tests.helpers.live import DEADLINE, LiveServer

from .conftest import LOG, create_job, token

PROTOCOLS = [WebsocketsTransport.GRAPHQLWS_SUBPROTOCOL,  # graphql-transport-ws
             WebsocketsTransport.APOLLO_SUBPROTOCOL]  # graphql-ws

JOBS_CHANGED = GraphQLRequest("""subscription($initial: Int!) {
  jobsChanged(initial: $initial) { kind jobId job { jobId version } } }""")
SET_ACCESS = """mutation($id: ID!, $ac: AccessControlInput!) {
  setJobAccess(jobId: $id, accessControl: $ac) { version } }"""
DELETE = """mutation($id: ID!) { deleteJob(jobId: $id) { jobId } }"""


class Events:
    """bob's jobsChanged events, read up to a marker job."""

    def __init__(self, stream: AsyncIterator[dict[str, Any]]) -> None:
        self.stream = stream

    async def until(self, marker: str) -> list[tuple[str, str, Any]]:
        seen = []
        async with asyncio.timeout(DEADLINE):
            async for event in self.stream:
                change = event["jobsChanged"]
                seen.append((change["kind"], change["jobId"], change["job"]))
                if change["jobId"] == marker:
                    return seen
        raise AssertionError(f"the stream ended before {marker}: {seen}")


async def public_marker(http: Api) -> str:
    return await create_job(http, "marker", accessControl={"visibility": "PUBLIC"})


@pytest.mark.parametrize("protocol", PROTOCOLS)
@pytest.mark.parametrize("first_seen", ["CURRENT", "CREATED"])
async def test_a_job_whose_read_access_you_lose_leaves_as_deleted_and_is_then_forgotten(
    live: LiveServer, http: Api, settings: Any, protocol: str, first_seen: str
) -> None:
    # given bob has a job in his list: sent first (CURRENT), or created since
    if first_seen == "CURRENT":
        job_id = await create_job(http, accessControl={"readAccess": ["bob"]})
    ready = await public_marker(http)
    transport = WebsocketsTransport(
        url=live.ws_url, subprotocols=[protocol],
        init_payload={"Authorization": f"Bearer {token(settings, BOB)}"})
    async with Client(transport=transport) as session:
        stream = session.subscribe(GraphQLRequest(JOBS_CHANGED, variable_values={"initial": 2}))
        events = Events(stream)
        seen = await events.until(ready)
        if first_seen == "CREATED":
            job_id = await create_job(http, accessControl={"readAccess": ["bob"]})
            await http.data(LOG, {"id": job_id, "m": "seen by bob"})
            seen = await events.until(await public_marker(http))
        assert [kind for kind, jid, _ in seen if jid == job_id] == (
            ["CREATED", "UPDATED"] if first_seen == "CREATED" else ["CURRENT"])
        # when alice takes bob's read access away
        await http.data(SET_ACCESS, {"id": job_id, "ac": {"adminAccess": ["alice"]}})
        revoked = await events.until(await public_marker(http))
        # then the job leaves bob's list as a deleted one does, with nothing about it
        assert [event for event in revoked if event[1] == job_id] == [
            ("DELETED", job_id, None)]
        # and what happens to it afterwards, its deletion included, never reaches him
        await http.data(LOG, {"id": job_id, "m": "not for bob"})
        await http.data(DELETE, {"id": job_id})
        after = await events.until(await public_marker(http))
        assert [event for event in after if event[1] == job_id] == []
        await stream.aclose()


@pytest.mark.parametrize("protocol", PROTOCOLS[:1])
async def test_a_job_whose_read_access_you_regain_comes_back_as_updated(
    live: LiveServer, http: Api, settings: Any, protocol: str
) -> None:
    job_id = await create_job(http)  # alice's, private
    transport = WebsocketsTransport(
        url=live.ws_url, subprotocols=[protocol],
        init_payload={"Authorization": f"Bearer {token(settings, BOB)}"})
    ready = await public_marker(http)
    async with Client(transport=transport) as session:
        stream = session.subscribe(GraphQLRequest(JOBS_CHANGED, variable_values={"initial": 2}))
        events = Events(stream)
        assert [e for e in await events.until(ready) if e[1] == job_id] == []
        await http.data(SET_ACCESS, {"id": job_id, "ac": {"readAccess": ["bob"]}})
        granted = await events.until(await public_marker(http))
        await stream.aclose()
    assert [(kind, jid) for kind, jid, _ in granted if jid == job_id] == [("UPDATED", job_id)]
