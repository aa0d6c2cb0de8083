"""A subscriber that stops reading gets the documented end: its socket is closed with 4499
``SUBSCRIPTION_LAGGING`` behind what it was already sent, and the server lets go of its
subscriptions at once. Tested with a raw WebSocket client (the ``websockets`` sans-I/O
protocol over a plain TCP stream) that reads nothing after the handshake, against the
server as ``jobgraph serve`` runs it, with a fast keepalive."""

from __future__ import annotations

import asyncio
import base64
import inspect
import json
import logging
import os
import re
import socket
from typing import Any

import httpx
import pytest
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol
from uvicorn.protocols.websockets.websockets_sansio_impl import WebSocketsSansIOProtocol
from websockets.client import ClientProtocol
from websockets.frames import Close, Opcode
from websockets.http11 import Response
from websockets.server import ServerProtocol
from websockets.uri import parse_uri

from graph.server.websocket_protocol import LAGGING_CLOSE_CODE, Flag, Inbox, WebSocketProtocol
from tests.helpers.graphql import WORKER, Api, make_settings
from tests.helpers.live import DEADLINE, live_server
from tests.helpers.waiting import eventually

from .test_subscriptions import ALICE, CLAIM, HEARTBEAT, bearer, create_job

FOLLOW = "subscription($id: ID!) { jobChanged(jobId: $id) { version parameters } }"


