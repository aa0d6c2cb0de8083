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

from typing import Any

from uvicorn.protocols.websockets.websockets_sansio_impl import WebSocketsSansIOProtocol
from websockets.exceptions import InvalidState

from repository.errors import ErrorCode

LAGGING_CLOSE_CODE = 4499
LAGGING_CLOSE_REASON = ErrorCode.SUBSCRIPTION_LAGGING.value
FRAMES = "jobgraph.websocket.frames"
"""The ASGI scope extension under which a connection offers ``write_text``."""
WRITTEN, BLOCKED, CLOSED = "written", "blocked", "closed"


class WebSocketProtocol(WebSocketsSansIOProtocol):
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
