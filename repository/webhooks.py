"""The ``webhooks`` collection: each user's endpoints for signed event deliveries.

A webhook belongs to the user who created it: only they (and the ``admin`` role) list,
read and delete it, and only they see its secret. What it is sent is decided by its
owner's read access alone (roles do not carry over), checked when an event is put in the
outbox and again at delivery time. Secrets follow the Standard Webhooks form:
``whsec_`` and the base64 of 24 to 64 random bytes.
"""

from __future__ import annotations

import base64
import binascii
import secrets
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any
from urllib.parse import urlsplit

from bson import Timestamp
from pymongo import ASCENDING, DESCENDING, IndexModel

from .access import NOTHING, Principal
from .errors import NotFoundError, ValidationError
from .jobs import require_user
from .limits import Limits
from .models import new_id, utcnow
from .mongo_types import Collection
from .pagination import Page, PageRequest, fetch_page
from .validation import check_text

SECRET_PREFIX = "whsec_"
SECRET_BYTES = (24, 64)
MAX_URL_LENGTH = 2000
MAX_WEBHOOKS_PER_USER = 100
MAX_FILTER_VALUES = 50


class WebhookEvent(StrEnum):
    JOB_STATUS_CHANGED = "job.status_changed"
    JOB_PROGRESS = "job.progress"
    BATCH_STATUS_CHANGED = "batch.status_changed"
    DOCUMENTATION_JOB_CHANGED = "documentation_job.changed"


INDEXES = [
    IndexModel([("owner", ASCENDING), ("created_at", DESCENDING), ("_id", DESCENDING)],
               name="owner_created"),
    IndexModel([("created_at", DESCENDING), ("_id", DESCENDING)], name="created"),
]


@dataclass
class WebhookFilter:
    """Narrows what a webhook is sent; every condition given must hold."""

    job_types: list[str] = field(default_factory=list)
    """Jobs of these types only (none: every type); other objects are not affected."""
    batch_id: str | None = None
    """Jobs of this batch, and the batch itself, only."""
    repository_name: str | None = None
    """Documentation jobs of this repository only."""

    def matches(self, collection: str, attributes: dict[str, Any]) -> bool:
        if collection == "jobs":
            return ((not self.job_types or attributes.get("job_type") in self.job_types)
                    and (self.batch_id is None or attributes.get("batch_id") == self.batch_id))
        if collection == "batches":
            return self.batch_id is None or attributes.get("_id") == self.batch_id
        return (self.repository_name is None
                or attributes.get("repository_name") == self.repository_name)


@dataclass
class Webhook:
    webhook_id: str
    url: str
    events: list[WebhookEvent]
    secret: str
    filter: WebhookFilter = field(default_factory=WebhookFilter)
    description: str | None = None
    owner: str | None = None
    created_at: datetime = field(default_factory=utcnow)
    updated_at: datetime = field(default_factory=utcnow)
    watch_from: Timestamp | None = None
    """A cluster time no later than the webhook's creation: changes from then on are its."""

    def wants(self, event: WebhookEvent, collection: str, attributes: dict[str, Any]) -> bool:
        return event in self.events and self.filter.matches(collection, attributes)


def new_secret() -> str:
    return SECRET_PREFIX + base64.b64encode(secrets.token_bytes(32)).decode()


def secret_key(secret: str) -> bytes:
    """The HMAC key of a ``whsec_`` secret."""
    return base64.b64decode(secret.removeprefix(SECRET_PREFIX), validate=True)


def check_secret(secret: str) -> None:
    if not secret.startswith(SECRET_PREFIX):
        raise ValidationError("secret", f"must start with {SECRET_PREFIX!r} (Standard Webhooks)")
    try:
        key = secret_key(secret)
    except (binascii.Error, ValueError):
        raise ValidationError("secret", f"must be {SECRET_PREFIX!r} and base64") from None
    low, high = SECRET_BYTES
    if not low <= len(key) <= high:
        raise ValidationError("secret", f"must hold {low} to {high} bytes, got {len(key)}")


def check_url(url: str) -> str:
    """An absolute http(s) URL without credentials; where it points is checked elsewhere
    (``graph.loops.targets``), at creation and again at every delivery."""
    check_text("url", url, max_length=MAX_URL_LENGTH)
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        raise ValidationError("url", "is not a valid URL") from None
    if parts.scheme not in ("http", "https"):
        raise ValidationError("url", "must be an http:// or https:// URL")
    if not parts.hostname:
        raise ValidationError("url", "must name a host")
    if parts.username is not None or parts.password is not None:
        raise ValidationError("url", "must not hold a user name or password")
    if parts.fragment:
        raise ValidationError("url", "must not hold a #fragment")
    if port == 0:
        raise ValidationError("url", "has no usable port")
    if any(ord(char) < 33 for char in url):
        raise ValidationError("url", "must not hold spaces or control characters")
    return url


def webhook_to_document(webhook: Webhook) -> dict[str, Any]:
    return {
        "_id": webhook.webhook_id,
        "url": webhook.url,
        "events": [event.value for event in webhook.events],
        "secret": webhook.secret,
        "filter": {"job_types": webhook.filter.job_types, "batch_id": webhook.filter.batch_id,
                   "repository_name": webhook.filter.repository_name},
        "description": webhook.description,
        "owner": webhook.owner,
        "created_at": webhook.created_at,
        "updated_at": webhook.updated_at,
        "watch_from": webhook.watch_from,
    }


