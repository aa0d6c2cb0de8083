"""Every list the schedules and webhooks add (schedules, a schedule's jobs, webhooks,
deliveries, and the queries of the scheduler and the dispatcher) is served by a declared
index, checked as ``test_index_coverage`` checks the others."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime

from repository import deliveries, jobs, schedules, webhooks
from repository.access import Principal
from repository.database import Store
from repository.deliveries import DeliveryStatus
from repository.schedules import JobTemplate, ScheduleFilter

from .test_index_coverage import CALLERS, PAGES, RANGES, Captured, captured, unserved

__all__ = ["captured"]  # the fixture, used below

INDEXES = {"jobs": jobs.INDEXES + schedules.JOB_INDEXES, "schedules": schedules.INDEXES,
           "webhooks": webhooks.INDEXES, "webhook_deliveries": deliveries.INDEXES}


async def test_every_schedule_webhook_and_delivery_list_is_served_by_an_index(
        captured: tuple[Store, Captured]) -> None:
    # given: one schedule and one webhook of alice's, so the lists have an owner to check
    store, listener = captured
    alice = Principal("alice")
    schedule = await store.schedules.create(alice, name="s", cron="0 * * * *",
                                            job_template=JobTemplate("t"))
    webhook = await store.webhooks.create(alice, url="https://hooks.example.com/x",
                                          events=list(webhooks.WebhookEvent))
    listener.queries.clear()

    # when: every filter, caller and paging direction
    for caller in CALLERS.values():
        for paused, created in itertools.product((None, True, False), RANGES):
            schedule_filter = ScheduleFilter(paused, **created)
            for page in PAGES:
                await store.schedules.list(caller, schedule_filter, page)
            await store.schedules.count(caller, schedule_filter)
        for page in PAGES:
            await store.schedules.jobs_of(caller, schedule.schedule_id, page)
            await store.webhooks.list(caller, page)
        await store.schedules.count_jobs(caller, schedule.schedule_id)
        await store.webhooks.count(caller)
    for status in (None, *DeliveryStatus):
        for page in PAGES:
            await store.deliveries.list(alice, webhook.webhook_id, status, page)
        await store.deliveries.count(alice, webhook.webhook_id, status)
    lists = list(listener.queries)
    listener.queries.clear()
    now = datetime.now(UTC)
    await store.schedules.due(now)
    await store.deliveries.claim(now, 10)
    await store.deliveries.depth()

    # then: lookups by ``_id`` (the webhook before its deliveries) need no more
    queries = [(collection, query, sort) for collection, query, sort in lists
               if not isinstance(query.get("_id"), str)]
    assert {collection for collection, _, _ in queries} == set(INDEXES)
    assert unserved(queries, INDEXES) == []
    # and: the loops' queries, a range on the time they sort by behind their equalities
    assert [(collection, sorted(query), sort) for collection, query, sort in listener.queries
            ] == [("schedules", ["next_fire_at"], [("next_fire_at", 1)]),
                  ("webhook_deliveries", ["next_attempt_at", "status"],
                   [("next_attempt_at", 1)]),
                  ("webhook_deliveries", ["status"], [])]
    keys = {collection: [list(index.document["key"]) for index in declared]
            for collection, declared in INDEXES.items()}
    assert ["next_fire_at"] in keys["schedules"]
    assert ["status", "next_attempt_at"] in keys["webhook_deliveries"]
