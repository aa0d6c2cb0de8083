"""The webhook outbox (``webhook_deliveries``): one document per message and webhook.

A delivery's ``_id`` is its Standard Webhooks message id (``webhook-id``), derived from
the webhook and the event, so writing the same event twice (a replayed change stream)
stores it once. Senders claim a due delivery with one conditional update that pushes
its ``next_attempt_at`` a lease ahead and stamps a claim token; the outcome is recorded
only under that token. A sender that dies between sending and recording leaves the
delivery to come due again when the lease ends, so it is sent again, never dropped
(at least once: receivers drop duplicates by ``webhook-id``).
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any

from pymongo import ASCENDING, DESCENDING, IndexModel, ReturnDocument
from pymongo.errors import BulkWriteError

from .access import Principal
from .errors import NotFoundError
from .limits import Limits
from .models import utcnow
from .mongo_types import Collection
from .pagination import Page, PageRequest, fetch_page
from .webhooks import WebhookEvent, WebhookRepository, owner_filter

FINISHED_TTL_SECONDS = 14 * 24 * 3600
"""Delivered, skipped and dead deliveries are kept this long, then MongoDB removes them."""
MAX_ERROR_LENGTH = 500


class DeliveryStatus(StrEnum):
    PENDING = "PENDING"
    DELIVERED = "DELIVERED"
    DEAD = "DEAD"
    SKIPPED = "SKIPPED"


INDEXES = [
    IndexModel([("status", ASCENDING), ("next_attempt_at", ASCENDING)], name="due"),
    IndexModel([("webhook_id", ASCENDING), ("created_at", DESCENDING), ("_id", DESCENDING)],
               name="webhook_created"),
    IndexModel([("webhook_id", ASCENDING), ("status", ASCENDING), ("created_at", DESCENDING),
                ("_id", DESCENDING)], name="webhook_status_created"),
    IndexModel([("finished_at", ASCENDING)], name="finished_ttl",
               expireAfterSeconds=FINISHED_TTL_SECONDS),
]


@dataclass
class Delivery:
    delivery_id: str
    webhook_id: str
    owner: str | None
    event: WebhookEvent
    collection: str
    object_id: str
    payload: dict[str, Any]
    """The JSON body: ``{"type", "timestamp", "data"}``."""
    status: DeliveryStatus
    created_at: datetime
    updated_at: datetime
    next_attempt_at: datetime | None = None
    attempts: int = 0
    last_attempt_at: datetime | None = None
    last_response_code: int | None = None
    last_error: str | None = None
    delivered_at: datetime | None = None
    finished_at: datetime | None = None
    claim: str | None = None


def delivery_document(*, delivery_id: str, webhook_id: str, owner: str | None,
                      event: WebhookEvent, collection: str, object_id: str,
                      payload: dict[str, Any], now: datetime) -> dict[str, Any]:
    return {"_id": delivery_id, "webhook_id": webhook_id, "owner": owner,
            "event": event.value, "collection": collection, "object_id": object_id,
            "payload": payload, "status": DeliveryStatus.PENDING.value, "attempts": 0,
            "created_at": now, "updated_at": now, "next_attempt_at": now,
            "last_attempt_at": None, "last_response_code": None, "last_error": None,
            "delivered_at": None, "finished_at": None, "claim": None}


def delivery_from_document(doc: dict[str, Any]) -> Delivery:
    data = dict(doc)
    data["delivery_id"] = data.pop("_id")
    data["event"] = WebhookEvent(data["event"])
    data["status"] = DeliveryStatus(data["status"])
    return Delivery(**data)


class DeliveryRepository:
    def __init__(self, collection: Collection, webhooks: WebhookRepository,
                 limits: Limits | None = None) -> None:
        self.collection = collection
        self.webhooks = webhooks
        self.limits = limits or Limits()

    async def ensure_indexes(self) -> None:
        await self.collection.create_indexes(INDEXES)

    # -- the outbox writer --------------------------------------------------

    async def enqueue(self, docs: list[dict[str, Any]]) -> int:
        """Insert deliveries; ones already there (same message id) are left alone.
        The number inserted."""
        if not docs:
            return 0
        try:
            result = await self.collection.insert_many(docs, ordered=False)
        except BulkWriteError as exc:
            others = [error for error in exc.details.get("writeErrors", ())
                      if error.get("code") != 11000]
            if others:
                raise
            return int(exc.details.get("nInserted", 0))
        return len(result.inserted_ids)

    # -- senders ------------------------------------------------------------

    async def claim(self, now: datetime, lease_seconds: float) -> Delivery | None:
        """Take the longest-waiting due delivery for ``lease_seconds``; counts an attempt."""
        doc = await self.collection.find_one_and_update(
            {"status": DeliveryStatus.PENDING.value, "next_attempt_at": {"$lte": now}},
            {"$set": {"next_attempt_at": now + timedelta(seconds=lease_seconds),
                      "claim": uuid.uuid4().hex, "last_attempt_at": now, "updated_at": now},
             "$inc": {"attempts": 1}},
            sort=[("next_attempt_at", ASCENDING)], return_document=ReturnDocument.AFTER)
        return None if doc is None else delivery_from_document(doc)

    async def delivered(self, delivery: Delivery, code: int) -> bool:
        now = utcnow()
        return await self._record(delivery, {
            "status": DeliveryStatus.DELIVERED.value, "last_response_code": code,
            "last_error": None, "delivered_at": now, "finished_at": now, "next_attempt_at": None})

    async def failed(self, delivery: Delivery, code: int | None, error: str,
                     retry_at: datetime | None) -> bool:
        """A failed attempt: due again at ``retry_at``, or DEAD when that is None."""
        changes: dict[str, Any] = {"last_response_code": code,
                                   "last_error": error[:MAX_ERROR_LENGTH],
                                   "next_attempt_at": retry_at}
        if retry_at is None:
            changes.update(status=DeliveryStatus.DEAD.value, finished_at=utcnow())
        return await self._record(delivery, changes)

    async def skipped(self, delivery: Delivery, reason: str) -> bool:
        """Not sent, and never will be: the object is gone or hidden from the owner."""
        return await self._record(delivery, {
            "status": DeliveryStatus.SKIPPED.value, "last_error": reason,
            "finished_at": utcnow(), "next_attempt_at": None})

    async def _record(self, delivery: Delivery, changes: dict[str, Any]) -> bool:
        """Under the claim only: False when the lease ran out and another sender took it."""
        result = await self.collection.update_one(
            {"_id": delivery.delivery_id, "claim": delivery.claim,
             "status": DeliveryStatus.PENDING.value},
            {"$set": {**changes, "claim": None, "updated_at": utcnow()}})
        return result.modified_count == 1

    async def depth(self) -> int:
        """Deliveries waiting to be sent (or being sent): the outbox depth."""
        return await self.collection.count_documents(
            {"status": DeliveryStatus.PENDING.value})

    # -- the owner's view ---------------------------------------------------

    async def get_many(self, principal: Principal, delivery_ids: list[str]
                       ) -> dict[str, Delivery]:
        query = {"_id": {"$in": list(delivery_ids)}, **owner_filter(principal)}
        return {doc["_id"]: delivery_from_document(doc)
                async for doc in self.collection.find(query)}

    async def _list_query(self, principal: Principal, webhook_id: str,
                          status: DeliveryStatus | None) -> dict[str, Any]:
        await self.webhooks.get(principal, webhook_id)  # NOT_FOUND unless it is yours
        query: dict[str, Any] = {"webhook_id": webhook_id}
        if status is not None:
            query["status"] = status.value
        return query

    async def list(self, principal: Principal, webhook_id: str,
                   status: DeliveryStatus | None, page: PageRequest) -> Page[Delivery]:
        page = page.validated(self.limits.max_page_size)
        query = await self._list_query(principal, webhook_id, status)
        return await fetch_page(self.collection, query, page, delivery_from_document)

    async def count(self, principal: Principal, webhook_id: str,
                    status: DeliveryStatus | None) -> int:
        return await self.collection.count_documents(
            await self._list_query(principal, webhook_id, status))

    async def redeliver(self, principal: Principal, delivery_id: str) -> Delivery:
        """Send a finished delivery again, as a new series of attempts with the same
        message id; one still pending is left as it is (it is due or being sent)."""
        now = utcnow()
        doc = await self.collection.find_one_and_update(
            {"_id": delivery_id, **owner_filter(principal),
             "status": {"$ne": DeliveryStatus.PENDING.value}},
            {"$set": {"status": DeliveryStatus.PENDING.value, "attempts": 0,
                      "next_attempt_at": now, "finished_at": None, "delivered_at": None,
                      "claim": None, "updated_at": now}},
            return_document=ReturnDocument.AFTER)
        if doc is None:
            doc = await self.collection.find_one({"_id": delivery_id,
                                                  **owner_filter(principal)})
        if doc is None:
            raise NotFoundError(f"webhook delivery {delivery_id!r} not found")
        return delivery_from_document(doc)
