"""A write whose cluster time the server handed out before a subscriber came, but which
it made visible only after the subscriber read its state (an "oplog hole"), must still be
sent: it is not in the state read, and ``Subscriber.since`` covers its cluster time, so
only a change read after the subscriber was let in may be sent whatever its time.

MongoDB, and SecantusDB alike, advance the cluster time a reply gossips when a write
reserves its oplog time, before that write commits; so ``ChangeFeed.seen()`` can be ahead
of what any read sees. The server here runs in this process so that one write's commit
can be held between the two (``_commit_batch_transaction``), which no client can do.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from secantus import server as server_module
from secantus import storage

from graph.realtime.hub import Hub
from repository.access import Principal
from repository.database import Store, make_client


class HeldCommit:
    """Holds the next write's commit (after its oplog time was minted) until released."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.armed = False
        self.reached = threading.Event()
        self.release = threading.Event()
        commit = storage._commit_batch_transaction

        def held(session: Any, sync: bool) -> None:
            if self.armed:
                self.armed = False
                self.reached.set()
                self.release.wait(60)
            commit(session, sync)

        monkeypatch.setattr(storage, "_commit_batch_transaction", held)


@pytest.fixture
async def in_process_uri(tmp_path: Path) -> AsyncIterator[str]:
    server = server_module.SecantusDBServer(host="127.0.0.1", port=0,
                                            storage_path=str(tmp_path / "data"),
                                            replica_set_name="secantus")
    server.start()
    try:
        yield f"mongodb://127.0.0.1:{server.port}/?directConnection=true"
    finally:
        server.stop()


async def test_a_write_reserved_before_a_subscriber_and_visible_after_its_read_is_sent(
        in_process_uri: str, monkeypatch: pytest.MonkeyPatch) -> None:
    held = HeldCommit(monkeypatch)
    writer = Store(make_client(in_process_uri), "oplog_hole")  # another process
    hub_client = make_client(in_process_uri)
    db = hub_client["oplog_hole"]
    hub = Hub(db)
    write = None
    try:
        await writer.ensure_indexes()
        job = await writer.jobs.create(Principal("alice"), job_type="hole")
        await hub.start()
        held.armed = True
        write = asyncio.create_task(writer.db["jobs"].update_one(
            {"_id": job.job_id}, {"$inc": {"version": 1}}))
        assert await asyncio.to_thread(held.reached.wait, 60), "the write never committed"
        await db.command("ping")  # any reply to this process: it gossips the reserved time
        async with hub.subscribe(keys=[("jobs", job.job_id)]) as subscriber:
            state = await db["jobs"].find_one({"_id": job.job_id})  # its current state
            assert state is not None and state["version"] == 0  # the write is not in it
            held.release.set()
            await write  # acknowledged after the subscriber read its state
            change = await asyncio.wait_for(subscriber.next(), 10)
        assert change.document is not None and change.document["version"] == 1
    finally:
        held.release.set()
        if write is not None and not write.done():
            await asyncio.wait({write}, timeout=10)
        await hub.stop()
        await hub_client.close()
        await writer.client.close()
