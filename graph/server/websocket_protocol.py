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

This extends uvicorn's ``WebSocketsSansIOProtocol`` (``uvicorn[standard]``'s default
since 0.35) and relies on its attributes; ``tests/graph/test_websocket_protocol.py``
fails if they change. ``jobgraph serve`` uses it (``UVICORN_WEBSOCKETS``).
"""

from __future__ import annotations

import asyncio
from typing import Any

from uvicorn.protocols.websockets.websockets_sansio_impl import WebSocketsSansIOProtocol
from websockets.exceptions import InvalidState

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


class WebSocketProtocol(WebSocketsSansIOProtocol):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.queue = Inbox()  # type: ignore[assignment]  # what uvicorn calls of a Queue
        self.writable = Flag()  # type: ignore[assignment]  # what uvicorn calls of an Event
        self.writable.set()

    async def send(self, message: Any) -> None:
        await super().send(message)
        if self.handshake_complete and getattr(self, "response", None) is not None:
            # the 101 response and the request's headers, no longer read by anyone
            self.response = None  # type: ignore[assignment]

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


UVICORN_WEBSOCKETS: dict[str, Any] = {"ws": WebSocketProtocol}
"""The uvicorn options that make a server use it (``uvicorn.run(..., **UVICORN_WEBSOCKETS)``)."""
