"""The jobHistory subscription with Python's gql client: a job's admin hears each change
as it is recorded (who, what), ending with its deletion; a writer who is not an admin is
refused with FORBIDDEN, someone who cannot read the job with NOT_FOUND."""

from __future__ import annotations

import asyncio
import base64
from typing import Any

import pytest
from gql import Client, GraphQLRequest
from gql.transport.exceptions import TransportQueryError
from gql.transport.websockets import WebsocketsTransport

from repository import job_history
from tests.helpers.graphql import ALICE, BOB, WORKER, Api, Caller
from tests.helpers.live import DEADLINE, LiveServer
from tests.helpers.waiting import eventually

from .conftest import CLAIM, COMPLETE, PROGRESS, create_job, token

FOLLOW = GraphQLRequest("""subscription($id: ID!, $after: String) {
  jobHistory(jobId: $id, after: $after) { jobId kind by status changes cursor } }""")
CREATED = """query($id: ID!) { job(jobId: $id) { history { edges { cursor } } } }"""
DELETE = """mutation($id: ID!) { deleteJob(jobId: $id) { jobId } }"""


def transport(live: LiveServer, settings: Any, caller: Caller = ALICE) -> WebsocketsTransport:
    return WebsocketsTransport(url=live.ws_url,
                               subprotocols=[WebsocketsTransport.GRAPHQLWS_SUBPROTOCOL],
                               init_payload={"Authorization": f"Bearer {token(settings, caller)}"})


async def test_an_admin_hears_each_change_as_it_is_recorded(
        live: LiveServer, http: Api, settings: Any) -> None:
    job_id = await create_job(http, accessControl={"writeAccess": ["bob"]})
    steps = [
        lambda: http.data(CLAIM, {"types": ["pdf"]}, as_=WORKER),
        lambda: http.data(PROGRESS, {"id": job_id, "p": 50}, as_=WORKER),
        lambda: http.data(COMPLETE, {"id": job_id}, as_=WORKER),
        lambda: http.data(DELETE, {"id": job_id}),
    ]
    created = await eventually(lambda: created_cursor(http, job_id))
    await steps[0]()  # before subscribing: sent as one after `after`
    events: list[dict[str, Any]] = []
    async with Client(transport=transport(live, settings)) as session:
        request = GraphQLRequest(FOLLOW, variable_values={"id": job_id, "after": created})
        async with asyncio.timeout(DEADLINE):
            subscription = session.subscribe(request)
            events.append((await subscription.__anext__())["jobHistory"])
            for step in steps[1:]:
                await step()
                events.append((await subscription.__anext__())["jobHistory"])
            await subscription.aclose()
    assert [(e["jobId"], e["kind"], e["by"]) for e in events] == [
        (job_id, "CLAIMED", "worker-1"), (job_id, "PROGRESS", "worker-1"),
        (job_id, "COMPLETED", "worker-1"), (job_id, "DELETED", "alice")]
    assert events[1]["changes"]["progress"]["percent"] == 50
    assert events[2]["status"] == "COMPLETED"


async def created_cursor(http: Api, job_id: str) -> str | None:
    edges = (await http.data(CREATED, {"id": job_id}))["job"]["history"]["edges"]
    return edges[0]["cursor"] if edges else None


@pytest.mark.parametrize(("caller", "code"), [(BOB, "FORBIDDEN"), (Caller("eve"), "NOT_FOUND")])
async def test_others_are_refused(live: LiveServer, http: Api, settings: Any, caller: Caller,
                                  code: str) -> None:
    job_id = await create_job(http, accessControl={"writeAccess": ["bob"]})
    async with Client(transport=transport(live, settings, caller)) as session:
        with pytest.raises(TransportQueryError) as refused:
            async with asyncio.timeout(DEADLINE):
                async for _ in session.subscribe(
                        GraphQLRequest(FOLLOW, variable_values={"id": job_id})):
                    pass
    assert refused.value.errors[0]["extensions"]["code"] == code


async def test_a_forged_after_is_refused_as_a_bad_cursor(
        live: LiveServer, http: Api, settings: Any) -> None:
    """A sequence number beyond 64 bits must not reach the driver (an internal error)."""
    job_id = await create_job(http)
    forged = base64.urlsafe_b64encode(b"9" * 30).decode().rstrip("=")
    assert await refusal(live, settings, FOLLOW, {"id": job_id, "after": forged}) == {
        "code": "VALIDATION_ERROR", "field": "after"}


