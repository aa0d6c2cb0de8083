"""Webhook queries: only a webhook's owner (or the admin role) sees it."""

from __future__ import annotations

from typing import Annotated

import strawberry

from graph.schema.core.connections import (
    AFTER,
    BEFORE,
    FIRST,
    LAST,
    Connection,
    page_request,
    to_connection,
)
from graph.schema.core.context import Info
from repository.deliveries import DeliveryStatus

from .types import Webhook, WebhookDelivery, WebhookIdArg


@strawberry.type
class WebhookQueries:
    @strawberry.field(description="One of your webhooks by id. NOT_FOUND if missing or not "
                      "yours.")
    async def webhook(self, info: Info, webhook_id: WebhookIdArg) -> Webhook | None:
        return await info.context.store.webhooks.get(info.context.principal, webhook_id)

    @strawberry.field(description="Your webhooks, newest first.")
    async def webhooks(
        self,
        info: Info,
        first: Annotated[int | None, FIRST] = None,
        after: Annotated[str | None, AFTER] = None,
        last: Annotated[int | None, LAST] = None,
        before: Annotated[str | None, BEFORE] = None,
    ) -> Connection[Webhook]:
        store, principal = info.context.store, info.context.principal
        page = await store.webhooks.list(principal, page_request(first, after, last, before))
        connection = to_connection(page, lambda: store.webhooks.count(principal))
        return connection

    @strawberry.field(description="The deliveries of one of your webhooks, newest first.")
    async def webhook_deliveries(
        self,
        info: Info,
        webhook_id: WebhookIdArg,
        status: Annotated[DeliveryStatus | None, strawberry.argument(
            description="Only deliveries in this status.")] = None,
        first: Annotated[int | None, FIRST] = None,
        after: Annotated[str | None, AFTER] = None,
        last: Annotated[int | None, LAST] = None,
        before: Annotated[str | None, BEFORE] = None,
    ) -> Connection[WebhookDelivery]:
        store, principal = info.context.store, info.context.principal
        page = await store.deliveries.list(principal, webhook_id, status,
                                           page_request(first, after, last, before))
        connection = to_connection(page, lambda: store.deliveries.count(principal, webhook_id,
                                                                      status))
        return connection
