"""uvicorn's WebSocket protocol, with a documented end for a client that stops reading.

A client that stops reading its socket cannot be told anything in the usual way: once
the kernel's buffers and uvicorn's are full, uvicorn holds every message (a subscription
event, the SUBSCRIPTION_LAGGING error the hub raises for it, a close) until the client
reads again. What notices such a client is the keepalive: it answers no ping. uvicorn
then closes with 1011 ("keepalive ping timeout") and keeps the connection, and with it
every subscription, until the client reads or TCP gives up.

Here that close says what happened, as the README documents: close code 4499, reason
``SUBSCRIPTION_LAGGING`` (4499 is what graphql-ws clients call a socket that froze, and
they reconnect on it), written behind what is already buffered, so a client that
reads again gets everything it was sent, then the close; the application hears of it at
once and lets go of the connection's subscriptions; and a client that still answers
nothing for ``close_timeout`` (10 s) more is cut off, so a connection never outlives its
reader by more than the keepalive and that.

It also offers the application a way to write a text frame at once, without a task or
an await (``write_text``, found in the connection's ASGI scope under ``FRAMES``): a
parked subscription's frames are written by whoever delivers a change to thousands of
subscribers, one after the other (``graph/server/fanout.py``). Where uvicorn's own
``send`` would wait (the client is not reading and the buffers are full), it says so
instead, and the caller keeps its frames until ``writable()`` returns.

And it takes the opening handshake from uvicorn's HTTP parser as parsed (``upgrade``):
uvicorn wrote the parsed request out again for ``websockets`` to parse a second time and
then answered through ``websockets``' header objects, a sixth of what a subscriber costs
to connect. A handshake that is anything but plainly valid still goes that way, so every
refusal is ``websockets``' own, and so does every handshake while DEBUG lines are logged
(``websockets`` logs the request and its answer); ``tests/graph/test_websocket_handshake.py``
sends both ways the same requests and compares answers, scopes and log lines.

This extends uvicorn's ``WebSocketsSansIOProtocol`` (``uvicorn[standard]``'s default
since 0.35) and ``HttpToolsProtocol`` and relies on their attributes;
``tests/graph/test_websocket_protocol.py`` fails if they change. ``jobgraph serve`` uses
them (``UVICORN_PROTOCOLS``).
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import email.utils
import logging
from collections.abc import Iterable
from typing import Any
from urllib.parse import unquote

from uvicorn.logging import TRACE_LOG_LEVEL
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol
from uvicorn.protocols.utils import (
    ClientDisconnected,
    get_client_addr,
    get_path_with_query_string,
)
from uvicorn.protocols.websockets.websockets_sansio_impl import WebSocketsSansIOProtocol
from websockets.datastructures import Headers, is_valid_header_value
from websockets.exceptions import InvalidState
from websockets.http11 import (
    MAX_LINE_LENGTH,
    MAX_NUM_HEADERS,
    Response,
    _token_re,
    _value_re,
)
from websockets.protocol import OPEN, Protocol
from websockets.utils import accept_key

from repository.errors import ErrorCode

LAGGING_CLOSE_CODE = 4499
LAGGING_CLOSE_REASON = ErrorCode.SUBSCRIPTION_LAGGING.value
FRAMES = "jobgraph.websocket.frames"
"""The ASGI scope extension under which a connection offers ``write_text``."""
WRITTEN, BLOCKED, CLOSED = "written", "blocked", "closed"


class Inbox:
    """uvicorn's queue of a connection's ASGI events, without ``asyncio.Queue``'s three
    deques (2.2 KB per connection, most of them never used): uvicorn puts, the
    application's ``receive`` gets."""

    __slots__ = ("items", "waiters")

    def __init__(self) -> None:
        self.items: list[Any] = []
        self.waiters: list[asyncio.Future[None]] = []

    def put_nowait(self, item: Any) -> None:
        self.items.append(item)
        if self.waiters:
            waiters, self.waiters = self.waiters, []
            for waiter in waiters:
                if not waiter.done():
                    waiter.set_result(None)

    async def get(self) -> Any:
        while not self.items:
            waiter = asyncio.get_running_loop().create_future()
            self.waiters.append(waiter)
            try:
                await waiter
            finally:
                if waiter in self.waiters:  # cancelled before an item came
                    self.waiters.remove(waiter)
        return self.items.pop(0)

    def empty(self) -> bool:
        return not self.items

    def qsize(self) -> int:
        return len(self.items)


