"""An app on a database of its own, which a test can stop after start-up."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

from graph.config.settings import Settings
from graph.server.app import create_app
from repository.database import EmbeddedServer

DEADLINE = 30.0


@dataclass
class Outage:
    app: Any
    client: httpx.AsyncClient
    server: EmbeddedServer

    def stop_database(self) -> None:
        """As abruptly as a crash, and without a graceful shutdown's wait."""
        process = self.server.process
        assert process is not None
        process.kill()
        process.wait(DEADLINE)

    async def end(self) -> None:
        """Bring the database back before the app shuts down: pymongo's monitor, cancelled
        while it retries a dead server, leaves its socket unclosed (a ResourceWarning)."""
        process = self.server.process
        if process is None or process.poll() is not None:
            self.server.start()
        async with asyncio.timeout(DEADLINE):
            while True:
                with contextlib.suppress(Exception):
                    await self.app.state.store.client.admin.command("ping")
                    return
                await asyncio.sleep(0.05)


@asynccontextmanager
async def app_on_own_database(settings: Settings, data_dir: Path) -> AsyncIterator[Outage]:
    """Started against a fresh embedded server (never the session's, whichever database
    the suite runs on), so stopping it harms no other test."""
    server = EmbeddedServer(data_dir=data_dir)
    uri = server.start()
    try:
        app = create_app(settings, mongodb_uri=uri)
        async with app.router.lifespan_context(app):
            transport = httpx.ASGITransport(app=app)
            async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
                outage = Outage(app, client, server)
                try:
                    yield outage
                finally:
                    await outage.end()
    finally:
        if server.process is not None:  # a throwaway: no graceful shutdown to wait for
            server.process.kill()
            server.process.wait(DEADLINE)
        server.stop()
