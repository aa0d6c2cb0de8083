"""JOBGRAPH_FINISHED_JOB_TTL_SECONDS: a TTL index over finished jobs, off by default."""

from __future__ import annotations

from typing import Any

from graph.server.app import create_app
from repository.access import Principal
from repository.batches import JobSpec
from repository.database import Store
from repository.retention import RETENTION_FILTER, RETENTION_INDEX
from tests.helpers.graphql import make_settings

ALICE = Principal("alice")


async def retention_index(store: Store) -> dict[str, Any] | None:
    return (await store.jobs.collection.index_information()).get(RETENTION_INDEX)


async def test_ensure_retention_creates_ttl_index_when_configured(store: Store) -> None:
    # when
    in_force = await store.jobs.ensure_retention(3600)
    # then
    index = await retention_index(store)
    assert in_force == 3600
    assert index is not None
    assert index["key"] == [("completed_at", 1)]
    assert index["expireAfterSeconds"] == 3600
    assert dict(index["partialFilterExpression"]) == RETENTION_FILTER


async def test_ensure_retention_creates_nothing_when_off(store: Store) -> None:
    assert await store.jobs.ensure_retention(None) is None
    assert await retention_index(store) is None


async def test_ensure_retention_updates_changed_ttl_in_place(store: Store) -> None:
    # given
    await store.jobs.ensure_retention(3600)
    # when
    in_force = await store.jobs.ensure_retention(7200)
    await store.jobs.ensure_retention(7200)  # again: nothing to do
    # then
    assert in_force == 7200
    assert (await retention_index(store))["expireAfterSeconds"] == 7200


async def test_ensure_retention_off_keeps_index_and_reports_it(store: Store) -> None:
    # given: an index from an earlier configuration
    await store.jobs.ensure_retention(3600)
    # when: retention is switched off
    in_force = await store.jobs.ensure_retention(None)
    # then: indexes are never dropped implicitly; the caller learns it still applies
    assert in_force == 3600
    assert (await retention_index(store))["expireAfterSeconds"] == 3600


async def test_retention_filter_matches_only_finished_jobs_outside_batches(
        store: Store) -> None:
    # given
    pending = await store.jobs.create(ALICE, job_type="pdf")
    failed = await store.jobs.create(ALICE, job_type="pdf")
    await store.jobs.fail(ALICE, failed.job_id, code="E", message="broken", retryable=True)
    retried = await store.jobs.create(ALICE, job_type="pdf")
    await store.jobs.fail(ALICE, retried.job_id, code="E", message="broken", retryable=True)
    await store.jobs.retry(ALICE, retried.job_id)
    batch = await store.batches.create(ALICE, batch_name="b", jobs=[JobSpec("pdf")])
    member = batch.jobs[0]
    await store.jobs.fail(ALICE, member.job_id, code="E", message="broken", retryable=True)
    # when
    expiring = await store.jobs.collection.distinct("_id", RETENTION_FILTER)
    # then
    assert expiring == [failed.job_id]
    assert pending.job_id not in expiring


async def test_app_start_creates_retention_index_only_when_configured(
        store: Store, mongo_uri: str, database_name: str) -> None:
    # given: first started without retention, then with it
    for ttl in (None, 600):
        settings = make_settings(database=database_name, finished_job_ttl_seconds=ttl)
        app = create_app(settings, mongodb_uri=mongo_uri)
        # when
        async with app.router.lifespan_context(app):
            index = await retention_index(store)
        # then
        if ttl is None:
            assert index is None
        else:
            assert index is not None and index["expireAfterSeconds"] == ttl
