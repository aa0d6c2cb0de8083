"""Parked WebSocket subscriptions: each change executed once per group, its frame written
straight to every member's socket.

A subscription parks (``graph/realtime/parking.py``) once its current state has been
sent and it waits with nothing pending. From then on, for each change the hub hands it:

1. its ``Follower`` decides, for this subscriber, what it hears (access, order, events):
   the same rules its own generator applied before it parked;
2. subscribers of one group (the same operation, variables and caller, or any caller when
   the selection reads none: ``graph/engine/sharing.py``) that hear the same payload get
   ONE execution of it and ONE encoding of its ``payload`` JSON;
3. each member's frame is that encoding inside its own envelope (its operation id, its
   protocol's message type), written at once, without a task, an await or a copy of the
   executor per subscriber (``WebSocketProtocol.write_text``).

A subscriber whose change ends its subscription (NOT_FOUND: deleted, or no longer
readable; or an error of the hub) gets the error and ``complete``, as its own generator
would have sent them. Frames of one member go out in the order of the changes, behind
whatever an earlier execution still awaits. A member whose client stops reading keeps its
frames until the socket takes them; past the subscriber queue size it is dropped with
SUBSCRIPTION_LAGGING, as an unparked subscription is.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import weakref
from collections import deque
from collections.abc import Callable
from copy import copy
from typing import Any

import orjson

from graph.config.settings import Settings
from graph.engine.express import as_graphql_error
from graph.engine.sharing import ENCODINGS
from graph.realtime.hub import SubscriptionError, lagging
from graph.realtime.parking import Parked
from graph.schema.core.errors import client_error, code_of
from repository.changes import Change

from .websocket_protocol import BLOCKED, CLOSED, FRAMES, WRITTEN

logger = logging.getLogger("jobgraph.fanout")
RUNNING: set[asyncio.Future[None]] = set()
"""Executions under way (so that none is collected before it is done)."""

TRANSPORT_WS = "graphql-transport-ws"
GRAPHQL_WS = "graphql-ws"


def envelope(protocol: str, operation_id: str) -> tuple[bytes, bytes]:
    """The bytes before a ``next``/``data`` message's payload JSON, and the ``complete``
    message: exactly what Strawberry's handlers send (orjson keeps the keys' order)."""
    encoded_id = orjson.dumps(operation_id)
    # concatenated, so what is kept is exactly its size (orjson's result keeps ~4 KB)
    if protocol == TRANSPORT_WS:
        return (b'{"id":' + encoded_id + b',"type":"next","payload":',
                b'{"id":' + encoded_id + b',"type":"complete"}')
    return (b'{"type":"data","id":' + encoded_id + b',"payload":',
            b'{"type":"complete","id":' + encoded_id + b"}")


class ConnectionParking:
    """A WebSocket connection's offer to deliver its subscriptions' changes for them;
    kept in the connection's context, bound to an operation's executor per operation."""

    __slots__ = ("socket",)

    def __init__(self, socket: Any) -> None:
        self.socket = socket

    def bind(self, executor: Any) -> OperationParking:
        return OperationParking(self, executor)


class OperationParking:
    """The executor is held weakly: it holds the operation's context, which holds this;
    a cycle would leave every finished operation to the garbage collector (a collection
    in a reconnect storm walked thousands of them). From the moment its subscription is
    let park until the transport takes it over, it is held (``take_executor``)."""

    __slots__ = ("_executor", "connection", "held")

    def __init__(self, connection: ConnectionParking, executor: Any) -> None:
        self.connection = connection
        self._executor = weakref.ref(executor)
        self.held: Any = None

    def can_park(self) -> bool:
        if self.connection.socket.close_sent:
            return False
        self.held = self._executor()  # alive: its operation is running this
        return self.held is not None

    def take_executor(self) -> Any:
        executor, self.held = self.held, None
        return executor


class FanOut:
    """The groups of parked subscriptions of one app."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.groups: dict[Any, Group] = {}
        self.parked = 0

    def offer_parking(self, context: Any, websocket: Any) -> None:
        """Let the connection's subscriptions park, where the server can write frames
        without a task (``jobgraph serve``'s uvicorn protocol) and sharing is on."""
        if not self.settings.shared_subscriptions:
            return
        socket = websocket.scope.get("extensions", {}).get(FRAMES)
        if socket is not None:
            context.parking = ConnectionParking(socket)

    def join(self, parked: Parked, protocol: str, operation_id: str,
             on_end: Callable[[], None]) -> Member:
        """The member that delivers ``parked``'s changes from now on."""
        parking = parked.parking
        executor = parking.take_executor()
        key = executor.event_key()
        group = self.groups.get(key) if key is not None else None
        if group is None:
            group = Group(self, key, executor)
            if key is not None:
                self.groups[key] = group
        prefix, complete = envelope(protocol, operation_id)
        member = Member(group, parking.connection.socket, prefix, complete, parked, on_end)
        group.members += 1
        self.parked += 1
        subscriber = parked.subscriber
        pending, subscriber.pending = subscriber.pending, []
        for change in pending:  # arrived while it was handed over (none, as a rule)
            member.receive(change)
        subscriber.sink = member
        if subscriber.error is not None:
            member.failed(subscriber.error)
        group.flush()
        return member

    def forget(self, group: Group) -> None:
        if self.groups.get(group.key) is group:
            del self.groups[group.key]


