"""A WebSocket is closed with 4401 when the token it authenticated with expires.

The timer is kept in the socket's ASGI scope and cancelled by ``RequestObservability``
when the connection ends (its frame is the one that lives exactly as long), so no other
frame has to be kept per connection just to cancel it.
"""

from __future__ import annotations

import asyncio
import contextlib
import time

from starlette.types import Scope
from starlette.websockets import WebSocket

TOKEN_EXPIRED_CLOSE_CODE = 4401
TIMER = "jobgraph.expiry_timer"
CLOSING = "jobgraph.expiry_close"


def close_on_expiry(websocket: WebSocket, expires_at: float) -> None:
    delay = max(0.0, expires_at - time.time())
    websocket.scope[TIMER] = asyncio.get_running_loop().call_later(delay, _expire, websocket)


def forget(scope: Scope) -> None:
    """The connection ended: its timer, if any, must not fire (nor keep it alive)."""
    timer = scope.pop(TIMER, None)
    if timer is not None:
        timer.cancel()


def _expire(websocket: WebSocket) -> None:
    # kept in the scope, so the task cannot be collected before it closes the socket
    websocket.scope[CLOSING] = asyncio.ensure_future(_close(websocket))


async def _close(websocket: WebSocket) -> None:
    with contextlib.suppress(Exception):
        await websocket.close(code=TOKEN_EXPIRED_CLOSE_CODE, reason="Token expired")