class Flag:
    """``asyncio.Event`` as uvicorn uses it for ``writable``, without the deque of
    waiters each event allocates (620 B per connection): nobody waits unless the client
    stops reading."""

    __slots__ = ("value", "waiters")

    def __init__(self) -> None:
        self.value = False
        self.waiters: list[asyncio.Future[bool]] | None = None

    def is_set(self) -> bool:
        return self.value

    def set(self) -> None:
        if self.value:
            return
        self.value = True
        waiters, self.waiters = self.waiters, None
        for waiter in waiters or ():
            if not waiter.done():
                waiter.set_result(True)

    def clear(self) -> None:
        self.value = False

    async def wait(self) -> bool:
        if self.value:
            return True
        waiter = asyncio.get_running_loop().create_future()
        if self.waiters is None:
            self.waiters = []
        self.waiters.append(waiter)
        await waiter
        return True


_EDGE_SPACE = (b" ", b"\t")


def _tokens(value: bytes) -> list[bytes] | None:
    """A header's comma-separated tokens; None where one is not a plain token."""
    tokens = [token.strip(b" \t") for token in value.split(b",")]
    return tokens if all(_token_re.fullmatch(token) for token in tokens) else None


def plain_handshake(method: str, url: bytes, headers: list[tuple[bytes, bytes]],
                    negotiates_extensions: bool) -> bytes | None:
    """The ``Sec-WebSocket-Key`` of an opening handshake that ``websockets`` would accept
    with no more than the key to answer; None for any other, which then takes the long
    way, so that whatever is refused is refused as ``websockets`` refuses it.

    ``headers`` are uvicorn's (names in lower case). Stricter than ``websockets`` where
    that is simpler: a header ``websockets`` would tolerate but read differently (space at
    either end, a repeated ``Origin``, a body length) also goes the long way."""
    if (method != "GET" or len(headers) > MAX_NUM_HEADERS or not url.isascii()
            or len(url) + 15 > MAX_LINE_LENGTH):
        return None
    key = version = None
    upgrade = connection = origin = False
    for name, value in headers:
        if (len(name) + len(value) + 4 > MAX_LINE_LENGTH or not _token_re.fullmatch(name)
                or not _value_re.fullmatch(value) or value[:1] in _EDGE_SPACE
                or value[-1:] in _EDGE_SPACE):
            return None
        if name == b"sec-websocket-key":
            if key is not None:
                return None
            key = value
        elif name == b"sec-websocket-version":
            if version is not None:
                return None
            version = value
        elif name == b"upgrade":
            if upgrade or value.lower() != b"websocket":
                return None
            upgrade = True
        elif name == b"connection":
            tokens = _tokens(value)
            if tokens is None:
                return None
            connection = connection or any(token.lower() == b"upgrade" for token in tokens)
        elif name == b"sec-websocket-protocol":
            if _tokens(value) is None:
                return None
        elif name == b"origin":
            if origin:
                return None
            origin = True
        elif name in (b"transfer-encoding", b"content-length") or (
                name == b"sec-websocket-extensions" and negotiates_extensions):
            return None
    if not (upgrade and connection and version == b"13" and key is not None):
        return None
    try:
        if len(base64.b64decode(key, validate=True)) != 16:
            return None
    except binascii.Error:
        return None
    return key


def _trace(logger: logging.Logger, client: tuple[str, int] | None, message: str) -> None:
    """One of uvicorn's trace lines, where uvicorn writes it (a level at TRACE or below,
    NOTSET too)."""
    if logger.level <= TRACE_LOG_LEVEL:
        prefix = f"{client[0]}:{client[1]} - " if client else ""
        logger.log(TRACE_LOG_LEVEL, "%s%s", prefix, message)


def request_bytes(method: str, url: bytes, headers: list[tuple[bytes, bytes]]) -> bytes:
    """The request as uvicorn writes it out for ``websockets`` to parse."""
    output = [method.encode(), b" ", url, b" HTTP/1.1\r\n"]
    for name, value in headers:
        output += [name, b": ", value, b"\r\n"]
    output.append(b"\r\n")
    return b"".join(output)


