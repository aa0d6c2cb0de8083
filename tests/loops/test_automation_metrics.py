"""``/metrics`` reports the outbox depth (counted in the database), schedule fires and
webhook attempts by outcome."""

from __future__ import annotations

from typing import Any

from repository.database import Store
from repository.deliveries import delivery_document
from repository.models import utcnow
from repository.webhooks import WebhookEvent
from tests.helpers.graphql import Api
from tests.test_metrics import scrape, value


async def test_outbox_depth_fires_and_delivery_outcomes_are_scraped(api: Api, app: Any,
                                                                    store: Store) -> None:
    # given: two deliveries waiting, one delivered, and some loop activity
    for number, status in enumerate(("PENDING", "PENDING", "DELIVERED")):
        doc = delivery_document(delivery_id=f"msg_{number}", webhook_id="w", owner="alice",
                                event=WebhookEvent.JOB_STATUS_CHANGED, collection="jobs",
                                object_id="j", payload={}, now=utcnow())
        doc["status"] = status
        doc["next_attempt_at"] = utcnow().replace(year=2100)  # not due: left alone
        await store.deliveries.collection.insert_one(doc)
    metrics = app.state.metrics
    metrics.schedule_fired(3, 2)
    metrics.webhook_attempt("delivered", 0.01)
    metrics.webhook_attempt("failed", 0.02)
    metrics.webhook_attempt("failed", 0.03)
    metrics.webhooks_enqueued(4)

    # when
    samples = await scrape(api.client)

    # then
    assert value(samples, "jobgraph_webhook_outbox_depth") == 2
    assert value(samples, "jobgraph_schedule_fires_total") == 3
    assert value(samples, "jobgraph_schedule_skipped_fires_total") == 2
    assert value(samples, "jobgraph_webhook_deliveries_total", outcome="failed") == 2
    assert value(samples, "jobgraph_webhook_deliveries_total", outcome="delivered") == 1
    assert value(samples, "jobgraph_webhook_messages_total") == 4
    assert value(samples, "jobgraph_webhook_delivery_duration_seconds_count") == 3
