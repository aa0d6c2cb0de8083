"""GraphQL over WebSocket: text frames, and every message checked against its protocol's
specification before Strawberry's handlers read it.

Strawberry's handlers index into whatever JSON arrives (``message["type"]``,
``message["payload"]["query"]``), so a list, an object as ``id`` or ``payload: null``
raised a TypeError that killed the connection's handler (1006, and a traceback in the
log). Here each message is checked first, and a message of the wrong shape gets what its
protocol says:

- ``graphql-transport-ws`` (graphql-ws's PROTOCOL.md): "Receiving a message of a type or
  format which is not specified in this document will result in an immediate socket
  closure with the event ``4400: <error-message>``." The checks are those of the
  reference implementation's ``validateMessage``.
- ``graphql-ws`` (subscriptions-transport-ws's PROTOCOL.md): a message that cannot be
  parsed is answered with ``connection_error``, "which does not disconnect the client,
  just ignore[s] the message"; an operation that fails before execution gets ``error``
  with its id (GQL_ERROR). Both payloads carry ``extensions.code`` BAD_REQUEST.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import AsyncGenerator, Coroutine
from contextlib import suppress
from functools import partial
from inspect import CORO_CREATED, getcoroutinestate
from typing import TYPE_CHECKING, Any

import orjson
from graphql import GraphQLFormattedError
from starlette.websockets import WebSocketDisconnect, WebSocketState
from starlette.websockets import WebSocketDisconnected as SocketAlreadyClosed
from strawberry.asgi import ASGIWebSocketAdapter
from strawberry.http.exceptions import (
    NonJsonMessageReceived,
    NonTextMessageReceived,
    WebSocketDisconnected,
)
from strawberry.subscriptions.protocols.graphql_transport_ws.handlers import (
    BaseGraphQLTransportWSHandler,
)
from strawberry.subscriptions.protocols.graphql_ws.handlers import BaseGraphQLWSHandler

from graph.engine.internals import OperationStreamClosed
from graph.realtime.parking import Parked
from graph.schema.core.context import Context
from repository.errors import ErrorCode

from .fanout import GRAPHQL_WS, TRANSPORT_WS, FanOut

logger = logging.getLogger("jobgraph.sockets")

if TYPE_CHECKING:
    from starlette.websockets import WebSocket


def fanout_of(view: object) -> FanOut:
    """The parking of our view (``http.GraphQLView``, which builds these handlers; typed
    as Strawberry's base view there)."""
    fanout: FanOut = view.fanout  # type: ignore[attr-defined]
    return fanout


def socket_of(websocket: object) -> WebSocket:
    """Starlette's socket under Strawberry's adapter (``ASGIWebSocketAdapter.ws``)."""
    socket: WebSocket = websocket.ws  # type: ignore[attr-defined]
    return socket

MAX_CLOSE_REASON = 123
"""Bytes a close frame's reason may hold (RFC 6455: 125 with the 2-byte code)."""


class Unreadable:
    """What a ``graphql-ws`` socket received that is not JSON (that protocol answers it
    with ``connection_error`` and reads on)."""

    def __init__(self, reason: str) -> None:
        self.reason = reason


class TextFrames(ASGIWebSocketAdapter):
    """Every WebSocket message as a text frame. Strawberry sends bytes as binary frames,
    which browsers, graphql-ws, Apollo, urql and gql all refuse to read as messages."""

    async def send_json(self, message: Any) -> None:
        try:
            await self.ws.send_text(orjson.dumps(message).decode())
        except (WebSocketDisconnect, SocketAlreadyClosed) as exc:  # gone, or closed by us
            raise WebSocketDisconnected from exc

    async def close(self, code: int, reason: str) -> None:
        """A reason too long for a close frame would fail the close itself (1006)."""
        await super().close(code, truncated(reason))

    async def iter_json(self, *, ignore_parsing_errors: bool = False
                        ) -> AsyncGenerator[object, None]:
        """Strawberry's, except that a message that is not JSON is handed on as
        ``Unreadable`` where the protocol reads on (instead of being dropped unseen)."""
        try:
            while self.ws.application_state != WebSocketState.DISCONNECTED:
                text = await self.ws.receive_text()
                try:
                    message = self.view.decode_json(text)
                except json.JSONDecodeError as exc:
                    if not ignore_parsing_errors:
                        raise NonJsonMessageReceived from exc
                    message = Unreadable(f"the message is not JSON: {exc.msg}")
                yield message
        except KeyError as exc:  # a binary frame
            raise NonTextMessageReceived from exc
        except WebSocketDisconnect:
            pass


def truncated(reason: str) -> str:
    encoded = reason.encode()
    if len(encoded) <= MAX_CLOSE_REASON:
        return reason
    return encoded[:MAX_CLOSE_REASON - 3].decode(errors="ignore") + "..."


def _kind(value: Any) -> str:
    if value is None:
        return "null"
    return {dict: "an object", list: "a list", str: "a string", bool: "a boolean",
            int: "a number", float: "a number"}.get(type(value), type(value).__name__)


def _envelope_problem(message: Any) -> str | None:
    if not isinstance(message, dict):
        return f"a message must be an object, not {_kind(message)}"
    if not isinstance(message.get("type"), str):
        return f"a message's 'type' must be a string, not {_kind(message.get('type'))}"
    return None


def _id_problem(message: dict[str, Any]) -> str | None:
    operation_id = message.get("id")
    if not isinstance(operation_id, str) or not operation_id:
        return (f"a {message['type']!r} message's 'id' must be a non-empty string, "
                f"not {_kind(operation_id)}")
    return None


def _payload_problem(message: dict[str, Any]) -> str | None:
    """What is wrong with a subscribe (start) message's payload, if anything."""
    payload = message.get("payload")
    if not isinstance(payload, dict):
        return f"a {message['type']!r} message's 'payload' must be an object, not {_kind(payload)}"
    if not isinstance(payload.get("query"), str):
        return f"the payload's 'query' must be a string, not {_kind(payload.get('query'))}"
    for name, kind in (("variables", dict), ("operationName", str), ("extensions", dict)):
        value = payload.get(name)
        if value is not None and not isinstance(value, kind):
            return f"the payload's {name!r} must be {_kind(kind())} or null, not {_kind(value)}"
    return None


TRANSPORT_WS_CLIENT_TYPES = frozenset({"connection_init", "ping", "pong", "subscribe",
                                       "complete"})


def transport_ws_problem(message: Any) -> str | None:
    """Why a ``graphql-transport-ws`` message is not one the protocol specifies, or None."""
    problem = _envelope_problem(message)
    if problem is not None:
        return problem
    kind = message["type"]
    if kind not in TRANSPORT_WS_CLIENT_TYPES:
        return f"unknown message type {kind!r}"
    if kind in ("connection_init", "ping", "pong"):
        payload = message.get("payload")
        if payload is not None and not isinstance(payload, dict):
            return f"a {kind!r} message's 'payload' must be an object, not {_kind(payload)}"
        return None
    return _id_problem(message) or (_payload_problem(message) if kind == "subscribe" else None)


GRAPHQL_WS_CLIENT_TYPES = frozenset({"connection_init", "connection_terminate", "start",
                                     "stop"})


def graphql_ws_problem(message: Any) -> tuple[str, str | None] | None:
    """Why a ``graphql-ws`` message cannot be read, and the operation it belongs to (None:
    the connection's); None when it is fine."""
    if isinstance(message, Unreadable):
        return message.reason, None
    problem = _envelope_problem(message)
    if problem is not None:
        return problem, None
    kind = message["type"]
    if kind not in GRAPHQL_WS_CLIENT_TYPES:
        return f"unknown message type {kind!r}", None
    if kind in ("start", "stop"):
        problem = _id_problem(message)
        if problem is not None:
            return problem, None
    if kind == "start":
        problem = _payload_problem(message)
        if problem is not None:
            return problem, message["id"]
    return None


def refusal(reason: str) -> GraphQLFormattedError:
    return {"message": reason, "extensions": {"code": ErrorCode.BAD_REQUEST.value}}


class TransportWsHandler(BaseGraphQLTransportWSHandler[Context, None]):
    """Messages checked first; subscriptions parked where they can be (``fanout.py``)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.parked: dict[str, Any] = {}
        self.init_timer: asyncio.TimerHandle | None = None
        self.init_closing: asyncio.Task[None] | None = None
        fanout_of(self.view).offer_parking(self.context, socket_of(self.websocket))

    def on_request_accepted(self) -> None:
        """The wait for ``connection_init`` is a timer, not Strawberry's task: that task
        lived, then stayed cancelled (with its error, traceback and frame) for as long as
        the connection, ~2 KB each, and cost a task's start and cancellation per connect."""
        self.init_timer = asyncio.get_running_loop().call_later(
            self.connection_init_wait_timeout.total_seconds(), self._init_timed_out)

    def _init_timed_out(self) -> None:
        self.init_timer = None
        if self.connection_init_received:
            return
        self.connection_timed_out = True
        self.init_closing = asyncio.create_task(self.websocket.close(
            code=4408, reason="Connection initialisation timeout"))
        self.init_closing.add_done_callback(self._task_done)

    def _stop_init_timer(self) -> None:
        if self.init_timer is not None:
            self.init_timer.cancel()
            self.init_timer = None

    async def handle_connection_init(self, message: Any) -> None:
        self._stop_init_timer()
        await super().handle_connection_init(message)

    async def shutdown(self) -> None:
        self._stop_init_timer()
        await super().shutdown()

    async def handle_task_exception(self, error: Exception) -> None:
        """A client that leaves while its operation sends is no error of the server's
        (Strawberry logged each at ERROR, with a traceback)."""
        if isinstance(error, WebSocketDisconnected):
            logger.debug("the client left while its operation was sending")
            return
        await super().handle_task_exception(error)

    async def handle_message(self, message: Any) -> None:
        problem = transport_ws_problem(message)
        if problem is not None:
            await self.handle_invalid_message(problem)
            return
        await super().handle_message(message)

    async def _send_result_stream(self, operation: Any, result_source: Any) -> None:
        try:
            await super()._send_result_stream(operation, result_source)
        except Parked as parked:
            self.parked[operation.id] = fanout_of(self.view).join(
                parked, TRANSPORT_WS, operation.id, partial(self._parked_ended, operation))
            raise OperationStreamClosed from None  # its task ends; the operation goes on

    def _parked_ended(self, operation: Any) -> None:
        operation_id: str = operation.id
        self.parked.pop(operation_id, None)
        if not operation.completed:  # as Strawberry does before a final message
            operation.completed = True
            if self.operations.get(operation_id) is operation:
                del self.operations[operation_id]

    async def cleanup_operation(self, operation_id: str) -> None:
        member = self.parked.pop(operation_id, None)
        if member is not None:
            member.leave()
        await super().cleanup_operation(operation_id)


class GraphQLWsHandler(BaseGraphQLWSHandler[Context, None]):
    """Messages checked first; subscriptions parked where they can be (``fanout.py``)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.parked: dict[str, Any] = {}
        fanout_of(self.view).offer_parking(self.context, socket_of(self.websocket))

    async def handle_async_results(self, operation_id: str, query: str,
                                   operation_name: str | None,
                                   variables: dict[str, object] | None) -> None:
        try:
            await super().handle_async_results(operation_id, query, operation_name, variables)
        except WebSocketDisconnected:
            # the client left while it was sent something (even the ``complete`` of a
            # stop): its task ended unread, logged by asyncio at ERROR
            logger.debug("the client left while its operation was sending")
        except Parked as parked:
            self.parked[operation_id] = fanout_of(self.view).join(
                parked, GRAPHQL_WS, operation_id, partial(self.parked.pop, operation_id, None))

    async def handle_start(self, message: Any) -> None:
        if message["id"] in self.parked:  # the same id again: as for a running one
            await self.cleanup_operation(message["id"])
        await super().handle_start(message)

    async def cleanup_operation(self, operation_id: str) -> None:
        """A parked one is stopped like a running one: it leaves, then ``complete``; so is
        one whose task had not yet started (``start`` and ``stop`` read at once), which
        Strawberry cancelled without a word."""
        member = self.parked.pop(operation_id, None)
        if member is None:
            task = self.tasks.get(operation_id)
            coroutine = None if task is None else task.get_coro()
            unstarted = (isinstance(coroutine, Coroutine)
                         and getcoroutinestate(coroutine) == CORO_CREATED)
            await super().cleanup_operation(operation_id)
            if unstarted:
                with suppress(Exception):
                    await self.send_message({"type": "complete", "id": operation_id})
            return
        member.leave()
        with suppress(Exception):
            await self.send_message({"type": "complete", "id": operation_id})

    async def cleanup(self) -> None:
        """The connection is gone: parked ones leave without a word."""
        for member in list(self.parked.values()):
            member.leave()
        self.parked.clear()
        await super().cleanup()

    async def handle_message(self, message: Any) -> None:
        problem = graphql_ws_problem(message)
        if problem is None:
            await super().handle_message(message)
            return
        reason, operation_id = problem
        if operation_id is None:
            await self.send_message({"type": "connection_error",
                                     "payload": dict(refusal(reason))})
        else:
            await self.send_message({"type": "error", "id": operation_id,
                                     "payload": refusal(reason)})