def webhook_from_document(doc: dict[str, Any]) -> Webhook:
    return Webhook(
        webhook_id=doc["_id"], url=doc["url"],
        events=[WebhookEvent(event) for event in doc.get("events") or ()],
        secret=doc["secret"], filter=WebhookFilter(**(doc.get("filter") or {})),
        description=doc.get("description"), owner=doc.get("owner"),
        created_at=doc["created_at"], updated_at=doc["updated_at"],
        watch_from=doc.get("watch_from"))


def owner_filter(principal: Principal) -> dict[str, Any]:
    """Webhooks are their owner's (and the admin role's), never shared."""
    if principal.is_admin:
        return {}
    if principal.user_id is None:
        return NOTHING
    return {"owner": principal.user_id}


class WebhookRepository:
    def __init__(self, collection: Collection, deliveries: Collection,
                 limits: Limits | None = None) -> None:
        self.collection = collection
        self.deliveries = deliveries
        self.limits = limits or Limits()

    async def ensure_indexes(self) -> None:
        await self.collection.create_indexes(INDEXES)

    async def create(
        self,
        principal: Principal,
        *,
        url: str,
        events: list[WebhookEvent],
        webhook_filter: WebhookFilter | None = None,
        secret: str | None = None,
        description: str | None = None,
    ) -> Webhook:
        require_user(principal)
        check_url(url)
        if not events:
            raise ValidationError("events", "must name at least one event")
        webhook_filter = webhook_filter or WebhookFilter()
        if len(webhook_filter.job_types) > MAX_FILTER_VALUES:
            raise ValidationError("filter.jobTypes", f"holds more than {MAX_FILTER_VALUES}")
        for job_type in webhook_filter.job_types:
            check_text("filter.jobTypes", job_type, max_length=self.limits.max_text_length)
        for name in ("batch_id", "repository_name"):
            check_text(f"filter.{name}", getattr(webhook_filter, name),
                       max_length=self.limits.max_text_length, required=False)
        check_text("description", description, max_length=self.limits.max_text_length,
                   required=False)
        if secret is None:
            secret = new_secret()
        check_secret(secret)
        owned = await self.collection.count_documents({"owner": principal.user_id},
                                                      limit=MAX_WEBHOOKS_PER_USER)
        if owned >= MAX_WEBHOOKS_PER_USER:
            raise ValidationError("url", f"you have {MAX_WEBHOOKS_PER_USER} webhooks, the most "
                                  "one user may have; delete one first")
        now = utcnow()
        webhook = Webhook(webhook_id=new_id(), url=url, events=list(dict.fromkeys(events)),
                          secret=secret, filter=webhook_filter, description=description,
                          owner=principal.user_id, created_at=now, updated_at=now)
        # Just after the last change before the insert (the read's operation time is that
        # change's): the outbox writer watches from here, so no change after the webhook
        # exists is missed, however late the writer notices it, and none before is sent.
        async with self.collection.database.client.start_session() as session:
            await self.collection.find_one({"_id": webhook.webhook_id}, session=session)
            last = session.operation_time
            webhook.watch_from = None if last is None else Timestamp(last.time, last.inc + 1)
            await self.collection.insert_one(webhook_to_document(webhook), session=session)
        return webhook

    async def get(self, principal: Principal, webhook_id: str) -> Webhook:
        doc = await self.collection.find_one({"_id": webhook_id, **owner_filter(principal)})
        if doc is None:
            raise NotFoundError(f"webhook {webhook_id!r} not found")
        return webhook_from_document(doc)

    async def get_many(self, principal: Principal, webhook_ids: list[str]) -> dict[str, Webhook]:
        query = {"_id": {"$in": list(webhook_ids)}, **owner_filter(principal)}
        return {doc["_id"]: webhook_from_document(doc)
                async for doc in self.collection.find(query)}

    async def find(self, webhook_id: str) -> Webhook | None:
        """For the dispatcher: a webhook whatever the caller (there is none)."""
        doc = await self.collection.find_one({"_id": webhook_id})
        return None if doc is None else webhook_from_document(doc)

    async def all(self) -> list[Webhook]:
        """Every webhook, for the outbox writer (a user has at most 100)."""
        return [webhook_from_document(doc) async for doc in self.collection.find({})]

    async def exists(self) -> bool:
        return await self.collection.find_one({}, projection={"_id": 1}) is not None

    async def earliest_watch_from(self) -> Timestamp | None:
        doc = await self.collection.find_one(
            {"watch_from": {"$ne": None}}, projection={"watch_from": 1},
            sort=[("watch_from", ASCENDING)])
        return None if doc is None else doc["watch_from"]

    async def list(self, principal: Principal, page: PageRequest) -> Page[Webhook]:
        page = page.validated(self.limits.max_page_size)
        if principal.is_anonymous:  # owns nothing: no need to ask
            return Page([], [], False, False)
        return await fetch_page(self.collection, owner_filter(principal), page,
                                webhook_from_document)

    async def count(self, principal: Principal) -> int:
        if principal.is_anonymous:
            return 0
        return await self.collection.count_documents(owner_filter(principal))

    async def delete(self, principal: Principal, webhook_id: str) -> Webhook:
        """The webhook and its deliveries; one being sent right now is not recorded."""
        doc = await self.collection.find_one_and_delete(
            {"_id": webhook_id, **owner_filter(principal)})
        if doc is None:
            raise NotFoundError(f"webhook {webhook_id!r} not found")
        await self.deliveries.delete_many({"webhook_id": webhook_id})
        return webhook_from_document(doc)
