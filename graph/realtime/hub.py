"""The in-process hub: ONE change stream per process, fanned out to subscribers.

Each subscriber has a bounded queue. A subscriber whose queue is full is
dropped with SUBSCRIPTION_LAGGING (its queue is emptied at once), so a slow
consumer never slows the others nor grows memory. After a database error the
feed is reopened with its last resume token; if the token is too old, every
subscriber gets SUBSCRIPTION_RESET and must re-query.
"""

from __future__ import annotations

import asyncio
import logging
import math
from collections import defaultdict
from collections.abc import Callable, Iterable
from datetime import UTC, datetime
from typing import Any, Protocol

from graph.support import tasks
from repository.changes import (
    ON_DEMAND,
    Change,
    ChangeFeed,
    ChangeHistoryLost,
    ChangeStreamsUnsupported,
    Joiner,
)
from repository.database import Database, DatabaseError
from repository.errors import CodedError, ErrorCode

logger = logging.getLogger("jobgraph.hub")

Key = tuple[str, Any]
Predicate = Callable[[Change], bool]

WINDOW_SECONDS = 30.0
"""The longest a subscriber that must know what was written before it came
(``Subscriber.before_told``) holds back its changes until the stream has read up to then
(while the database is away, nothing comes meanwhile). After a burst written through
another process the stream lags by a second or more (it reads about 4,000 changes a
second on 2 cores), and a storm of 800 clients on 2 cores kept it from a reply for over
5 s; this bounds a stream that could never tell it caught up. Past it, what the stream
had not read by then is sent as news."""
HELD_QUEUES = 16
"""While it waits to be let in or holds back its changes, a subscriber's queue may hold
this many times its size (what the stream read meanwhile is not its lag: a burst of 300
jobs written through another process just before dropped it as SUBSCRIPTION_LAGGING);
past that it is dropped as lagging all the same, so a storm of subscribers during a long
burst cannot hold every change for each."""


class Flush(Protocol):
    def flush(self) -> None: ...


class Sink(Protocol):
    """Takes a parked subscriber's changes (``parking.py``)."""

    def receive(self, change: Change) -> Flush | None:
        """This subscriber's part of ``change``; what to flush once everyone has had it."""

    def failed(self, error: SubscriptionError) -> None:
        """The hub dropped the subscriber (lagging, reset, shutdown)."""


class SubscriptionError(CodedError):
    """A subscription refused or ended by the hub; it carries its own code."""

    def __init__(self, code: ErrorCode, message: str) -> None:
        super().__init__(message, code)


def lagging() -> SubscriptionError:
    return SubscriptionError(
        ErrorCode.SUBSCRIPTION_LAGGING,
        "you fell too far behind the stream of changes and were dropped; "
        "re-query the current state and subscribe again")


def reset() -> SubscriptionError:
    return SubscriptionError(
        ErrorCode.SUBSCRIPTION_RESET,
        "changes may have been lost (the change stream could not resume); "
        "re-query the current state and subscribe again")


def unavailable(reason: str) -> SubscriptionError:
    return SubscriptionError(ErrorCode.SUBSCRIPTIONS_UNAVAILABLE, reason)


def change_keys(change: Change) -> list[Key]:
    """The index keys a change is filed under: the object, and for jobs their batch."""
    keys: list[Key] = [(change.collection, change.object_id)]
    if change.collection == "jobs":
        for state in (change.document, change.previous):
            if state and state.get("batch_id"):
                keys.append(("jobs@batch", state["batch_id"]))
    return keys


def on_demand(subscriber: Subscriber) -> set[str]:
    """The ON_DEMAND collections ``subscriber`` follows (by collection or by key)."""
    return {*subscriber.collections, *(key[0] for key in subscriber.keys)} & ON_DEMAND


