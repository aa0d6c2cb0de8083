"""Subscribing from a resolver: the hub registration, within the connection's limit.

Each subscription field registers with the hub BEFORE reading the current state, yields
that state, then every later change, so nothing falls in between."""

from __future__ import annotations

from typing import Any

from graph.realtime.hub import Subscriber, SubscriptionError, unavailable
from repository.errors import ErrorCode

from .context import Info


def subscribe(info: Info, **interest: Any) -> ConnectionSubscription:
    """``async with subscribe(info, ...) as changes``: see ConnectionSubscription."""
    return ConnectionSubscription(info.context, interest)


class ConnectionSubscription:
    """Register with the hub, within this connection's subscription limit.

    A class, not an ``asynccontextmanager``: one lives as long as its subscription, and a
    generator-based one would keep a generator and its frame for each of thousands."""

    __slots__ = ("context", "interest", "subscriber")

    def __init__(self, context: Any, interest: dict[str, Any]) -> None:
        self.context = context
        self.interest = interest
        self.subscriber: Subscriber | None = None

    async def __aenter__(self) -> Subscriber:
        context = self.context
        if context.hub is None:
            raise unavailable("subscriptions are not available on this server")
        limit = context.settings.max_subscriptions_per_connection
        if context.open_subscriptions >= limit:
            raise SubscriptionError(ErrorCode.TOO_MANY_SUBSCRIPTIONS,
                                    f"a connection may hold at most {limit} subscriptions")
        subscriber = await context.hub.subscribe(**self.interest).__aenter__()
        self.subscriber, self.interest = subscriber, {}
        context.open_subscriptions += 1
        return subscriber

    async def __aexit__(self, *exc_info: object) -> None:
        if self.subscriber is not None:
            self.context.open_subscriptions -= 1
            await self.subscriber.__aexit__(*exc_info)
