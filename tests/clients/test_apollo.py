"""Apollo Client (core, in Node): a query and a mutation over HttpLink, a subscription
over GraphQLWsLink (split by operation type) or over HttpLink itself, which streams it as
multipart/mixed, and a ``completeJob`` result updating an earlier cached ``job`` query in
InMemoryCache with no typePolicies (every entity has a Relay ``id``)."""

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


async def test_a_mutation_result_updates_the_cached_query_without_type_policies(
    live: LiveServer, http: Api, settings: Any
) -> None:
    # given alice's job, claimed by a worker
    job_id = await create_job(http)
    await http.data(CLAIM, {"types": ["pdf"]}, as_=WORKER)
    spec = {"http": f"{live.url}/graphql", "token": token(settings),
            "workerToken": token(settings, WORKER), "jobId": job_id}
    async with node_script("apollo-cache.mjs", spec) as apollo:
        policies = await apollo.next()
        # when alice's client has read the job, and the worker completes it through the
        # same client (its cache), selecting only the job's id and status
        watched = await apollo.next()
        lines = await apollo.until(lambda line: "cached" in line or "error" in line)
    node_id = watched["watched"]["job"]["id"]
    assert policies == {"typePolicies": []}
    assert watched == {"watched": {"job": {
        "__typename": "SecretaryJob", "id": node_id, "jobId": job_id, "status": "PROCESSING"}}}
    assert {"mutation": {"completeJob": {
        "__typename": "SecretaryJob", "id": node_id, "status": "COMPLETED"}}} in lines
    # then the earlier query, read from the cache alone, shows the job COMPLETED, and the
    # watching query was told so too
    assert {"cached": {"job": {"__typename": "SecretaryJob", "id": node_id, "jobId": job_id,
                               "status": "COMPLETED"}}} in lines
    assert {"watched": {"job": {"__typename": "SecretaryJob", "id": node_id, "jobId": job_id,
                                "status": "COMPLETED"}}} in lines