class Batch:
    """The members that hear something of one change, by payload."""

    __slots__ = ("change", "payloads")

    def __init__(self, change: Change) -> None:
        self.change = change
        self.payloads: dict[int, tuple[Any, list[Member]]] = {}

    def add(self, member: Member, payload: Any) -> None:
        found = self.payloads.get(id(payload))
        if found is None:
            self.payloads[id(payload)] = (payload, [member])
        else:
            found[1].append(member)


class End:
    """A member whose subscription ends with ``error``, behind what it was sent before."""

    __slots__ = ("error", "member")

    def __init__(self, member: Member, error: BaseException) -> None:
        self.member = member
        self.error = error


class Group:
    """Members that share executions: one operation, variables and caller (or any caller,
    when the selection reads none); executes with a copy of the first one's executor."""

    __slots__ = ("busy", "executor", "fanout", "key", "members", "queue")

    def __init__(self, fanout: FanOut, key: Any, executor: Any) -> None:
        self.fanout = fanout
        self.key = key
        template = copy(executor)
        template.context_value = executor.context_value.detached()
        self.executor = template
        self.members = 0
        self.queue: deque[Batch | End] = deque()
        self.busy = False

    def add(self, member: Member, change: Change, payload: Any) -> Group:
        queue = self.queue
        batch = queue[-1] if queue else None
        if type(batch) is not Batch or batch.change is not change:
            batch = Batch(change)
            queue.append(batch)
        batch.add(member, payload)
        return self

    def end_later(self, member: Member, error: BaseException) -> Group:
        member.ending = True
        member.release_subscription()  # hears no more changes from now on
        self.queue.append(End(member, error))
        return self

    def flush(self) -> None:
        """Deliver what is queued, in order; an execution that must wait continues in a
        task, and what is queued behind it waits for it."""
        if self.busy:
            return
        try:
            self._pump()
        except Exception:
            logger.exception("delivering a change to parked subscribers failed")
            self.queue.clear()

    def _pump(self) -> None:
        queue = self.queue
        while queue:
            item = queue[0]
            if type(item) is End:
                queue.popleft()
                item.member.end(item.error)
                continue
            payloads = item.payloads  # type: ignore[union-attr]
            while payloads:
                _, (payload, members) = payloads.popitem()
                try:
                    result = self.executor.build_per_event_executor(payload) \
                        .execute_operation(False)
                except Exception as exc:  # graphql-core raises nothing as a rule
                    for member in members:
                        member.end(exc)
                    continue
                if self.executor.is_awaitable(result):
                    self.busy = True
                    task = asyncio.ensure_future(self._finish(result, members))
                    RUNNING.add(task)
                    task.add_done_callback(RUNNING.discard)
                    return
                self.deliver(result, members)
            queue.popleft()
        if not self.members:
            self.fanout.forget(self)

    async def _finish(self, awaitable: Any, members: list[Member]) -> None:
        try:
            result = await awaitable
        except Exception as exc:
            for member in members:
                member.end(exc)
        else:
            self.deliver(result, members)
        self.busy = False
        self.flush()

    def deliver(self, result: Any, members: list[Member]) -> None:
        errors = result.errors
        codes: list[str] = []
        if errors:
            coded = [client_error(error) for error in errors]
            codes = [code_of(error) for error in coded]
            body = orjson.dumps({"data": result.data,
                                 "errors": [error.formatted for error in coded]})
        else:
            body = ENCODINGS.encoded({"data": result.data}, orjson.dumps)
        for member in members:
            if not member.ended:  # one ending later still gets what came before
                member.write(member.prefix + body + b"}")
                if codes:
                    member.codes.extend(codes)


