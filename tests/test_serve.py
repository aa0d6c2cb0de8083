"""``jobgraph serve`` itself: what it prints per request, and the limits it gives uvicorn."""

from __future__ import annotations

import asyncio
import base64
import json
import os
import signal
import struct
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
import websockets

from repository.database import EmbeddedServer, free_port, make_client
from tests.helpers.live import DEADLINE
from tests.helpers.serving import Served, jobgraph_serve, serve_environment, until_ready
from tests.helpers.waiting import eventually


async def test_serve_writes_one_request_line_and_no_uvicorn_access_lines(
    mongo_uri: str, database_name: str, store: Any, tmp_path: Path
) -> None:
    output = tmp_path / "serve.log"
    async with jobgraph_serve(mongo_uri, database_name, output) as served, httpx.AsyncClient(
            base_url=served.url, timeout=DEADLINE) as client:
        await client.get("/healthz")
        await client.post("/graphql", json={"query": "query Me { viewer { userId } }"},
                          headers={"X-Request-Id": "one-request"})
        await client.put("/graphql", json={"query": "query Me { viewer { userId } }"})

        def logged() -> list[dict[str, Any]]:
            lines = [json.loads(line) for line in served.lines() if line.startswith("{")]
            return lines if any(line.get("method") == "PUT" for line in lines) else []

        lines = await eventually(logged)
    # README (Observability): jobgraph.request replaces uvicorn's access log
    assert [line["message"] for line in lines if line["logger"] == "uvicorn.access"] == []
    requests = [(line["method"], line["path"], line["status"]) for line in lines
                if line["logger"] == "jobgraph.request"]
    assert requests == [("POST", "/graphql", 200), ("PUT", "/graphql", 405)]
    assert [line["request_id"] for line in lines if line.get("method") == "POST"] == [
        "one-request"]


def handshake(port: int, key: str) -> bytes:
    return (f"GET /graphql HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nUpgrade: websocket\r\n"
            f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n"
            "Sec-WebSocket-Protocol: graphql-transport-ws\r\n\r\n").encode()


def text_frame_header(length: int, mask: bytes) -> bytes:
    """A client's text frame (FIN, masked) announcing ``length`` bytes of payload."""
    return bytes([0x81, 0x80 | 127]) + struct.pack("!Q", length) + mask


async def close_code(reader: asyncio.StreamReader) -> int:
    """The code of the close frame the server sends (server frames are not masked)."""
    while True:
        first, second = await reader.readexactly(2)
        length = second & 0x7F
        if length == 126:
            length = struct.unpack("!H", await reader.readexactly(2))[0]
        elif length == 127:
            length = struct.unpack("!Q", await reader.readexactly(8))[0]
        payload = await reader.readexactly(length)
        if first & 0x0F == 0x8:
            return struct.unpack("!H", payload[:2])[0]


async def test_serve_closes_a_socket_whose_message_exceeds_the_body_limit_with_1009(
    mongo_uri: str, database_name: str, store: Any, tmp_path: Path
) -> None:
    limit = 65536
    async with jobgraph_serve(mongo_uri, database_name, tmp_path / "serve.log",
                              MAX_BODY_BYTES=str(limit)) as served:
        # a message within the limit is read as usual
        async with websockets.connect(served.ws_url, subprotocols=["graphql-transport-ws"],
                                      open_timeout=DEADLINE, max_size=None) as socket:
            await socket.send(json.dumps({"type": "connection_init",
                                          "payload": {"pad": "x" * (limit - 100)}}))
            ack = json.loads(await asyncio.wait_for(socket.recv(), DEADLINE))
            assert ack["type"] == "connection_ack"

        # an 8 MB frame is refused from its header: 1 KB of it sent, and the socket is
        # closed with 1009 (message too big) while the other 8 MB were never sent
        reader, writer = await asyncio.open_connection("127.0.0.1", served.port)
        try:
            key = base64.b64encode(os.urandom(16)).decode()
            writer.write(handshake(served.port, key))
            status = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), DEADLINE)
            assert status.startswith(b"HTTP/1.1 101"), status
            writer.write(text_frame_header(8 * 1024 * 1024, os.urandom(4)) + b"\0" * 1024)
            await writer.drain()
            assert await asyncio.wait_for(close_code(reader), DEADLINE) == 1009
        finally:
            writer.close()

        # and a client library sending the whole 8 MB message hears the same
        async with websockets.connect(served.ws_url, subprotocols=["graphql-transport-ws"],
                                      open_timeout=DEADLINE, max_size=None) as socket:
            try:
                await socket.send("x" * (8 * 1024 * 1024))
                await asyncio.wait_for(socket.recv(), DEADLINE)
            except websockets.ConnectionClosed:
                pass
        assert socket.close_code == 1009