FROM_START = GraphQLRequest("""subscription($id: ID!, $after: String) {
  jobHistory(jobId: $id, after: $after, fromStart: true) { kind cursor } }""")
ENTRIES = """query($id: ID!) { job(jobId: $id) { history { totalCount } } }"""


async def test_from_start_sends_every_entry_recorded_so_far_then_each_new_one(
        live: LiveServer, http: Api, settings: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    """For a client whose ``history`` query found none (a job just created): one recorded
    before it subscribed is sent too, where ``after: null`` follows only later ones."""
    monkeypatch.setattr(job_history, "AFTER_PAGE", 2)  # caught up a page at a time
    job_id = await create_job(http)
    await http.data(CLAIM, {"types": ["pdf"]}, as_=WORKER)
    await http.data(PROGRESS, {"id": job_id, "p": 50}, as_=WORKER)

    async def recorded() -> bool:
        data = await http.data(ENTRIES, {"id": job_id})
        return bool(data["job"]["history"]["totalCount"] == 3)

    await eventually(recorded)
    kinds: list[str] = []
    async with Client(transport=transport(live, settings)) as session, asyncio.timeout(DEADLINE):
        subscription = session.subscribe(
            GraphQLRequest(FROM_START, variable_values={"id": job_id}))
        for _ in range(3):
            kinds.append((await anext(subscription))["jobHistory"]["kind"])
        await http.data(COMPLETE, {"id": job_id}, as_=WORKER)
        kinds.append((await anext(subscription))["jobHistory"]["kind"])
        await subscription.aclose()
    assert kinds == ["CREATED", "CLAIMED", "PROGRESS", "COMPLETED"]


async def test_from_start_with_after_is_refused(
        live: LiveServer, http: Api, settings: Any) -> None:
    job_id = await create_job(http)
    cursor = await eventually(lambda: created_cursor(http, job_id))
    assert await refusal(live, settings, FROM_START, {"id": job_id, "after": cursor}) == {
        "code": "VALIDATION_ERROR", "field": "fromStart"}


async def refusal(live: LiveServer, settings: Any, document: Any, variables: dict[str, Any]
                  ) -> Any:
    """The extensions of the one error a subscription is refused with, through gql."""
    async with Client(transport=transport(live, settings)) as session:
        with pytest.raises(TransportQueryError) as refused:
            async with asyncio.timeout(DEADLINE):
                async for _ in session.subscribe(GraphQLRequest(
                        document, variable_values=variables)):
                    pass
    return refused.value.errors[0]["extensions"]


SET_ACCESS = """mutation($id: ID!, $ac: AccessControlInput!) {
  setJobAccess(jobId: $id, accessControl: $ac) { version } }"""


@pytest.mark.parametrize(("read_access", "code"), [(["bob"], "FORBIDDEN"), ([], "NOT_FOUND")])
async def test_a_follower_whose_access_is_taken_is_ended(
        live: LiveServer, http: Api, settings: Any, read_access: list[str], code: str) -> None:
    """README, Subscriptions: one who loses read access hears NOT_FOUND and nothing more;
    one who may still read the job but no longer administer it is refused with FORBIDDEN,
    as a new subscription would be. (Found by breaker3: the subscription stayed open,
    silent, for as long as the client kept it.)"""
    job_id = await create_job(http, accessControl={"adminAccess": ["alice", "bob"],
                                                   "readAccess": ["bob"]})
    created = await eventually(lambda: created_cursor(http, job_id))
    await http.data(CLAIM, {"types": ["pdf"]}, as_=WORKER)
    async with Client(transport=transport(live, settings, BOB)) as session:
        subscription = session.subscribe(
            GraphQLRequest(FOLLOW, variable_values={"id": job_id, "after": created}))
        heard = []
        with pytest.raises(TransportQueryError) as ended:
            async with asyncio.timeout(DEADLINE):
                heard.append((await subscription.__anext__())["jobHistory"]["kind"])
                await http.data(SET_ACCESS, {"id": job_id, "ac": {
                    "adminAccess": ["alice"], "readAccess": read_access}})
                await http.data(PROGRESS, {"id": job_id, "p": 50}, as_=WORKER)
                async for event in subscription:
                    heard.append(event["jobHistory"]["kind"])
    assert heard == ["CLAIMED"]
    assert ended.value.errors[0]["extensions"]["code"] == code