class WebSocketProtocol(WebSocketsSansIOProtocol):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.queue = Inbox()  # type: ignore[assignment]  # what uvicorn calls of a Queue
        self.writable = Flag()  # type: ignore[assignment]  # what uvicorn calls of an Event
        self.writable.set()
        self.accept_key: str | None = None
        """The handshake's answer, where ``upgrade`` took it as parsed."""

    def take_over(self, http: HttpToolsProtocol) -> None:
        """``connection_made`` with the addresses ``http`` already asked the socket for."""
        self.connections.add(self)
        self.transport = http.transport
        self.server, self.client = http.server, http.client
        self.scheme = "wss" if http.scheme == "https" else "ws"
        _trace(self.logger, self.client, "WebSocket connection made")

    def upgrade(self, method: str, url: bytes, parsed: Iterable[tuple[bytes, bytes]]) -> None:
        """Start from a request uvicorn's HTTP parser parsed: what ``handle_connect``
        does, without parsing it again or asking ``websockets`` to check it."""
        headers = list(parsed)
        # where websockets logs the request and its answer (DEBUG), it sees them
        key = None if self.conn.debug else plain_handshake(
            method, url, headers, bool(self.conn.available_extensions))
        if key is None:
            self.data_received(request_bytes(method, url, headers))
            if not self.handshake_initiated and self.conn.handshake_exc is not None:
                # websockets refused it while parsing (too many or too long headers, a
                # body) and uvicorn never writes that answer: the client waited forever
                self.transport.write(b"".join(self.conn.data_to_send()))
                self.transport.close()
            return
        # where websockets' parser is once it has read a request: at the first frame
        self.conn.parser = Protocol.parse(self.conn)
        next(self.conn.parser)
        self.conn.accept_called = True  # its log then says "rejected" of a refusal, as before
        self.accept_key = accept_key(key.decode())
        self.handshake_initiated = True
        raw_path, _, query_string = url.decode("ascii").partition("?")
        subprotocols = [token.strip() for name, value in headers
                        if name == b"sec-websocket-protocol"
                        for token in value.decode("latin-1").split(",")]
        self.scope = {
            "type": "websocket",
            "asgi": {"version": self.asgi_version, "spec_version": "2.4"},
            "http_version": "1.1",
            "scheme": self.scheme,
            "server": self.server,
            "client": self.client,
            "root_path": self.root_path,
            "path": self.root_path + unquote(raw_path),
            "raw_path": self.root_path.encode("ascii") + raw_path.encode("ascii"),
            "query_string": query_string.encode("ascii"),
            "headers": headers,
            "subprotocols": subprotocols,
            "state": self.app_state.copy(),
            "extensions": {"websocket.http.response": {}},
        }
        self.scope["extensions"][FRAMES] = self  # type: ignore[assignment]
        self.queue.put_nowait({"type": "websocket.connect"})
        task = self.loop.create_task(self.run_asgi())
        task.add_done_callback(self.on_task_complete)
        self.tasks.add(task)

    def _switching_protocols(self, message: Any) -> bytes | None:
        """The 101 answer uvicorn would write, from ``accept_key``; None where a header
        would need ``websockets``' own handling (one not ASCII, or not a valid value)."""
        output = [b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n"
                  b"Connection: Upgrade\r\nSec-WebSocket-Accept: ",
                  self.accept_key.encode(), b"\r\n"]  # type: ignore[union-attr]
        for name, value in (*self.default_headers, *message.get("headers", ())):
            if not (name.isascii() and value.isascii()
                    and is_valid_header_value(value.decode("ascii"))):
                return None
            output += [name.lower(), b": ", value, b"\r\n"]
        subprotocol = message.get("subprotocol")
        if subprotocol:
            if not (subprotocol.isascii() and is_valid_header_value(subprotocol)):
                return None
            output += [b"Sec-WebSocket-Protocol: ", subprotocol.encode(), b"\r\n"]
        output.append(b"\r\n")
        return b"".join(output)

    async def send(self, message: Any) -> None:
        if (self.accept_key is not None and message["type"] == "websocket.accept"
                and not self.handshake_complete and self.initial_response is None):
            response = self._switching_protocols(message)
            if response is not None:
                await self.writable.wait()
                if self.disconnected:
                    raise ClientDisconnected()
                self._accept(response)
                return
            # what websockets' accept would have answered, for uvicorn to complete
            headers = Headers()
            headers["Date"] = email.utils.formatdate(usegmt=True)
            headers["Upgrade"] = "websocket"
            headers["Connection"] = "Upgrade"
            headers["Sec-WebSocket-Accept"] = self.accept_key
            self.response = Response(101, "Switching Protocols", headers)
        await super().send(message)
        if self.handshake_complete and getattr(self, "response", None) is not None:
            # the 101 response and the request's headers, no longer read by anyone
            self.response = None  # type: ignore[assignment]

    def _accept(self, response: bytes) -> None:
        """uvicorn's ``websocket.accept``, writing ``response``."""
        if self.logger.isEnabledFor(logging.INFO):
            self.logger.info('%s - "WebSocket %s" [accepted]', get_client_addr(self.scope),
                             get_path_with_query_string(self.scope))
        if self.transport.is_closing():
            return
        self.handshake_complete = True
        self.conn.state = OPEN  # what websockets' send_response does with a 101
        self.conn.logger.info("connection open")
        self.transport.write(response)
        self.start_keepalive()

    def connection_lost(self, exc: Exception | None) -> None:
        super().connection_lost(exc)
        scope = getattr(self, "scope", None)
        if scope is not None:  # it holds this: a cycle, left to the garbage collector
            scope["extensions"].pop(FRAMES, None)

    def handle_connect(self, event: Any) -> None:
        super().handle_connect(event)
        scope = getattr(self, "scope", None)  # none when the handshake was refused
        if scope is not None:
            scope["extensions"][FRAMES] = self

    def write_text(self, data: bytes) -> str:
        """Write one text frame (UTF-8 ``data``) now: WRITTEN; BLOCKED when uvicorn's
        ``send`` would wait for the client to read (nothing written); CLOSED when the
        connection is closing or gone (nothing written, ever again)."""
        if (self.close_sent or self.disconnected or not self.handshake_complete
                or self.transport.is_closing()):
            return CLOSED
        if not self.writable.is_set():
            return BLOCKED
        try:
            self.conn.send_text(data)
        except InvalidState:
            return CLOSED
        self.transport.write(b"".join(self.conn.data_to_send()))
        return WRITTEN

    async def writable_again(self) -> None:
        """Returns once frames may be written again (or the connection is gone)."""
        await self.writable.wait()

    def keepalive_timeout(self) -> None:
        """The client answered no ping within ``ws_ping_timeout``: it stopped reading (or
        is gone). Close with SUBSCRIPTION_LAGGING instead of uvicorn's 1011."""
        self.pong_timer = None
        self.pending_ping_payload = None
        if self.close_sent or self.transport.is_closing():
            return
        self.conn.send_close(LAGGING_CLOSE_CODE, LAGGING_CLOSE_REASON)
        self.transport.write(b"".join(self.conn.data_to_send()))  # behind what is buffered
        self.close_sent = True
        # the application's subscriptions end now, not when the client reads again
        self.queue.put_nowait({"type": "websocket.disconnect", "code": LAGGING_CLOSE_CODE,
                               "reason": LAGGING_CLOSE_REASON})
        if self.read_paused:  # to read the client's answer to the close
            self.read_paused = False
            self.transport.resume_reading()
        self.close_timer = self.loop.call_later(self.close_timeout, self._give_up)

    def _give_up(self) -> None:
        """No answer to the close: end the connection, at once if even what uvicorn
        buffered was not taken (what the kernel took still reaches the client)."""
        self.close_timer = None
        if self.transport.get_write_buffer_size():
            self.transport.abort()
        else:
            self.transport.close()


