"""A real uvicorn server in the test's event loop, and WebSocket GraphQL clients
for both protocols (graphql-transport-ws and the older graphql-ws)."""

from __future__ import annotations

import asyncio
import itertools
import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import uvicorn
import websockets

from graph.config.settings import Settings
from graph.server.app import create_app
from graph.server.websocket_protocol import UVICORN_PROTOCOLS
from repository.database import free_port

DEADLINE = 20.0
"""Generous: the database and the server share two busy cores."""


class LiveServer:
    def __init__(self, app: Any, port: int, uvicorn_server: Any = None) -> None:
        self.app = app
        self.port = port
        self.uvicorn = uvicorn_server
        """The ``uvicorn.Server`` (in this process), for its open connections."""
        self.url = f"http://127.0.0.1:{port}"
        self.ws_url = f"ws://127.0.0.1:{port}/graphql"


@asynccontextmanager
async def live_server(settings: Settings, mongo_uri: str,
                      client_options: dict[str, Any] | None = None,
                      ws_ping: float | None = None,
                      port: int | None = None) -> AsyncIterator[LiveServer]:
    """The app served as ``jobgraph serve`` serves it. ``client_options`` go to its pymongo
    client (command listeners); ``ws_ping``: the WebSocket keepalive's ping interval and
    timeout (off unless given, so that a paused test is never taken for a dead client);
    ``port``: a given one (a server started again where clients reconnect to)."""
    app = create_app(settings, mongodb_uri=mongo_uri, client_options=client_options)
    port = port or free_port()
    config = uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning",
                            lifespan="on", ws_ping_interval=ws_ping, ws_ping_timeout=ws_ping,
                            ws_per_message_deflate=settings.websocket_compression,
                            **UVICORN_PROTOCOLS)
    async with serving(config) as server:
        yield LiveServer(app, port, server)


@asynccontextmanager
async def serving(config: uvicorn.Config, *, force_exit: bool = False
                  ) -> AsyncIterator[uvicorn.Server]:
    """A uvicorn server in this event loop, once it accepts connections; ``force_exit``:
    stopped without waiting for open connections."""
    server = uvicorn.Server(config)
    task = asyncio.create_task(server.serve())
    try:
        async with asyncio.timeout(DEADLINE):
            while not server.started:
                if task.done():
                    task.result()
                await asyncio.sleep(0.02)
        yield server
    finally:
        server.should_exit = True
        server.force_exit = force_exit
        await asyncio.wait_for(task, DEADLINE)


class SubscriptionClosed(Exception):
    def __init__(self, errors: Any) -> None:
        super().__init__(errors)
        self.errors = errors


class WsClient:
    """One WebSocket connection; ``subscribe`` returns an operation id, ``next`` its payloads."""

    def __init__(self, socket: Any, protocol: str) -> None:
        self.socket = socket
        self.protocol = protocol
        self.ids = itertools.count(1)
        self.inbox: dict[str, asyncio.Queue[dict[str, Any]]] = {}
        self.control: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
        self.reader = asyncio.create_task(self._read())
        self.closed: asyncio.Future[tuple[int | None, str | None]] = (
            asyncio.get_running_loop().create_future())

    async def _read(self) -> None:
        try:
            async for raw in self.socket:
                if not isinstance(raw, str):  # browsers and graphql-ws read only text frames
                    raise AssertionError(f"binary WebSocket frame from the server: {raw!r}")
                message = json.loads(raw)
                if message.get("type") in ("ping", "ka"):
                    if message["type"] == "ping":
                        await self.socket.send(json.dumps({"type": "pong"}))
                    continue
                op = message.get("id")
                if op is None:
                    self.control.put_nowait(message)
                else:
                    self.inbox.setdefault(op, asyncio.Queue()).put_nowait(message)
        except websockets.ConnectionClosed:
            pass
        finally:
            if not self.closed.done():
                self.closed.set_result((self.socket.close_code, self.socket.close_reason))
            for queue in [*self.inbox.values(), self.control]:
                queue.put_nowait({"type": "closed"})

    async def subscribe(self, query: str, variables: dict[str, Any] | None = None) -> str:
        op = str(next(self.ids))
        self.inbox.setdefault(op, asyncio.Queue())
        kind = "subscribe" if self.protocol == "graphql-transport-ws" else "start"
        await self.socket.send(json.dumps({"id": op, "type": kind, "payload": {
            "query": query, "variables": variables or {}}}))
        return op

    async def next(self, op: str, deadline: float = DEADLINE) -> dict[str, Any]:
        """The next data payload of ``op``; raises SubscriptionClosed on error/complete."""
        message = await asyncio.wait_for(self.inbox[op].get(), deadline)
        kind = message["type"]
        if kind in ("next", "data"):
            payload = message["payload"]
            if payload.get("errors"):
                raise SubscriptionClosed(payload["errors"])
            return payload["data"]
        raise SubscriptionClosed(message.get("payload"))

    async def stop(self, op: str) -> None:
        kind = "complete" if self.protocol == "graphql-transport-ws" else "stop"
        await self.socket.send(json.dumps({"id": op, "type": kind}))

    async def close(self) -> None:
        await self.socket.close()
        self.reader.cancel()


@asynccontextmanager
async def ws_client(server: LiveServer, *, protocol: str = "graphql-transport-ws",
                    payload: dict[str, Any] | None = None,
                    headers: dict[str, str] | None = None) -> AsyncIterator[WsClient]:
    socket = await websockets.connect(server.ws_url, subprotocols=[protocol],
                                      additional_headers=headers, open_timeout=DEADLINE,
                                      max_size=None)
    client = WsClient(socket, protocol)
    init = {"type": "connection_init", "payload": payload or {}}
    await socket.send(json.dumps(init))
    try:
        ack = await asyncio.wait_for(client.control.get(), DEADLINE)
        if ack.get("type") != "connection_ack":
            raise SubscriptionClosed({"message": ack, "close": await client.closed})
        yield client
    finally:
        await client.close()
