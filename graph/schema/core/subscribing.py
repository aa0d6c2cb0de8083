"""Subscribing from a resolver: the hub registration, within the connection's limit.

Each subscription field registers with the hub BEFORE reading the current state, yields
that state, then every later change, so nothing falls in between."""

from __future__ import annotations

import asyncio
import time
from typing import Any

from starlette.requests import Request

from graph.realtime.hub import Subscriber, SubscriptionError, unavailable
from graph.realtime.parking import Parked
from repository.errors import ErrorCode

from .context import Info


def token_expired() -> SubscriptionError:
    return SubscriptionError(ErrorCode.UNAUTHENTICATED,
                             "the bearer token expired; subscribe again with a fresh one")


def subscribe(info: Info, **interest: Any) -> ConnectionSubscription:
    """``async with subscribe(info, ...) as changes``: see ConnectionSubscription."""
    return ConnectionSubscription(info.context, interest)


class ConnectionSubscription:
    """Register with the hub, within this connection's subscription limit.

    Over HTTP (SSE, multipart) the subscription ends with UNAUTHENTICATED when the bearer
    token expires, as a WebSocket is closed with 4401 then (``graph/server/expiry.py``).

    A class, not an ``asynccontextmanager``: one lives as long as its subscription, and a
    generator-based one would keep a generator and its frame for each of thousands."""

    __slots__ = ("connection", "context", "interest", "subscriber", "timer")

    def __init__(self, context: Any, interest: dict[str, Any]) -> None:
        self.context = context
        """Until registered: what it holds for as long as the subscription lasts is its
        connection's counter (the context of a parked one would keep its executor)."""
        self.connection: Any = None
        self.interest = interest
        self.subscriber: Subscriber | None = None
        self.timer: asyncio.TimerHandle | None = None

    async def __aenter__(self) -> Subscriber:
        context = self.context
        if context.hub is None:
            raise unavailable("subscriptions are not available on this server")
        limit = context.settings.max_subscriptions_per_connection
        connection = context.connection
        if connection.open_subscriptions >= limit:
            raise SubscriptionError(ErrorCode.TOO_MANY_SUBSCRIPTIONS,
                                    f"a connection may hold at most {limit} subscriptions")
        principal = context.principal
        owner = None if principal.is_anonymous else principal.user_id
        connection.open_subscriptions += 1  # held while the hub lets it in (it may wait)
        try:
            subscriber: Subscriber = await context.hub.subscribe(
                owner=owner, **self.interest).__aenter__()
        except BaseException:
            connection.open_subscriptions -= 1
            raise
        self.subscriber, self.interest = subscriber, {}
        self.connection, self.context = connection, None
        if context.expires_at is not None and isinstance(context.request, Request):
            self.timer = asyncio.get_running_loop().call_later(
                max(0.0, context.expires_at - time.time()), subscriber.fail, token_expired())
        return subscriber

    async def __aexit__(self, exc_type: object, exc: object, traceback: object) -> None:
        if isinstance(exc, Parked):  # handed over: released when the parked one ends
            exc.release = self.release
            return
        self.release()

    def release(self) -> None:
        """End the hub registration and free the connection's slot (once)."""
        if self.timer is not None:
            self.timer.cancel()
            self.timer = None
        subscriber, self.subscriber = self.subscriber, None
        if subscriber is not None:
            self.connection.open_subscriptions -= 1
            subscriber.hub.unregister(subscriber)
