"""A process with no subscriber reads its change stream in large gathers (its states are
kept for the next subscriber, and no one waits for them: ``UNHEARD_GATHER_SECONDS``); the
first subscriber must hear changes at once, not after the gather. Python's gql client."""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

import httpx
import pytest
from gql import Client, GraphQLRequest
from gql.transport.exceptions import TransportQueryError
from gql.transport.websockets import WebsocketsTransport

from repository import changes
from tests.helpers.graphql import WORKER, Api, make_settings
from tests.helpers.live import DEADLINE, live_server
from tests.helpers.waiting import eventually

from .conftest import CLAIM, PROGRESS, create_job, token

JOB_CHANGED = GraphQLRequest("""subscription($id: ID!) {
  jobChanged(jobId: $id) { jobId status version } }""")


async def test_the_first_subscriber_of_a_quiet_process_hears_the_next_change_at_once(
    http: Api, settings: Any, mongo_uri: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(changes, "UNHEARD_GATHER_SECONDS", 3600.0)  # an hour: never waited out
    job_type = f"quiet-{uuid.uuid4().hex[:8]}"
    async with live_server(settings, mongo_uri) as quiet:
        hub = quiet.app.state.hub
        # given a process with no subscriber that read a change and now gathers more
        job_id = await create_job(http, job_type)
        await eventually(lambda: hub.feed._unheard is not None)
        await http.data(CLAIM, {"types": [job_type]}, as_=WORKER)  # read after the gather

        # when the first subscriber comes, and the job changes
        transport = WebsocketsTransport(
            url=quiet.ws_url, init_payload={"Authorization": f"Bearer {token(settings)}"})
        async with Client(transport=transport) as session, asyncio.timeout(DEADLINE):
            stream = session.subscribe(GraphQLRequest(JOB_CHANGED,
                                                      variable_values={"id": job_id}))
            current = (await anext(stream))["jobChanged"]
            assert (current["status"], current["version"]) == ("PROCESSING", 1)
            await http.data(PROGRESS, {"id": job_id, "p": 40}, as_=WORKER)

            # then it hears it well within the deadline (not in an hour)
            progressed = (await anext(stream))["jobChanged"]
            assert progressed["version"] == 2
            await stream.aclose()
        await eventually(lambda: not hub.feed.listened)  # and with it gone, gathers again


JOBS_CHANGED = GraphQLRequest("""subscription($type: String!) {
  jobsChanged(filter: {jobType: $type}, initial: 0) { kind jobId job { version } } }""")


async def test_a_first_subscriber_hears_only_what_changed_after_it_came(
    settings: Any, mongo_uri: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``jobsChanged(initial: 0)`` has no current state to hide older changes behind: the
    ones this process wrote before the subscription, read by its stream only after
    (it gathers), must not come as news; the next one must."""
    monkeypatch.setattr(changes, "UNHEARD_GATHER_SECONDS", 3600.0)
    job_type = f"quiet-{uuid.uuid4().hex[:8]}"
    async with live_server(settings, mongo_uri) as quiet, httpx.AsyncClient(
            base_url=quiet.url) as client:
        http = Api(client, settings)  # writes through the quiet process itself
        hub = quiet.app.state.hub
        await create_job(http, job_type)
        await eventually(lambda: hub.feed._unheard is not None)
        claimed = await http.data(CLAIM, {"types": [job_type]}, as_=WORKER)  # unread yet
        job_id = claimed["claimJob"]["jobId"]

        transport = WebsocketsTransport(
            url=quiet.ws_url, init_payload={"Authorization": f"Bearer {token(settings)}"})
        async with Client(transport=transport) as session, asyncio.timeout(DEADLINE):
            stream = session.subscribe(GraphQLRequest(JOBS_CHANGED,
                                                      variable_values={"type": job_type}))
            first = asyncio.ensure_future(anext(stream))
            await eventually(lambda: hub.count)  # subscribed
            await http.data(PROGRESS, {"id": job_id, "p": 40}, as_=WORKER)
            event = (await first)["jobsChanged"]
            assert (event["kind"], event["jobId"], event["job"]["version"]) == (
                "UPDATED", job_id, 2), "sent a change from before it subscribed"
            await stream.aclose()


async def test_subscriptions_sent_while_the_first_waits_keep_the_connection_limit(
    mongo_uri: str, store: Any, database_name: str
) -> None:
    """The first subscriber of a quiet process waits to be let in (a round trip or two);
    the ones sent on the same socket meanwhile count against the connection's limit all
    the same: all three once passed a limit of two."""
    settings = make_settings(database=database_name, max_subscriptions_per_connection=2)
    async with live_server(settings, mongo_uri) as quiet, httpx.AsyncClient(
            base_url=quiet.url) as client:
        job_id = await create_job(Api(client, settings), f"limit-{uuid.uuid4().hex[:8]}")
        transport = WebsocketsTransport(
            url=quiet.ws_url, init_payload={"Authorization": f"Bearer {token(settings)}"})
        async with Client(transport=transport) as session, asyncio.timeout(DEADLINE):
            streams = [session.subscribe(GraphQLRequest(JOB_CHANGED,
                                                        variable_values={"id": job_id}))
                       for _ in range(3)]
            outcomes = await asyncio.gather(*(anext(stream) for stream in streams),
                                            return_exceptions=True)
            refused = [outcome for outcome in outcomes if isinstance(outcome, Exception)]
            assert len(refused) == 1, outcomes
            assert isinstance(refused[0], TransportQueryError), refused
            assert refused[0].errors is not None
            assert refused[0].errors[0]["extensions"]["code"] == "TOO_MANY_SUBSCRIPTIONS"
            for stream, outcome in zip(streams, outcomes, strict=True):
                if not isinstance(outcome, Exception):
                    assert outcome["jobChanged"]["jobId"] == job_id
                    await stream.aclose()
