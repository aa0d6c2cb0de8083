"""Identical subscriptions share one execution per event (README, Performance): through
the npm graphql-ws client, several subscribers of one job, on sockets of their own and as
different users, hear the same events with the same data; a reader whose access is taken
hears NOT_FOUND once and nothing after it, while the others go on."""

from __future__ import annotations

from typing import Any

import pytest

from tests.helpers.graphql import ADMIN, BOB, WORKER, Api, Caller
from tests.helpers.live import LiveServer
from tests.helpers.node import node_script

from .conftest import CLAIM, PROGRESS, create_job, token

pytestmark = pytest.mark.usefixtures("node_clients")

CAROL = Caller("carol")
# reads nothing of its caller: alice's, bob's and carol's subscriptions share one group
JOB_CHANGED = """subscription($id: ID!) {
  jobChanged(jobId: $id) { jobId status version progress { percent } } }"""
SET_ACCESS = """mutation($id: ID!, $ac: AccessControlInput!) {
  setJobAccess(jobId: $id, accessControl: $ac) { version } }"""
LABELS = ("alice-1", "alice-2", "alice-3", "bob", "carol")


def view_of(server: LiveServer) -> Any:
    [route] = [route for route in server.app.routes
               if getattr(route, "path", None) == "/graphql" and hasattr(route, "methods")]
    return route.endpoint


async def test_identical_subscribers_hear_the_same_events_and_a_revoked_one_nothing(
    live: LiveServer, http: Api, settings: Any
) -> None:
    # given alice's job that bob and carol may read, and five identical subscriptions
    job_id = await create_job(http, accessControl={"readAccess": ["bob", "carol"]})
    await http.data(CLAIM, {"types": ["pdf"]}, as_=WORKER)
    callers = {"bob": BOB, "carol": CAROL}
    subscribers = [{"label": label, "token": token(settings, callers.get(label, Caller(
        "alice"))), "query": JOB_CHANGED, "variables": {"id": job_id}} for label in LABELS]
    async with node_script("graphql-ws-many.mjs", {
            "url": live.ws_url, "subscribers": subscribers}) as script:
        heard: dict[str, list[dict[str, Any]]] = {label: [] for label in LABELS}

        async def until(done: Any) -> None:
            while not done():
                try:
                    line = await script.next()
                except TimeoutError:
                    raise AssertionError(f"still waiting, having heard {heard}") from None
                heard[line["label"]].append(line)

        def events(label: str) -> list[Any]:
            return [line["next"]["data"]["jobChanged"] for line in heard[label]
                    if "next" in line and not line["next"].get("errors")]

        def percents(label: str) -> list[Any]:
            return [(event["progress"] or {}).get("percent") for event in events(label)]

        await until(lambda: all(events(label) for label in LABELS))
        group_sizes = [group.members for group in view_of(live).fanout.groups.values()]
        # when a worker reports progress
        await http.data(PROGRESS, {"id": job_id, "p": 42}, as_=WORKER)
        await until(lambda: all(42 in percents(label) for label in LABELS))
        # then all five heard it, the same
        assert len({repr(events(label)) for label in LABELS}) == 1, heard
        # when carol's read access is taken, and the job progresses twice more
        await http.data(SET_ACCESS, {"id": job_id, "ac": {
            "readAccess": ["bob"], "adminAccess": ["alice"]}}, as_=ADMIN)
        await http.data(PROGRESS, {"id": job_id, "p": 77}, as_=WORKER)
        await http.data(PROGRESS, {"id": job_id, "p": 99}, as_=WORKER)
        others = [label for label in LABELS if label != "carol"]
        await until(lambda: all(99 in percents(label) for label in others)
                    and {"label": "carol", "complete": True} in heard["carol"])
    # then carol heard NOT_FOUND once, where her access ended, and nothing after it
    errors = [line for line in heard["carol"]
              if "error" in line or "errors" in line.get("next", {})]
    assert [[e["extensions"]["code"] for e in line["next"]["errors"]] for line in errors
            ] == [["NOT_FOUND"]], heard["carol"]
    after = heard["carol"][heard["carol"].index(errors[0]) + 1:]
    assert after == [{"label": "carol", "complete": True}], after
    assert percents("carol") == [None, 42]
    # and the others heard every state, the same
    assert len({repr(events(label)) for label in others}) == 1
    assert percents("bob") == [None, 42, 42, 77, 99]
    # (through one shared group: the five subscriptions were parked together)
    assert max(group_sizes) == len(LABELS)
