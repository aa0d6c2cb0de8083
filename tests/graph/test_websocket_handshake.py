"""The opening handshake taken as uvicorn's HTTP parser parsed it (``HttpProtocol`` and
``WebSocketProtocol.upgrade``) answers every request exactly as uvicorn's own way did,
which writes the request out for ``websockets`` to parse and check again: the same bytes
back (the date aside), the same ASGI scope to the application, the same frames after.

Each request goes, over a raw socket, to two servers that differ only in their HTTP
protocol class; a spy says which requests took the short way, so the comparison cannot
pass by sending everything the long way."""

from __future__ import annotations

import asyncio
import base64
import logging
import re
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import Any

import pytest
import uvicorn
from uvicorn.logging import TRACE_LOG_LEVEL
from websockets.frames import Frame, Opcode
from websockets.server import ServerProtocol

from graph.server.websocket_protocol import FRAMES, UVICORN_PROTOCOLS, WebSocketProtocol
from repository.database import free_port
from tests.helpers.live import DEADLINE, serving

KEY = base64.b64encode(b"0123456789abcdef")
CLOSE_1000 = Frame(Opcode.CLOSE, b"\x03\xe8").serialize(mask=False, extensions=[])
PLAIN = [(b"Host", b"127.0.0.1"), (b"Upgrade", b"websocket"), (b"Connection", b"Upgrade"),
         (b"Sec-WebSocket-Key", KEY), (b"Sec-WebSocket-Version", b"13")]


def request(*, method: bytes = b"GET", target: bytes = b"/graphql",
            version: bytes = b"HTTP/1.1", drop: tuple[bytes, ...] = (),
            replace: dict[bytes, bytes] | None = None,
            extra: list[tuple[bytes, bytes]] | None = None) -> bytes:
    replace = replace or {}
    headers = [(name, replace.get(name, value)) for name, value in PLAIN if name not in drop]
    lines = [method + b" " + target + b" " + version]
    lines += [name + b": " + value for name, value in [*headers, *(extra or [])]]
    return b"\r\n".join(lines) + b"\r\n\r\n"


ACCEPTED = {
    "plain": request(),
    "subprotocols offered": request(extra=[
        (b"Sec-WebSocket-Protocol", b"graphql-transport-ws, graphql-ws"),
        (b"Sec-WebSocket-Protocol", b"other")]),
    "browser-like": request(replace={b"Connection": b"keep-alive, Upgrade",
                                     b"Upgrade": b"WebSocket"}, extra=[
        (b"Origin", b"http://localhost:3000"), (b"User-Agent", b"Mozilla/5.0 (X11)"),
        (b"Sec-WebSocket-Extensions", b"permessage-deflate; client_max_window_bits"),
        (b"Sec-WebSocket-Protocol", b"graphql-transport-ws"),
        (b"Cookie", b"a=b; c=d"), (b"Pragma", b"no-cache")]),
    "query and escapes": request(target=b"/graphql%20x/?token=a%2Fb&x=1"),
    "not ASCII in a value": request(extra=[(b"X-Name", "José".encode("latin-1"))]),
    "HTTP/1.0": request(version=b"HTTP/1.0"),
    "a tab inside a value": request(extra=[(b"X-Tab", b"a\tb")]),
}

ACCEPTED_THE_LONG_WAY = {
    "content-length 0": request(extra=[(b"Content-Length", b"0")]),
    "spaces after a value": request(extra=[(b"X-Padded", b"a b  ")]),
    "an empty subprotocol": request(extra=[(b"Sec-WebSocket-Protocol", b"a,,b")]),
}

REFUSED = {
    "no key": request(drop=(b"Sec-WebSocket-Key",)),
    "key not base64": request(replace={b"Sec-WebSocket-Key": b"not base64!"}),
    "key of 15 bytes": request(replace={b"Sec-WebSocket-Key": base64.b64encode(b"x" * 15)}),
    "two keys": request(extra=[(b"Sec-WebSocket-Key", KEY)]),
    "version 12": request(replace={b"Sec-WebSocket-Version": b"12"}),
    "two versions": request(extra=[(b"Sec-WebSocket-Version", b"13")]),
    "no version": request(drop=(b"Sec-WebSocket-Version",)),
    "POST": request(method=b"POST"),
    "Connection without upgrade": request(replace={b"Connection": b"keep-alive"}),
    "two Upgrade headers": request(extra=[(b"Upgrade", b"websocket")]),
    "two origins": request(extra=[(b"Origin", b"http://a"), (b"Origin", b"http://b")]),
    "bad subprotocol list": request(extra=[(b"Sec-WebSocket-Protocol", b"a b, c")]),
    "a control character": request(extra=[(b"X-Bell", b"a\x07b")]),
}