async def embedded_serve(tmp_path: Path) -> tuple[subprocess.Popen[bytes], Path, Path]:
    """``jobgraph serve`` on its embedded database, ready, in its own process group (as a
    terminal's foreground job): the process, its data directory and its output."""
    port, data = free_port(), tmp_path / "data"
    output = tmp_path / "serve.log"
    with output.open("w") as sink:
        process = subprocess.Popen(  # noqa: ASYNC220
            [sys.executable, "-m", "graph.commands.cli", "serve", "--host", "127.0.0.1",
             "--port", str(port)], env=serve_environment(JOBGRAPH_DATA_DIR=str(data)),
            stdout=sink, stderr=subprocess.STDOUT, start_new_session=True)
    await until_ready(Served(port, output), process.poll)
    return process, data, output


@pytest.mark.slow
async def test_ctrl_c_shuts_the_app_down_before_its_embedded_database(tmp_path: Path) -> None:
    """A terminal's Ctrl+C signals the whole process group: the embedded database died at
    once, the app's shutdown found no database (warnings, ~11 s), gave no lease back, and
    the next start waited out the history writer's lease (~16 s without history)."""
    process, data, output = await embedded_serve(tmp_path)
    try:
        os.killpg(process.pid, signal.SIGINT)
        assert await asyncio.to_thread(process.wait, 60) == 0
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
    log = output.read_text()
    assert "interrupted" not in log, log
    # the history writer gave its lease back: the next start writes history at once
    database = EmbeddedServer(data_dir=data)
    database.start()
    try:
        client = make_client(database.uri)
        feed = await client["jobgraph"]["history_feed"].find_one({"_id": "feed"})
        await client.close()
    finally:
        database.stop()
    assert feed is not None and feed["lease_until"] <= datetime.now(UTC), feed


@pytest.mark.slow
async def test_the_embedded_database_dies_with_a_killed_serve(tmp_path: Path) -> None:
    """In a session of its own (out of reach of Ctrl+C), it still goes with its parent."""
    process, data, _ = await embedded_serve(tmp_path)
    process.kill()
    await asyncio.to_thread(process.wait, 30)

    async def data_directory_free() -> bool:  # the server holds a lock on it while it runs
        database = EmbeddedServer(data_dir=data, startup_timeout=10)
        try:
            database.start()
        except Exception:
            return False
        database.stop()
        return True
    assert await eventually(data_directory_free, deadline=60)


@pytest.mark.slow
async def test_a_serve_whose_database_died_stops_within_dockers_grace(tmp_path: Path) -> None:
    """The loops' last writes (positions, leases) and the client's endSessions each waited
    out the database timeout when it was gone: 11-12 s from SIGTERM to exit, past the 10 s
    Docker gives before SIGKILL. They share one short budget now (what is not written is
    what a crash leaves: the lease lapses, the position is replayed)."""
    database = EmbeddedServer(data_dir=tmp_path / "data")
    uri = database.start()
    port, output = free_port(), tmp_path / "serve.log"
    try:
        with output.open("w") as sink:
            process = subprocess.Popen(  # noqa: ASYNC220
                [sys.executable, "-m", "graph.commands.cli", "serve", "--host", "127.0.0.1",
                 "--port", str(port)],
                env=serve_environment(JOBGRAPH_MONGODB_URI=uri, JOBGRAPH_DATABASE="gone"),
                stdout=sink, stderr=subprocess.STDOUT)
        try:
            await until_ready(Served(port, output), process.poll)
            assert database.process is not None
            database.process.kill()  # as a crash: no goodbye
            database.process.wait(DEADLINE)
            started = asyncio.get_running_loop().time()
            process.terminate()
            assert await asyncio.to_thread(process.wait, 60) == 0
            took = asyncio.get_running_loop().time() - started
        finally:
            if process.poll() is None:
                process.kill()
    finally:
        database.stop()
    assert took < 9.0, (took, output.read_text()[-2000:])