class Subscriber:
    """One subscription: its pending changes (bounded) and, while its reader waits, one
    future. Not an ``asyncio.Queue`` with an ``Event`` and two waiting tasks: with
    thousands of subscribers both the memory and the per-event wake-ups add up."""

    __slots__ = (
        "_waiter",
        "before_told",
        "collections",
        "error",
        "hub",
        "keys",
        "owner",
        "pending",
        "predicate",
        "queue_size",
        "registered",
        "settled",
        "since",
        "sink",
        "window",
    )

    def __init__(self, hub: Hub, keys: Iterable[Key], collections: Iterable[str],
                 predicate: Predicate | None, queue_size: int, owner: str | None = None,
                 before_told: bool = False) -> None:
        self.hub = hub
        self.owner = owner
        """The user it counts against (None: anonymous callers, counted together)."""
        self.keys = tuple(dict.fromkeys(keys))
        self.collections = tuple(dict.fromkeys(collections))
        self.predicate = predicate
        self.queue_size = queue_size
        self.pending: list[Change] = []  # rarely more than one: a list is the lightest
        self.error: SubscriptionError | None = None
        self.registered = False
        self.since: Any = None
        """The cluster time this process had seen when it registered (``ChangeFeed.seen``),
        until ``settled``: a change at or before it, read from the database before the
        reader reads the current state, is older than the subscription (see ``offer``)."""
        self.before_told: dict[Any, Change] | None = {} if before_told else None
        """For a subscription that reads no state of most objects it hears of (a filtered
        list), which cannot tell old news by version: the last change of each object
        written before the database's time it was told on its way in, once it knows
        (``follow.hidden_by_then``). The stream may be behind when it comes (a quiet process
        reads changes twice a second; a listened one may lag after a burst, or by a reply
        under way), so what it sends next may be from before the subscriber came, written
        through another process: then a reader whose access was taken just before heard
        the job's earlier states, then DELETED. Filled in place (a follower holds it)."""
        self.window: Joiner | None = None
        """While set, the changes queued are held back from the reader: the stream has yet
        to reach the database's time when it came (``before_told``); a subscriber that
        need not know is let in at once, not kept from reading the current state."""
        self.settled = math.inf
        """The stream's ``fetches`` when the reader was let in: changes read after that
        are all sent."""
        self._waiter: asyncio.Future[None] | None = None
        self.sink: Sink | None = None
        """Once parked (``parking.py``): who takes its changes instead of its reader."""

    async def __aenter__(self) -> Subscriber:
        self.hub.register(self)
        try:
            joiner = await self.hub.watching(self)
        except BaseException:
            self.hub.unregister(self)
            raise
        self.settled = self.hub.feed.fetches
        if self.before_told is not None and (joiner is None or not joiner.caught):
            # (let in by its timer or a stream gone: the stream has yet to catch up)
            since = self.since if joiner is None else joiner.since
            self.window = self.hub.feed.join(since, WINDOW_SECONDS, holds=True)
        else:
            self._told(None if joiner is None else joiner.since)
        return self

    def _told(self, told: Any) -> None:
        """The stream has read up to the database's time ``told`` (None: unknown)."""
        if self.pending and self.queue_size > 0:
            # what the stream read while it waited is not its lag: a burst written through
            # another process just before it came (more than the queue holds) dropped it
            # as SUBSCRIPTION_LAGGING before it had begun
            self.queue_size += len(self.pending)
        if self.before_told is not None and told is not None:
            self.before_told.update(((change.collection, change.object_id), change)
                                    for change in self.pending
                                    if change.written_before(told))

    async def _wait_until_told(self, window: Joiner) -> None:
        await asyncio.shield(window.admitted)  # (a reader's timeout must not settle it)
        self.window = None
        self._told(window.since)

    async def __aexit__(self, *exc_info: object) -> None:
        self.hub.unregister(self)

    def offer(self, change: Change) -> Any:
        """Queue ``change`` for the reader; a parked subscriber's sink takes it instead, and
        what it returns is flushed once the change has been offered to everyone."""
        if self.error is not None:
            return None
        since = self.since
        if since is not None:
            # A change read by the time the reader was let in was visible before it reads
            # the current state, which holds it; written at or before ``since`` it was under
            # way before the subscription began (initial: 0 reads no state), and is not
            # news. Read later, it is sent whatever its time: a write under way then may
            # have become visible only after the state was read.
            if self.hub.feed.fetches > self.settled:
                self.since = None
            elif change.written_before(since):
                return None
        if self.predicate is not None and not self.predicate(change):
            return None
        if self.sink is not None:
            return self.sink.receive(change)
        if 0 < self.queue_size <= len(self.pending) and (
                (self.settled < math.inf and self.window is None)
                or self.queue_size * HELD_QUEUES <= len(self.pending)):
            self.fail(lagging())  # (waiting to be let in, or told: see ``_told``)
            return
        self.pending.append(change)
        self._wake()
        return None

    def fail(self, error: SubscriptionError) -> None:
        if self.error is None:
            self.error = error
            self.pending.clear()
            self._wake()
            self.hub.remove(self)
            if self.sink is not None:
                self.sink.failed(error)

    def _wake(self) -> None:
        waiter = self._waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    async def next(self) -> Change:
        if self.window is not None:
            await self._wait_until_told(self.window)
        while True:
            if self.error is not None:
                raise self.error
            if self.pending:
                return self.pending.pop(0)
            self._waiter = asyncio.get_running_loop().create_future()
            try:
                await self._waiter
            finally:
                self._waiter = None

    def __aiter__(self) -> Subscriber:
        return self

    async def __anext__(self) -> Change:
        return await self.next()