class Member:
    """One parked subscription: the hub's sink for it, and its frames' writer."""

    __slots__ = ("backlog", "codes", "complete", "drainer", "ended", "ending", "finish",
                 "follower", "group", "on_end", "prefix", "release", "socket")

    def __init__(self, group: Group, socket: Any, prefix: bytes, complete: bytes,
                 parked: Parked, on_end: Callable[[], None]) -> None:
        self.group = group
        self.socket = socket
        self.prefix = prefix
        self.complete = complete
        self.follower = parked.follower  # (not its subscriber: that holds this, its sink)
        self.release = parked.release
        self.finish = parked.finish
        self.on_end = on_end
        self.codes: list[str] = []
        self.backlog: deque[bytes] | None = None
        self.drainer: asyncio.Future[None] | None = None
        self.ending = False
        """Its end is decided (queued behind what it was sent before, or done)."""
        self.ended = False

    # -- the hub's sink ------------------------------------------------------------

    def receive(self, change: Change) -> Group | None:
        if self.ending:
            return None
        try:
            payload = self.follower.step(change)
        except Exception as exc:  # NOT_FOUND and the like: the end of this subscription
            return self.group.end_later(self, exc)
        if payload is None:
            return None
        return self.group.add(self, change, payload)

    def failed(self, error: SubscriptionError) -> None:
        if not self.ending:
            self.group.end_later(self, error).flush()

    # -- ends ------------------------------------------------------------------------

    def release_subscription(self) -> None:
        """Off the hub (it stays the sink: a change already on its way is ignored)."""
        release, self.release = self.release, None
        if release is not None:
            release()

    def end(self, error: BaseException) -> None:
        """Its error, then ``complete``: what its generator's raising would have sent."""
        if self.ended:
            return
        self.ending = True
        coded = client_error(as_graphql_error(error))
        self.write(self.prefix + orjson.dumps({"data": None, "errors": [coded.formatted]})
                   + b"}")
        self.write(self.complete)
        self._close([code_of(coded)])

    def leave(self) -> None:
        """The client completed it, or the connection closed: nothing more is sent."""
        if self.ended:
            return
        self.ending = True
        drainer, self.drainer = self.drainer, None
        if drainer is not None:
            drainer.cancel()
        self.backlog = None
        self._close([])

    def _close(self, codes: list[str]) -> None:
        self.ended = True
        self.release_subscription()
        group = self.group
        group.members -= 1
        group.fanout.parked -= 1
        if not group.members and not group.busy and not group.queue:
            group.fanout.forget(group)
        self.on_end()
        if self.finish is not None:
            self.finish(self.codes + codes)

    # -- frames ----------------------------------------------------------------------

    def write(self, frame: bytes) -> None:
        backlog = self.backlog
        if backlog is not None:
            backlog.append(frame)
            if len(backlog) > self.group.fanout.settings.subscriber_queue_size \
                    and not self.ending:
                backlog.clear()  # dropped, as an unparked subscriber's pending changes
                self.end(lagging())
            return
        state = self.socket.write_text(frame)
        if state is BLOCKED:
            self.backlog = deque((frame,))
            self.drainer = asyncio.ensure_future(self._drain())

    async def _drain(self) -> None:
        """Write what the socket could not take, once it can."""
        socket = self.socket
        with contextlib.suppress(asyncio.CancelledError):
            while self.backlog:
                await socket.writable_again()
                backlog = self.backlog
                while backlog:
                    state = socket.write_text(backlog[0])
                    if state is WRITTEN:
                        backlog.popleft()
                    elif state is CLOSED:
                        backlog.clear()
                    else:
                        break
        self.backlog = None
        self.drainer = None