UNANSWERED_BY_UVICORN = {
    "a body": request(extra=[(b"Content-Length", b"5")]),
    "chunked": request(extra=[(b"Transfer-Encoding", b"chunked")]),
    "129 headers": request(extra=[(b"X-%d" % n, b"v") for n in range(124)]),
    "a header line of 8,200 bytes": request(extra=[(b"X-Long", b"v" * 8200)]),
    "a request line of 8,200 bytes": request(target=b"/" + b"a" * 8200),
}
"""websockets refuses these as it parses them, and uvicorn never wrote its answer nor
closed: the client waited for ever."""


class Recorder:
    """An ASGI app that records each WebSocket's scope and does what the request's
    path says: accept (and echo one message), refuse, or accept with a bad header."""

    def __init__(self) -> None:
        self.scopes: list[dict[str, Any]] = []

    async def __call__(self, scope: dict[str, Any], receive: Callable[[], Awaitable[Any]],
                       send: Callable[[Any], Awaitable[None]]) -> None:
        if scope["type"] == "lifespan":
            while (await receive())["type"] != "lifespan.shutdown":
                await send({"type": "lifespan.startup.complete"})
            await send({"type": "lifespan.shutdown.complete"})
            return
        self.scopes.append(scope)
        await receive()  # websocket.connect
        if scope["path"] == "/refuse":
            await send({"type": "websocket.close", "code": 1000})
            return
        if scope["path"] == "/deny":
            await send({"type": "websocket.http.response.start", "status": 401,
                        "headers": [(b"content-type", b"text/plain")]})
            await send({"type": "websocket.http.response.body", "body": b"no"})
            return
        headers = [(b"x-request-id", b"r-1")]
        if scope["path"] == "/bad-header":
            headers.append((b"x-bad", b"a\r\nInjected: yes"))
        offered = scope["subprotocols"]
        await send({"type": "websocket.accept", "headers": headers,
                    "subprotocol": offered[0] if offered else None})
        message = await receive()
        if message["type"] == "websocket.receive":
            await send({"type": "websocket.send", "text": "echo " + message["text"]})
            await send({"type": "websocket.close", "code": 1000})


@asynccontextmanager
async def server(http: Any, compression: bool = False, level: str = "info",
                 ) -> AsyncIterator[tuple[int, Recorder]]:
    app = Recorder()
    port = free_port()
    options = {**UVICORN_PROTOCOLS, "http": http}
    config = uvicorn.Config(app, host="127.0.0.1", port=port, log_level=level, log_config=None,
                            lifespan="on", ws_ping_interval=None,
                            ws_per_message_deflate=compression, **options)
    async with serving(config):
        yield port, app


@pytest.fixture
def short_way(monkeypatch: pytest.MonkeyPatch) -> list[bool]:
    """One entry per upgrade: whether it took the parsed request as it was."""
    taken: list[bool] = []
    upgrade = WebSocketProtocol.upgrade

    def spy(self: WebSocketProtocol, *args: Any) -> None:
        upgrade(self, *args)
        taken.append(self.accept_key is not None)

    monkeypatch.setattr(WebSocketProtocol, "upgrade", spy)
    return taken