class Hub:
    def __init__(self, db: Database, *, queue_size: int = 256, max_subscribers: int = 10_000,
                 max_per_user: int | None = None, max_anonymous: int | None = None,
                 retry_delay: float = 0.5, metrics: Any = None) -> None:
        self.feed = ChangeFeed(db)
        self.feed.listen(False)  # until the first subscriber
        self.metrics = metrics
        """Optional ``graph.metrics.Metrics``: active subscriptions and change-stream lag."""
        self.queue_size = queue_size
        self.max_subscribers = max_subscribers
        self.max_per_user = max_per_user
        self.max_anonymous = max_anonymous
        """Caps per caller (None: none), so that no one caller, and not the anonymous ones
        together, can hold every subscription the process serves."""
        self.by_owner: dict[str | None, int] = {}
        self.retry_delay = retry_delay
        self.by_key: dict[Key, set[Subscriber]] = defaultdict(set)
        self.by_collection: dict[str, set[Subscriber]] = defaultdict(set)
        self.followers: dict[str, int] = {}
        """Subscribers per ON_DEMAND collection (the stream reads it while there are any)."""
        self.count = 0
        self.running = False
        self.supported = True
        self.lag_seconds = 0.0
        self.events = 0
        self._task: asyncio.Task[None] | None = None

    # -- lifecycle ----------------------------------------------------------

    async def start(self) -> None:
        """Open the stream before serving, so no change after start-up is missed."""
        try:
            await self.feed.open()
        except ChangeStreamsUnsupported:
            self.supported = False
            logger.error(
                "subscriptions are off: this MongoDB is a standalone server without change "
                "streams; run it as a replica set (see README, 'Single-node replica set')")
            return
        self.running = True
        self._task = asyncio.create_task(self._run(), name="jobgraph-hub")

    async def stop(self) -> None:
        task, self._task = self._task, None
        if task is not None:
            await tasks.stop([task])
        await self.feed.close()
        self.running = False
        for subscriber in self.all_subscribers():
            subscriber.fail(unavailable("the server is shutting down; subscribe again"))

    async def _run(self) -> None:
        while True:
            try:
                if not self.running:
                    await self.feed.open()
                    self.running = True
                    logger.info("change stream resumed")
                async for change in self.feed.changes():
                    self.dispatch(change)
            except asyncio.CancelledError:
                raise
            except ChangeHistoryLost as exc:
                logger.error("change stream could not resume, subscribers reset: %s", exc)
                self.running = False
                for subscriber in self.all_subscribers():
                    subscriber.fail(reset())
            except (DatabaseError, OSError) as exc:
                tasks.reraise_if_cancelled(exc)
                if self.running:
                    logger.warning("change stream interrupted, resuming: %s",
                                   str(exc).splitlines()[0])
                self.running = False
                await self.feed.close()
                await asyncio.sleep(self.retry_delay)
            except Exception as exc:
                tasks.reraise_if_cancelled(exc)
                logger.exception("change stream failed unexpectedly; restarting it")
                self.running = False
                await self.feed.close()
                await asyncio.sleep(self.retry_delay)

    # -- fan-out ------------------------------------------------------------

    def dispatch(self, change: Change) -> None:
        self.events += 1
        if self.metrics is not None:
            self.metrics.change_event()
        if change.wall_time is not None:
            wall = change.wall_time
            if wall.tzinfo is None:
                wall = wall.replace(tzinfo=UTC)
            self.lag_seconds = max(0.0, (datetime.now(UTC) - wall).total_seconds())
            if self.metrics is not None:
                self.metrics.set_change_stream_lag(self.lag_seconds)
        if not self.count:  # (a worker's process: most changes, and no one to tell)
            return
        targets: set[Subscriber] = set(self.by_collection.get(change.collection, ()))
        for index_key in change_keys(change):
            targets |= self.by_key.get(index_key, set())
        flushes: set[Flush] = set()
        for subscriber in targets:
            flush = subscriber.offer(change)
            if flush is not None:
                flushes.add(flush)
        for flush in flushes:  # e.g. one execution for many parked subscribers
            flush.flush()

    async def watching(self, subscriber: Subscriber) -> Any:
        """Returns once the stream reads every collection ``subscriber`` follows, so that
        what it reads next (the current state) and what the stream brings leave nothing
        out; at once unless it is the first to follow an ON_DEMAND collection (then at
        the stream's next round: up to the server's getMore wait, 1 s on MongoDB). The
        first subscriber of a process that gathered changes unheard waits until the stream
        has read up to the moment it came: a round trip or two, at most a second
        (``ChangeFeed.caught_up``). Returns the ``Joiner`` that waited (None where it
        did not)."""
        joiner = await self.feed.caught_up(subscriber.since)
        needed = on_demand(subscriber)
        while (needed - set(self.feed.watched) and self._task is not None
               and subscriber.error is None):
            await self.feed.reopened()
        return joiner

    def all_subscribers(self) -> set[Subscriber]:
        found: set[Subscriber] = set()
        for group in (*self.by_key.values(), *self.by_collection.values()):
            found |= group
        return found

    def subscribe(
        self,
        *,
        keys: Iterable[Key] = (),
        collections: Iterable[str] = (),
        predicate: Predicate | None = None,
        owner: str | None = None,
        before_told: bool = False,
    ) -> Subscriber:
        """``async with hub.subscribe(...) as changes``: registered on entry, before the
        caller reads the current state; removed on exit, whatever happens. ``owner`` is
        the user it counts against; None for an anonymous caller. ``before_told``: see
        ``Subscriber.before_told``."""
        return Subscriber(self, keys, collections, predicate, self.queue_size, owner,
                          before_told)

    def register(self, subscriber: Subscriber) -> None:
        if not self.supported:
            raise unavailable("subscriptions need MongoDB change streams (a replica set)")
        if self.count >= self.max_subscribers:
            raise SubscriptionError(ErrorCode.TOO_MANY_SUBSCRIPTIONS,
                                    f"this server holds its maximum of {self.max_subscribers} "
                                    "subscriptions; try again later or another instance")
        owner = subscriber.owner
        held = self.by_owner.get(owner, 0)
        cap = self.max_anonymous if owner is None else self.max_per_user
        if cap is not None and held >= cap:
            raise SubscriptionError(ErrorCode.TOO_MANY_SUBSCRIPTIONS, (
                f"anonymous callers together hold their maximum of {cap} subscriptions on "
                "this server; sign in, or try again later" if owner is None else
                f"you hold your maximum of {cap} subscriptions on this server; end one first"))
        self.by_owner[owner] = held + 1
        subscriber.since = self.feed.seen()
        for key in subscriber.keys:
            self.by_key[key].add(subscriber)
        for collection in subscriber.collections:
            self.by_collection[collection].add(subscriber)
        for collection in on_demand(subscriber):
            self.followers[collection] = self.followers.get(collection, 0) + 1
            if self.followers[collection] == 1:
                self.feed.want(collection, True)
        subscriber.registered = True
        self.count += 1
        if self.count == 1:
            self.feed.listen(True)
        if self.metrics is not None:
            self.metrics.subscription_started()

    def unregister(self, subscriber: Subscriber) -> None:
        self.remove(subscriber)
        if self.metrics is not None:
            self.metrics.subscription_stopped()

    def remove(self, subscriber: Subscriber) -> None:
        if not subscriber.registered:
            return
        subscriber.registered = False
        window = subscriber.window
        if window is not None and not window.admitted.done():
            window.admitted.set_result(None)  # (no longer waited for by the stream)
        self.count -= 1
        if not self.count:
            self.feed.listen(False)
        held = self.by_owner.pop(subscriber.owner, 1) - 1
        if held > 0:
            self.by_owner[subscriber.owner] = held
        for key in subscriber.keys:
            group = self.by_key.get(key)
            if group is not None:
                group.discard(subscriber)
                if not group:
                    del self.by_key[key]
        for collection in subscriber.collections:
            self.by_collection[collection].discard(subscriber)
        for collection in on_demand(subscriber):
            self.followers[collection] -= 1
            if not self.followers[collection]:
                self.feed.want(collection, False)
