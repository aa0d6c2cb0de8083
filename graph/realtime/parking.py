"""Parking: a subscription whose changes are delivered for it, with no task of its own.

A subscription's source (an async generator in the schema) registers with the hub, yields
the current state, then waits for each change, checks it (``follow.py``) and yields what
its subscriber may hear. With thousands of subscribers of the same object, that is a task
woken, a generator chain stepped and a result executed and encoded per subscriber per
change, and the whole chain (tasks, frames, executor) kept per subscriber while it waits.

Where the transport offers it (``Parking``, in the context of a WebSocket operation), a
source that is about to wait with nothing pending hands its hub registration (the
``Subscriber``) and its per-event rules (a ``Follower``) over and ends by raising
``Parked``; everything between it and the transport unwinds without ending the
subscription, and the transport delivers each later change itself: the same rules per
subscriber, the same execution and encoding shared by every subscriber whose result is
provably the same (``graph/server/fanout.py``).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Protocol

from repository.changes import Change


class Follower(Protocol):
    """A subscription's rules per event, without GraphQL: the payload to execute for a
    change (the same object for every subscriber it is the same for), None to send
    nothing, or an exception (NOT_FOUND...) that ends the subscription."""

    def step(self, change: Change) -> Any: ...


class Parking(Protocol):
    """Offered by a transport through the context of one operation."""

    def can_park(self) -> bool: ...


class Parked(BaseException):
    """Raised by a source that handed its subscription over. A BaseException, so that the
    ``except Exception`` on its way (Strawberry's, graphql-core's) lets it through; each
    layer that would end the subscription on its way out hands its part on instead:

    - ``release``: what ends the hub registration and the connection's count (set by the
      ``ConnectionSubscription`` it leaves);
    - ``finish``: what records the operation when it ends (set by the extension that
      measures operations).
    """

    def __init__(self, parking: Any, subscriber: Any, follower: Follower) -> None:
        super().__init__("the subscription was handed over to its transport")
        self.parking = parking
        self.subscriber = subscriber
        self.follower = follower
        self.release: Callable[[], None] | None = None
        self.finish: Callable[[list[str]], None] | None = None
