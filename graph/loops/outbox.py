"""The outbox writer: turns database changes into webhook deliveries, in one process at a
time (a lease in ``webhook_feed``; every API process stands by to take over).

Why the change stream, and why its own: a job's change is durable in MongoDB's oplog the
moment it is acknowledged, whichever process (or worker, or script) made it. Reading the
oplog through a change stream whose resume token is saved in the database only after
the deliveries of every change up to it are written means no crash loses an event: the
next writer resumes from the saved token and writes the same deliveries again, which the
outbox keeps once (their ids derive from the change). Writing the outbox inside each job
update instead would touch every transition of every repository (or need a transaction
per change), and the hub's stream starts wherever its process started, so it cannot
resume across a restart.

The stream is open (and the writer writes anything) only while at least one webhook
exists, so a deployment without webhooks pays nothing; a webhook records the cluster time
just after the last change before its creation, and the writer starts there when that is
later than its saved position, so a new webhook misses nothing from its creation on.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from graph.loops.feed_writer import FeedWriter
from repository.access import Principal, readable_document
from repository.changes import HISTORY_LOST_CODES, NO_CHANGE_STREAMS_CODES
from repository.database import CommandError, Store
from repository.deliveries import delivery_document
from repository.models import utcnow
from repository.webhook_events import (
    PIPELINE,
    Event,
    batch_event,
    events_of,
    message_id,
    payload,
)
from repository.webhooks import Webhook, WebhookEvent

logger = logging.getLogger("jobgraph.outbox")

BATCH = 100
"""Changes read before their deliveries are written and the position is saved."""


class OutboxWriter(FeedWriter):
    what = "outbox writer"
    task_name = "jobgraph-outbox"

    def __init__(self, store: Store, *, lease_seconds: float, poll_seconds: float = 1.0,
                 metrics: Any = None, on_written: Callable[[], None] | None = None,
                 holder: str | None = None) -> None:
        super().__init__(store, store.webhook_feed, logger, lease_seconds=lease_seconds,
                         poll_seconds=poll_seconds, holder=holder)
        self.metrics = metrics
        self.on_written = on_written
        self._skip_token = False

    async def step(self) -> bool:
        """One round: hold the lease, read what changed, write its deliveries, save the
        position. False when there was nothing to do (not the writer, or no webhooks)."""
        if not await self.store.webhooks.exists():  # nothing to write for: write nothing
            await self._close()
            if self.leading:
                await self.store.webhook_feed.release(self.holder)
                self.leading = False
            return False
        state = await self.store.webhook_feed.acquire(self.holder, self.lease_seconds)
        if state is None:
            if self.leading:
                logger.info("another process writes the webhook outbox now")
            self.leading = False
            await self._close()
            return False
        if not self.leading:
            logger.info("this process writes the webhook outbox")
        self.leading = True
        if self._stream is None:
            await self._open(state)
        changes = await self._read(BATCH)
        if changes:
            await self.write(changes)
        if not await self._save_position(bool(changes)):
            return False
        return bool(changes)

    async def _open(self, state: dict[str, Any]) -> None:
        """Resume from the saved position; or start where the oldest webhook began, when
        that is later (no webhook existed in between: nothing there is anyone's)."""
        options: dict[str, Any] = {"full_document": "updateLookup",
                                   "max_await_time_ms": int(self.poll_seconds * 1000)}
        token, saved_at = state.get("resume_token"), state.get("saved_at")
        since = await self.store.webhooks.earliest_watch_from()
        newer = since is not None and (saved_at is None or since.as_datetime() > saved_at)
        resuming = False
        if self._from_now:
            self._from_now = False
        elif token is not None and not newer and not self._skip_token:
            options["resume_after"] = token
            resuming = True
        elif since is not None:
            options["start_at_operation_time"] = since
        try:
            self._stream = await self.store.db.watch(PIPELINE, **options)
        except CommandError as exc:
            if exc.code in NO_CHANGE_STREAMS_CODES:
                if not self._unsupported:
                    logger.error("webhooks are not delivered: this MongoDB is a standalone "
                                 "server without change streams; run it as a replica set")
                self._unsupported = True
                raise
            if exc.code in HISTORY_LOST_CODES or "resume" in str(exc).lower():
                logger.error("the outbox writer's %s is no longer in the oplog; changes "
                             "since then get no webhook deliveries: %s",
                             "saved position" if resuming else "starting point", exc)
                if resuming:
                    self._skip_token = True  # try where the oldest webhook began
                else:
                    self._from_now = True
            raise
        self._skip_token = False

    async def write(self, changes: list[dict[str, Any]]) -> int:
        """The deliveries of ``changes`` (raw change events), written idempotently."""
        webhooks = await self.store.webhooks.all()
        if not webhooks:
            return 0
        batches_wanted = any(WebhookEvent.BATCH_STATUS_CHANGED in webhook.events
                             for webhook in webhooks)
        docs: list[dict[str, Any]] = []
        announced: dict[str, str] = {}
        for change in changes:
            for event in events_of(change):
                if event.type is not WebhookEvent.BATCH_STATUS_CHANGED:
                    docs += deliveries_of(event, webhooks)
                if not batches_wanted:
                    continue
                batch_id = (event.object_id if event.collection == "batches"
                            else event.document.get("batch_id")
                            if event.type is WebhookEvent.JOB_STATUS_CHANGED else None)
                if batch_id is not None:
                    found = await self._batch_change(event, batch_id, announced)
                    if found is not None:
                        docs += deliveries_of(found, webhooks)
        written = await self.store.deliveries.enqueue(docs)
        for batch_id, status in announced.items():
            await self.store.webhook_feed.set_batch_status(batch_id, status)
        self.written += written
        if self.metrics is not None and written:
            self.metrics.webhooks_enqueued(written)
        if written and self.on_written is not None:
            self.on_written()
        return written

    async def _batch_change(self, trigger: Event, batch_id: str,
                            announced: dict[str, str]) -> Event | None:
        """A batch event when the batch's derived status differs from the last one sent."""
        counts = (await self.store.batches.counts([batch_id]))[batch_id]
        status = counts.status().value
        last = announced.get(batch_id) or await self.store.webhook_feed.batch_status(batch_id)
        if status == last:
            return None
        batch = await self.store.batches.collection.find_one({"_id": batch_id})
        if batch is None:
            return None  # its jobs go in before the batch itself; its insert comes later
        announced[batch_id] = status
        return batch_event(trigger, batch, status, {
            "pending": counts.pending, "processing": counts.processing,
            "completed": counts.completed, "failed": counts.failed, "total": counts.total})


def deliveries_of(event: Event, webhooks: list[Webhook]) -> list[dict[str, Any]]:
    """One delivery per webhook that wants the event and whose owner may read its object."""
    now = utcnow()
    found = []
    for webhook in webhooks:
        if not webhook.wants(event.type, event.collection, event.document):
            continue
        if (webhook.watch_from is not None and event.cluster_time is not None
                and event.cluster_time < webhook.watch_from):
            continue  # it happened before the webhook existed
        if not readable_document(Principal(webhook.owner), event.document):
            continue
        found.append(delivery_document(
            delivery_id=message_id(webhook.webhook_id, event), webhook_id=webhook.webhook_id,
            owner=webhook.owner, event=event.type, collection=event.collection,
            object_id=event.object_id, payload=payload(event), now=now))
    return found
