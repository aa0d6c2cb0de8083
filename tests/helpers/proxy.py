"""A TCP proxy in front of the database that can hold back the answer to one command.

It reads the MongoDB wire protocol's message frames (a little-endian length, request id
and reply-to id), so a test can let a command reach the database and be applied, and
keep its reply from the API: a deadline that passes after the update, or a caller that
leaves while the answer is on its way, made to happen on purpose.
"""

from __future__ import annotations

import asyncio
import contextlib
import struct
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from urllib.parse import urlsplit

import bson

OP_MSG = 2013


@dataclass
class Held:
    """One command whose reply (or, with ``request``, the command itself) is held:
    ``replied`` is set once the database answered (so the command was applied), ``arrived``
    once the command reached the proxy; ``release`` hands it on."""

    command: str
    collection: str
    request: bool = False
    arrived: asyncio.Event = field(default_factory=asyncio.Event)
    replied: asyncio.Event = field(default_factory=asyncio.Event)
    released: asyncio.Event = field(default_factory=asyncio.Event)
    request_id: int | None = None

    def release(self) -> None:
        self.released.set()


def _command(body: bytes) -> tuple[str, str] | None:
    """(command name, collection) of an OP_MSG body, from its first (kind 0) section."""
    if len(body) < 5 or body[4] != 0:
        return None
    (size,) = struct.unpack_from("<i", body, 5)
    document = bson.decode(body[5:5 + size])
    name = next(iter(document), None)
    if name is None:
        return None
    target = document[name]
    return name, target if isinstance(target, str) else ""


async def _frames(reader: asyncio.StreamReader) -> AsyncIterator[tuple[bytes, int, int, int]]:
    """(whole message, request id, reply-to id, op code) per message, until EOF."""
    while True:
        try:
            header = await reader.readexactly(16)
        except (asyncio.IncompleteReadError, ConnectionError):
            return
        length, request_id, response_to, op_code = struct.unpack("<iiii", header)
        try:
            rest = await reader.readexactly(length - 16)
        except (asyncio.IncompleteReadError, ConnectionError):
            return
        yield header + rest, request_id, response_to, op_code


class WireProxy:
    def __init__(self, target_uri: str) -> None:
        location = urlsplit(target_uri).netloc.rsplit("@", 1)[-1].split(",")[0]
        host, _, port = location.rpartition(":")
        self.target = (host or "127.0.0.1", int(port or 27017))
        self.armed: list[Held] = []
        self.server: asyncio.Server | None = None
        self.port = 0
        self.tasks: set[asyncio.Task[None]] = set()
        self.connections: set[asyncio.Task[None]] = set()

    @property
    def uri(self) -> str:
        return f"mongodb://127.0.0.1:{self.port}/?directConnection=true"

    def hold(self, command: str, collection: str = "jobs", *, request: bool = False) -> Held:
        """Hold the reply to the next ``command`` on ``collection`` (with ``request``, hold
        the command itself: the database applies it only once released)."""
        held = Held(command, collection, request)
        self.armed.append(held)
        return held

    async def start(self) -> None:
        self.server = await asyncio.start_server(self._connection, "127.0.0.1", 0)
        self.port = self.server.sockets[0].getsockname()[1]

    async def close(self) -> None:
        if self.server is not None:
            self.server.close()
        for held in self.armed:
            held.release()
        for task in list(self.tasks):
            task.cancel()
        await asyncio.gather(*self.tasks, return_exceptions=True)
        if self.connections:  # each closes its sockets once its pumps are gone
            await asyncio.wait(self.connections, timeout=5)

    async def _connection(self, client_reader: asyncio.StreamReader,
                          client_writer: asyncio.StreamWriter) -> None:
        this = asyncio.current_task()
        assert this is not None
        self.connections.add(this)
        this.add_done_callback(self.connections.discard)
        server_reader, server_writer = await asyncio.open_connection(*self.target)
        waiting: dict[int, Held] = {}
        pumps = [asyncio.create_task(self._requests(client_reader, server_writer, waiting)),
                 asyncio.create_task(self._replies(server_reader, client_writer, waiting))]
        self.tasks.update(pumps)
        try:
            done, _ = await asyncio.wait(pumps, return_when=asyncio.FIRST_COMPLETED)
            if pumps[0] in done and waiting:
                # the client left: the database still answers what it was sent (a held
                # command released late), which is what the test waits to see
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(10):
                        while waiting and not pumps[1].done():
                            await asyncio.wait({pumps[1]}, timeout=0.01)
        finally:
            for pump in pumps:
                pump.cancel()
                self.tasks.discard(pump)
            for writer in (client_writer, server_writer):
                writer.close()
                with contextlib.suppress(Exception):
                    await asyncio.wait_for(writer.wait_closed(), 1)

    async def _requests(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter,
                        waiting: dict[int, Held]) -> None:
        async for message, request_id, _, op_code in _frames(reader):
            if op_code == OP_MSG and self.armed:
                command = _command(message[16:])
                for held in self.armed:
                    if held.request_id is None and command == (held.command, held.collection):
                        held.request_id = request_id
                        waiting[request_id] = held
                        held.arrived.set()
                        if held.request:
                            await held.released.wait()
                        break
            writer.write(message)
            await writer.drain()

    async def _replies(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter,
                       waiting: dict[int, Held]) -> None:
        async for message, _, response_to, _ in _frames(reader):
            held = waiting.pop(response_to, None)
            if held is not None:
                held.replied.set()
                if not held.request:
                    await held.released.wait()
            writer.write(message)
            await writer.drain()


@asynccontextmanager
async def wire_proxy(target_uri: str) -> AsyncIterator[WireProxy]:
    proxy = WireProxy(target_uri)
    await proxy.start()
    try:
        yield proxy
    finally:
        await proxy.close()