class HttpProtocol(HttpToolsProtocol):
    """uvicorn's httptools protocol, handing a WebSocket upgrade on as parsed
    (``WebSocketProtocol.upgrade``) where uvicorn wrote it out to be parsed again."""

    def handle_websocket_upgrade(self) -> None:
        if not issubclass(self.ws_protocol_class, WebSocketProtocol):  # type: ignore[arg-type]
            super().handle_websocket_upgrade()
            return
        _trace(self.logger, self.client, "Upgrading to WebSocket")
        self.connections.discard(self)
        protocol: WebSocketProtocol = self.ws_protocol_class(  # type: ignore[call-arg, misc, assignment]
            config=self.config, server_state=self.server_state, app_state=self.app_state)
        protocol.take_over(self)
        protocol.upgrade(self.scope["method"], self.url, self.scope["headers"])
        self.transport.set_protocol(protocol)
        # the parser holds this protocol's callbacks: a cycle, left to the garbage
        # collector (uvicorn breaks it in connection_lost, never called after an upgrade)
        self.parser = None  # type: ignore[assignment]


UVICORN_PROTOCOLS: dict[str, Any] = {"http": HttpProtocol, "ws": WebSocketProtocol}
"""The uvicorn options that make a server use them (``uvicorn.run(..., **UVICORN_PROTOCOLS)``)."""