class RawClient:
    """A WebSocket client whose reading the test controls: nothing is read from the socket
    but when ``read_all`` says so (the handshake aside)."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter,
                 protocol: ClientProtocol) -> None:
        self.reader, self.writer, self.protocol = reader, writer, protocol

    @classmethod
    async def connect(cls, url: str) -> RawClient:
        host, port = url.split("//")[1].split("/")[0].split(":")
        sock = socket.socket()
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)  # fills soon
        sock.setblocking(False)
        await asyncio.get_running_loop().sock_connect(sock, (host, int(port)))
        reader, writer = await asyncio.open_connection(sock=sock, limit=2**24)
        protocol = ClientProtocol(parse_uri(url), subprotocols=["graphql-transport-ws"])
        protocol.send_request(protocol.connect())
        client = cls(reader, writer, protocol)
        await client.flush()
        async with asyncio.timeout(DEADLINE):
            while not any(isinstance(event, Response) for event in client._receive(
                    await reader.read(4096))):
                pass
        return client

    def _receive(self, data: bytes) -> list[Any]:
        if data:
            self.protocol.receive_data(data)
        else:
            self.protocol.receive_eof()
        return self.protocol.events_received()

    async def flush(self) -> None:
        self.writer.write(b"".join(self.protocol.data_to_send()))
        await self.writer.drain()

    async def send(self, message: dict[str, Any]) -> None:
        self.protocol.send_text(json.dumps(message).encode())
        await self.flush()

    async def read_all(self) -> tuple[list[dict[str, Any]], Close | None]:
        """Everything the server sent, until it closed: its messages, and its close."""
        messages: list[dict[str, Any]] = []
        async with asyncio.timeout(DEADLINE):
            while True:
                data = await self.reader.read(2**20)
                for frame in self._receive(data):
                    if frame.opcode is Opcode.TEXT:
                        messages.append(json.loads(frame.data))
                await self.flush()  # pongs, and the answer to a close
                if not data or self.protocol.close_rcvd is not None:
                    return messages, self.protocol.close_rcvd

    def close(self) -> None:
        self.writer.close()


@pytest.mark.slow
async def test_a_subscriber_that_stops_reading_is_closed_with_subscription_lagging(
    mongo_uri: str, store: Any, database_name: str, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    settings = make_settings(database=database_name, max_payload_bytes=200_000)
    async with live_server(settings, mongo_uri, ws_ping=1.0) as server, httpx.AsyncClient(
            base_url=server.url, timeout=DEADLINE) as http_client:
        http = Api(http_client, settings)
        # incompressible, so each event really is ~150 KB on the wire
        blob = base64.b64encode(os.urandom(110_000)).decode()
        job_id = await create_job(http, parameters={"blob": blob})
        await http.data(CLAIM, {"types": ["pdf"]}, as_=WORKER)
        hub = server.app.state.hub
        # given two subscribers that read nothing once subscribed: one will read again
        # later, the other never
        later, never = await RawClient.connect(server.ws_url), await RawClient.connect(
            server.ws_url)
        try:
            for client in (later, never):
                await client.send({"type": "connection_init",
                                   "payload": bearer(settings, ALICE)})
                await client.send({"id": "1", "type": "subscribe",
                                   "payload": {"query": FOLLOW, "variables": {"id": job_id}}})
            # each sent its current state (version 1), so parked: registered alone, it may
            # still be waiting to read it when the first heartbeat lands
            await eventually(lambda: hub.count == 2 and all(
                subscriber.sink is not None for subscriber in hub.all_subscribers()))
            for connection in websockets_open(server):  # uvicorn's 10 s, shortened
                connection.close_timeout = 1.0
            # when changes keep coming (more than their buffers hold)
            for _ in range(40):
                await http.data(HEARTBEAT, {"id": job_id}, as_=WORKER)
            # then the server lets go of their subscriptions (its pings got no answer)
            await eventually(lambda: hub.count == 0)
            # and the one that reads again gets what it was sent, in order, then the close
            messages, close = await later.read_all()
            later.close()
            # and the one that never reads is cut off (its close timeout after the close)
            await eventually(lambda: not websockets_open(server), deadline=DEADLINE)
        finally:
            later.close()
            never.close()
    assert close is not None, f"no close frame after {len(messages)} messages"
    assert (close.code, close.reason) == (LAGGING_CLOSE_CODE, "SUBSCRIPTION_LAGGING")
    assert messages[0]["type"] == "connection_ack"
    versions = [m["payload"]["data"]["jobChanged"]["version"] for m in messages[1:]
                if m["type"] == "next"]
    assert versions == list(range(1, 1 + len(versions))) and versions
    # and nothing went wrong on the way (an unexpected error is logged at ERROR)
    assert [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR] == []


def websockets_open(server: Any) -> list[Any]:
    return [connection for connection in server.uvicorn.server_state.connections
            if isinstance(connection, WebSocketProtocol)]


def test_uvicorns_protocol_still_has_what_ours_relies_on() -> None:
    # WebSocketProtocol overrides keepalive_timeout and uses these attributes
    source = inspect.getsource(WebSocketsSansIOProtocol)
    assert "def keepalive_timeout(self) -> None:" in source
    assert "def handle_connect(self, event: Request) -> None:" in source
    for attribute in ("self.conn", "self.transport", "self.close_sent", "self.queue",
                      "self.read_paused", "self.close_timer", "self.close_timeout",
                      "self.pong_timer", "self.pending_ping_payload", "self.loop",
                      "self.writable", "self.disconnected", "self.handshake_complete",
                      "self.scope"):
        assert re.search(rf"{re.escape(attribute)}(: [^=]+)? = ", source), attribute
    assert issubclass(WebSocketProtocol, WebSocketsSansIOProtocol)
    # HttpProtocol replaces the upgrade's hand-over, WebSocketProtocol.upgrade what
    # handle_connect does with a parsed request (test_websocket_handshake compares them)
    upgrade = inspect.getsource(HttpToolsProtocol.handle_websocket_upgrade)
    for line in ("self.connections.discard(self)", "protocol.connection_made(self.transport)",
                 "self.transport.set_protocol(protocol)", 'output = [method, b" ", self.url'):
        assert line in upgrade, line
    assert "yield from super().parse()" in inspect.getsource(ServerProtocol.parse)


def test_uvicorn_calls_of_its_queue_and_flag_are_those_inbox_and_flag_have() -> None:
    # WebSocketProtocol swaps uvicorn's asyncio.Queue and Event for lighter ones
    source = inspect.getsource(WebSocketsSansIOProtocol)
    assert set(re.findall(r"self\.queue\.(\w+)", source)) <= {"put_nowait", "get", "empty"}
    assert set(re.findall(r"self\.writable\.(\w+)", source)) <= {"set", "clear", "wait",
                                                                "is_set"}
    assert "self.response" in source  # dropped by ours once the handshake is written


async def test_the_inbox_hands_items_in_order_to_a_waiting_reader() -> None:
    inbox = Inbox()
    reader = asyncio.create_task(inbox.get())
    await asyncio.sleep(0)
    inbox.put_nowait(1)
    inbox.put_nowait(2)
    assert await asyncio.wait_for(reader, DEADLINE) == 1
    assert not inbox.empty() and inbox.qsize() == 1
    assert await inbox.get() == 2 and inbox.empty()
    # a reader cancelled while waiting leaves nothing behind, the next one gets the item
    cancelled = asyncio.create_task(inbox.get())
    await asyncio.sleep(0)
    cancelled.cancel()
    with pytest.raises(asyncio.CancelledError):
        await cancelled
    assert inbox.waiters == []
    inbox.put_nowait(3)
    assert await asyncio.wait_for(inbox.get(), DEADLINE) == 3


async def test_the_flag_wakes_every_waiter_when_set_and_waits_again_once_cleared() -> None:
    flag = Flag()
    assert not flag.is_set()
    waiters = [asyncio.create_task(flag.wait()) for _ in range(3)]
    await asyncio.sleep(0)
    assert not any(waiter.done() for waiter in waiters)
    flag.set()
    assert await asyncio.wait_for(asyncio.gather(*waiters), DEADLINE) == [True] * 3
    flag.clear()
    late = asyncio.create_task(flag.wait())
    await asyncio.sleep(0)
    assert not late.done()
    flag.set()
    assert await asyncio.wait_for(late, DEADLINE) is True


async def test_a_socket_that_never_sends_connection_init_is_closed_with_4408(
        mongo_uri: str, store: Any, database_name: str) -> None:
    import websockets

    settings = make_settings(database=database_name, websocket_init_timeout_seconds=0.5)
    async with live_server(settings, mongo_uri) as server:
        silent = await websockets.connect(server.ws_url,
                                          subprotocols=["graphql-transport-ws"])  # type: ignore[list-item]
        talking = await websockets.connect(server.ws_url,
                                           subprotocols=["graphql-transport-ws"])  # type: ignore[list-item]
        try:
            await talking.send(json.dumps({"type": "connection_init",
                                           "payload": bearer(settings, ALICE)}))
            assert json.loads(await talking.recv())["type"] == "connection_ack"
            # the silent one is closed once the wait is over
            with pytest.raises(websockets.ConnectionClosed) as closed:
                await asyncio.wait_for(silent.recv(), DEADLINE)
            assert (closed.value.rcvd.code, closed.value.rcvd.reason) == (
                4408, "Connection initialisation timeout")
            # and the one that said hello in time still works after it
            await talking.send(json.dumps({"id": "1", "type": "subscribe", "payload": {
                "query": "query { viewer { userId } }"}}))
            answer = json.loads(await asyncio.wait_for(talking.recv(), DEADLINE))
            assert answer["payload"]["data"]["viewer"]["userId"] == ALICE.user_id
        finally:
            await silent.close()
            await talking.close()


def coroutine_chain(task: asyncio.Task[Any]) -> list[str]:
    """The qualified names of the coroutines a task is suspended in, outermost first."""
    names, current = [], task.get_coro()
    while current is not None:
        code = getattr(current, "cr_code", None) or getattr(current, "ag_code", None)
        names.append(code.co_qualname if code is not None else type(current).__name__)
        current = getattr(current, "cr_await", None) or getattr(current, "ag_await", None)
    return names


async def test_a_graphql_socket_holds_no_frame_of_the_middleware_stack_or_router(
        mongo_uri: str, store: Any, database_name: str) -> None:
    import websockets

    settings = make_settings(database=database_name)
    async with live_server(settings, mongo_uri) as server, websockets.connect(server.ws_url,
                                  subprotocols=["graphql-transport-ws"]  # type: ignore[list-item]
                                  ) as socket:
        await socket.send(json.dumps({"type": "connection_init",
                                      "payload": bearer(settings, ALICE)}))
        assert json.loads(await socket.recv())["type"] == "connection_ack"
        connections = [chain for chain in map(coroutine_chain, asyncio.all_tasks())
                       if chain and chain[0].endswith("run_asgi")]
    # what a connection holds while it waits for its next message, for as long as it lasts
    assert len(connections) == 1
    held = connections[0]
    assert "RequestObservability._websocket" in held  # still observed (id, metrics, log)
    assert "BaseGraphQLTransportWSHandler.handle" in held
    skipped = ("ServerErrorMiddleware", "ExceptionMiddleware", "Router", "WebSocketRoute",
               "wrap_app_handling_exceptions", "GraphQL.__call__")
    assert [name for name in held if name.startswith(skipped)] == [], held


@pytest.mark.parametrize("compression", [False, True])
async def test_permessage_deflate_is_declined_unless_switched_on(
        mongo_uri: str, store: Any, database_name: str, compression: bool) -> None:
    import websockets

    settings = make_settings(database=database_name, websocket_compression=compression)
    # a client offering permessage-deflate, as browsers and the npm ws client do
    async with live_server(settings, mongo_uri) as server, websockets.connect(
            server.ws_url, compression="deflate",
            subprotocols=["graphql-transport-ws"]) as socket:  # type: ignore[list-item]
        assert socket.response is not None
        offered = socket.response.headers.get("Sec-WebSocket-Extensions") or ""
        await socket.send(json.dumps({"type": "connection_init",
                                      "payload": bearer(settings, ALICE)}))
        assert json.loads(await socket.recv())["type"] == "connection_ack"
    assert ("permessage-deflate" in offered) is compression
