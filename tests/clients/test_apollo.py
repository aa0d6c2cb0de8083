"""Apollo Client (core, in Node): a query and a mutation over HttpLink, and a subscription
over GraphQLWsLink (split by operation type) or over HttpLink itself, which streams it as
multipart/mixed.

Not here yet: a ``completeJob`` result updating an earlier cached ``job`` query with no
typePolicies, which needs an ``id`` on every object type (issue 12, item 5)."""

from __future__ import annotations

from typing import Any

import pytest

from tests.helpers.graphql import WORKER, Api
from tests.helpers.live import LiveServer
from tests.helpers.node import node_script

from .conftest import CLAIM, LOG, create_job, token

pytestmark = pytest.mark.usefixtures("node_clients")


@pytest.mark.parametrize("subscriptions", ["ws", "http"])
async def test_query_mutation_and_subscription(
    live: LiveServer, http: Api, settings: Any, subscriptions: str
) -> None:
    job_id = await create_job(http)
    spec = {"http": f"{live.url}/graphql", "ws": live.ws_url, "token": token(settings),
            "jobId": job_id, "jobType": "apollo", "subscriptions": subscriptions}
    async with node_script("apollo.mjs", spec) as apollo:
        query = await apollo.next()
        mutation = await apollo.next()
        first = await apollo.next()
        # when the job changes twice
        await http.data(LOG, {"id": job_id, "m": "from the test"})
        await http.data(CLAIM, {"types": ["pdf"]}, as_=WORKER)
        lines = await apollo.until(
            lambda line: "next" not in line or line["next"]["jobChanged"]["version"] == 2)
    assert query == {"query": {"job": {
        "__typename": "SecretaryJob", "jobId": job_id, "status": "PENDING", "version": 0}}}
    created = mutation["mutation"]["createJob"]
    assert (created["jobType"], created["status"]) == ("apollo", "PENDING")
    assert created["jobId"] != job_id
    events = [line.get("next", line) for line in (first, *lines)]
    assert events == [
        {"jobChanged": {"__typename": "SecretaryJob", "jobId": job_id, "status": status,
                        "version": version}}
        for version, status in ((0, "PENDING"), (1, "PENDING"), (2, "PROCESSING"))]