async def exchange(port: int, raw: bytes) -> bytes:
    """Send ``raw``; on a 101, one masked text frame after it. Everything read until the
    server closes, with the date header blanked."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        async with asyncio.timeout(DEADLINE):
            writer.write(raw)
            head = await reader.readuntil(b"\r\n\r\n")
            if head.startswith(b"HTTP/1.1 101"):
                writer.write(Frame(Opcode.TEXT, b"hello").serialize(mask=True, extensions=[]))
                rest = await reader.readuntil(CLOSE_1000)  # it waits for ours after it
            else:
                rest = await reader.read()
    finally:
        writer.close()
    return re.sub(rb"(?im)^date: [^\r]*", b"date: -", head + rest)


def comparable(scope: dict[str, Any], port: int) -> dict[str, Any]:
    """The scope but for the ports (the server's checked here) and which connection
    offers ``write_text``."""
    extensions = {name: type(value).__name__ if name == FRAMES else value
                  for name, value in scope.get("extensions", {}).items()}
    assert scope["server"] == ("127.0.0.1", port)
    client_host, client_port = scope["client"]
    assert client_host == "127.0.0.1" and client_port > 0
    return {**scope, "client": client_host, "server": None, "extensions": extensions}


def log_lines(records: list[logging.LogRecord]) -> list[tuple[str, int, str]]:
    """uvicorn's and websockets' lines (both log to ``uvicorn.*``), ports and dates blanked."""
    lines = []
    for record in records:
        if record.name.startswith("uvicorn"):
            message = re.sub(r"127\.0\.0\.1(:|', )\d+", "127.0.0.1:-", record.getMessage())
            message = re.sub(r" at 0x[0-9a-f]+", "", message)
            message = re.sub(r"\w{3}, \d\d \w{3} \d{4} [\d:]{8} GMT", "-", message)
            lines.append((record.name, record.levelno, message))
    return lines


Way = tuple[bytes, list[Any], list[tuple[str, int, str]]]


@pytest.fixture
def both_ways(caplog: pytest.LogCaptureFixture
              ) -> Callable[..., Awaitable[tuple[Way, Way]]]:
    """Sends a request to uvicorn's way, then to ours: for each, what was answered, the
    scopes the application saw and the log lines."""
    caplog.set_level(TRACE_LOG_LEVEL)

    async def run(raw: bytes, compression: bool = False, level: str = "info"
                  ) -> tuple[Way, Way]:
        answers = []
        for http in ("httptools", UVICORN_PROTOCOLS["http"]):
            caplog.clear()
            async with server(http, compression, level) as (port, app):
                answer = await exchange(port, raw)
            answers.append((answer, [comparable(s, port) for s in app.scopes],
                            log_lines(caplog.records)))
        return answers[0], answers[1]

    return run


@pytest.mark.parametrize(("case", "short"), [
    *((case, True) for case in sorted(ACCEPTED)),
    *((case, False) for case in sorted(ACCEPTED_THE_LONG_WAY))])
async def test_a_valid_handshake_is_answered_as_before(
        case: str, short: bool, short_way: list[bool], both_ways: Any) -> None:
    # the plain ones from the parsed request, the unusual ones by websockets
    uvicorns, ours = await both_ways({**ACCEPTED, **ACCEPTED_THE_LONG_WAY}[case])
    assert uvicorns[0].startswith(b"HTTP/1.1 101 Switching Protocols\r\n")
    assert b"echo hello" in uvicorns[0] and len(uvicorns[1]) == 1
    assert ours == uvicorns
    assert short_way == [short]


@pytest.mark.parametrize("case", sorted(REFUSED))
async def test_any_other_handshake_is_refused_by_websockets_as_before(
        case: str, short_way: list[bool], both_ways: Any) -> None:
    uvicorns, ours = await both_ways(REFUSED[case])
    assert not uvicorns[0].startswith(b"HTTP/1.1 101"), uvicorns
    assert ours == uvicorns
    assert short_way in ([], [False])  # a request uvicorn never upgrades calls nothing


@pytest.mark.parametrize("path", [b"/refuse", b"/deny", b"/bad-header"])
async def test_an_application_that_refuses_or_answers_badly_is_answered_as_before(
        path: bytes, short_way: list[bool], both_ways: Any) -> None:
    uvicorns, ours = await both_ways(request(target=path))
    assert not uvicorns[0].startswith(b"HTTP/1.1 101"), uvicorns
    assert ours == uvicorns  # the log lines too: "connection rejected (403 Forbidden)"
    assert short_way == [True]


async def test_extensions_offered_to_a_server_that_negotiates_them_go_the_long_way(
        short_way: list[bool], both_ways: Any) -> None:
    offer = request(extra=[(b"Sec-WebSocket-Extensions", b"permessage-deflate")])
    uvicorns, ours = await both_ways(offer, compression=True)
    assert b"Sec-WebSocket-Extensions: permessage-deflate" in uvicorns[0]
    assert ours == uvicorns
    assert short_way == [False]


@pytest.mark.parametrize("level", ["debug", "trace"])
@pytest.mark.parametrize("target", [b"/graphql", b"/refuse"])
async def test_where_debug_lines_are_logged_every_handshake_goes_the_long_way(
        level: str, target: bytes, short_way: list[bool], both_ways: Any) -> None:
    # websockets logs the request and its answer, line by line, at DEBUG
    uvicorns, ours = await both_ways(request(target=target), level=level)
    assert ours == uvicorns
    assert any(message.startswith("< GET ") for _, _, message in uvicorns[2])
    assert short_way == [False]


@pytest.mark.parametrize("level", ["info", "debug", None])
@pytest.mark.parametrize("case", sorted(UNANSWERED_BY_UVICORN))
async def test_a_handshake_websockets_refuses_as_it_parses_is_answered_and_closed(
        case: str, level: str | None, short_way: list[bool],
        monkeypatch: pytest.MonkeyPatch) -> None:
    # None: uvicorn's logger left without a level of its own (NOTSET, below TRACE)
    logger = logging.getLogger("uvicorn.error")
    monkeypatch.setattr(logger, "level", logger.level)  # (restored; setLevel clears caches)
    logger.setLevel(logging.NOTSET)
    raw = UNANSWERED_BY_UVICORN[case]
    parser = ServerProtocol()
    parser.receive_data(raw)
    refusal = b"".join(parser.data_to_send())  # websockets' answer, if any, then EOF
    async with server(UVICORN_PROTOCOLS["http"], level=level) as (port, app):
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        try:
            async with asyncio.timeout(DEADLINE):
                writer.write(raw)
                answer = await reader.read()  # until the server closes
        finally:
            writer.close()
    dated = rb"(?im)^date: [^\r]*"
    assert re.sub(dated, b"-", answer) == re.sub(dated, b"-", refusal)
    assert app.scopes == [] and short_way == [False]
    if case != "a body" and case != "chunked":
        assert answer.startswith((b"HTTP/1.1 431", b"HTTP/1.1 414")), answer
