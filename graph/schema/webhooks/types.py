"""GraphQL types of webhooks and their deliveries."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

import strawberry
from strawberry.scalars import JSON

from graph.schema.core.context import Context, Info
from graph.schema.core.enums import described_enum
from graph.schema.core.node import Node, global_id
from repository.deliveries import Delivery as DeliveryModel
from repository.deliveries import DeliveryStatus
from repository.webhooks import Webhook as WebhookModel
from repository.webhooks import WebhookEvent
from repository.webhooks import WebhookFilter as WebhookFilterModel

described_enum(WebhookEvent, "What a webhook can be sent; the payload's `type` is the "
               "value in brackets.", {
                   "JOB_STATUS_CHANGED": "A job was created or changed status "
                   "(`job.status_changed`).",
                   "JOB_PROGRESS": "A job reported progress (`job.progress`).",
                   "BATCH_STATUS_CHANGED": "A batch's derived status changed "
                   "(`batch.status_changed`); changes quicker than the dispatcher are "
                   "collapsed into the newest.",
                   "DOCUMENTATION_JOB_CHANGED": "A documentation job was created or changed "
                   "(`documentation_job.changed`).",
               })
described_enum(DeliveryStatus, "Where a webhook delivery is.", {
    "PENDING": "Waiting for its first or next attempt, or being sent.",
    "DELIVERED": "The endpoint answered 2xx.",
    "DEAD": "Every attempt failed (non-2xx, timeout or refused); no more tries unless "
    "redelivered.",
    "SKIPPED": "Not sent: at delivery time the object was gone or its owner could no longer "
    "read it.",
})

WebhookIdArg = Annotated[strawberry.ID, strawberry.argument(
    description="The webhook's `webhookId`.")]
DeliveryIdArg = Annotated[strawberry.ID, strawberry.argument(
    description="The delivery's `deliveryId` (its `webhook-id` header).")]


@strawberry.type(description="Narrows what a webhook is sent; every condition given holds.")
class WebhookFilter:
    job_types: list[str] = strawberry.field(
        description="Only jobs of these types (empty: every type).")
    batch_id: strawberry.ID | None = strawberry.field(
        description="Only jobs of this batch, and the batch itself.")
    repository_name: str | None = strawberry.field(
        description="Only documentation jobs of this repository.")


@strawberry.input(description="Narrows what a webhook is sent; every condition given holds.")
class WebhookFilterInput:
    job_types: list[str] = strawberry.field(
        default_factory=list, description="Only jobs of these types (empty: every type).")
    batch_id: strawberry.ID | None = strawberry.field(
        default=None, description="Only jobs of this batch, and the batch itself.")
    repository_name: str | None = strawberry.field(
        default=None, description="Only documentation jobs of this repository.")

    def to_model(self) -> WebhookFilterModel:
        return WebhookFilterModel(list(self.job_types), self.batch_id, self.repository_name)


@strawberry.type(description="An endpoint that is POSTed a signed JSON message (Standard "
                 "Webhooks) for each event it asked for, about objects its owner may read.")
class Webhook(Node):
    webhook_id: strawberry.ID = strawberry.field(description="Unique webhook identifier.")

    @strawberry.field(description="Global id (Relay's Node); `webhookId` stays its own id.")  # type: ignore[misc]  # Node's id field, here a resolver
    @staticmethod
    def id(root: WebhookModel) -> strawberry.ID:
        return global_id("Webhook", root.webhook_id)

    @classmethod
    def is_type_of(cls, obj: Any, _info: Any) -> bool:
        return isinstance(obj, WebhookModel | cls)

    url: str = strawberry.field(description="Where deliveries are POSTed (http or https).")
    events: list[WebhookEvent] = strawberry.field(description="What it is sent.")
    filter: WebhookFilter = strawberry.field(description="What narrows it further.")
    description: str | None = strawberry.field(description="A note for people.")
    owner: str | None = strawberry.field(
        description="Its user: deliveries carry only objects they may read.")
    created_at: datetime = strawberry.field(description="When the webhook was created.")

    @strawberry.field(description="The signing secret (`whsec_...`) for verifying deliveries; "
                      "null for anyone but the webhook's owner.")
    @staticmethod
    def secret(root: WebhookModel, info: Info) -> str | None:
        return root.secret if info.context.principal.user_id == root.owner else None


@strawberry.type(description="One message to one webhook, and how sending it went. Its id "
                 "is the `webhook-id` header, the same on every attempt.")
class WebhookDelivery(Node):
    delivery_id: strawberry.ID = strawberry.field(
        description="The message id, sent as `webhook-id`; receivers drop repeats by it.")

    @strawberry.field(description="Global id (Relay's Node); `deliveryId` stays its own id.")  # type: ignore[misc]  # Node's id field, here a resolver
    @staticmethod
    def id(root: DeliveryModel) -> strawberry.ID:
        return global_id("WebhookDelivery", root.delivery_id)

    @classmethod
    def is_type_of(cls, obj: Any, _info: Any) -> bool:
        return isinstance(obj, DeliveryModel | cls)

    webhook_id: strawberry.ID = strawberry.field(description="The webhook it goes to.")
    event: WebhookEvent = strawberry.field(description="What happened.")
    object_id: strawberry.ID = strawberry.field(
        description="The job, batch or documentation job it is about.")
    payload: JSON = strawberry.field(description="The JSON body: type, timestamp and data.")
    status: DeliveryStatus = strawberry.field(description="Where the delivery is.")
    attempts: int = strawberry.field(description="Attempts made so far.")
    last_response_code: int | None = strawberry.field(
        description="HTTP status of the last attempt; null when none came (timeout, refused).")
    last_error: str | None = strawberry.field(
        description="Why the last attempt failed or the delivery was skipped.")
    created_at: datetime = strawberry.field(description="When the event was put in the outbox.")
    last_attempt_at: datetime | None = strawberry.field(description="When it was last tried.")
    next_attempt_at: datetime | None = strawberry.field(
        description="When it is tried next (PENDING only).")
    delivered_at: datetime | None = strawberry.field(description="When it was delivered.")


@strawberry.input(description="A new webhook.")
class CreateWebhookInput:
    url: str = strawberry.field(description="http(s) URL to POST to; by default only public "
                                "addresses (not loopback, link-local or private).")
    events: list[WebhookEvent] = strawberry.field(description="What to send it (at least one).")
    filter: WebhookFilterInput | None = strawberry.field(
        default=None, description="What narrows it further.")
    secret: str | None = strawberry.field(
        default=None, description="Signing secret in Standard Webhooks form (`whsec_` and the "
        "base64 of 24 to 64 bytes); left out, one is generated (read it from `secret`).")
    description: str | None = strawberry.field(default=None, description="A note for people.")


async def fetch_webhooks(context: Context, webhook_ids: list[str]) -> dict[str, WebhookModel]:
    """``node(id:)`` for webhooks: the caller's own among ``webhook_ids``."""
    return await context.store.webhooks.get_many(context.principal, webhook_ids)


async def fetch_deliveries(context: Context, delivery_ids: list[str]
                           ) -> dict[str, DeliveryModel]:
    """``node(id:)`` for deliveries: those of the caller's own webhooks."""
    return await context.store.deliveries.get_many(context.principal, delivery_ids)
