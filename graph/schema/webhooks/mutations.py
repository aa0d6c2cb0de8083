"""Webhook mutations: create and delete your webhooks, send a delivery again."""

from __future__ import annotations

from typing import Annotated

import strawberry

from graph.loops.targets import allowed_addresses
from graph.schema.core.context import Info

from .types import CreateWebhookInput, DeliveryIdArg, Webhook, WebhookDelivery, WebhookIdArg


@strawberry.type
class WebhookMutations:
    @strawberry.mutation(description="Create a webhook of yours. Its URL must be http(s) and, "
                         "unless the server allows private addresses, resolve to public ones "
                         "only (checked now and at every delivery).")
    async def create_webhook(
        self, info: Info,
        input: Annotated[CreateWebhookInput, strawberry.argument(
            description="The new webhook.")],
    ) -> Webhook:
        context = info.context
        if not context.principal.is_anonymous:  # anonymous callers learn FORBIDDEN first
            await allowed_addresses(input.url,
                                    allow_private=context.settings.webhook_allow_private)
        return await context.store.webhooks.create(
            context.principal, url=input.url, events=list(input.events),
            webhook_filter=input.filter.to_model() if input.filter else None,
            secret=input.secret, description=input.description)

    @strawberry.mutation(description="Delete one of your webhooks and its deliveries. Returns "
                         "what was deleted.")
    async def delete_webhook(self, info: Info, webhook_id: WebhookIdArg) -> Webhook:
        return await info.context.store.webhooks.delete(info.context.principal, webhook_id)

    @strawberry.mutation(description="Send a delivered, dead or skipped delivery again: a new "
                         "series of attempts with the same `webhook-id`. A pending one is left "
                         "as it is.")
    async def redeliver_webhook_delivery(self, info: Info,
                                         delivery_id: DeliveryIdArg) -> WebhookDelivery:
        return await info.context.store.deliveries.redeliver(info.context.principal,
                                                             delivery_id)
