"""``jobgraph dispatcher``: the scheduler, the webhook outbox writer and the dispatcher
without the HTTP API, for deployments that run them apart (set
``JOBGRAPH_DISPATCHER=false`` on the API processes then). Any number may run: they
coordinate through the database exactly as API processes do."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal

from graph.config.settings import Settings
from graph.loops.automation import Automation
from graph.server.metrics import Metrics
from repository.database import Store, make_client, ping
from repository.errors import DatabaseUnavailableError

logger = logging.getLogger("jobgraph.dispatcher")

METRICS_REFRESH_SECONDS = 10.0


async def run_dispatcher(settings: Settings, *, metrics_port: int | None = None,
                         metrics_host: str = "127.0.0.1") -> None:
    """Run until SIGTERM or SIGINT, then stop the loops and return."""
    if settings.mongodb_uri is None:
        raise DatabaseUnavailableError("jobgraph dispatcher needs JOBGRAPH_MONGODB_URI (the "
                                       "database the API processes use)")
    client = make_client(settings.mongodb_uri, timeout_ms=settings.mongodb_timeout_ms)
    try:
        await ping(client, settings.mongodb_uri)
        store = Store(client, settings.database, settings.limits)
        await store.ensure_indexes()
        metrics = Metrics()
        if metrics_port is not None:
            from prometheus_client import start_http_server

            start_http_server(metrics_port, metrics_host, registry=metrics.registry)
        automation = Automation(store, settings, metrics)
        stopping = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stopping.set)
        automation.start()
        logger.info("dispatcher running: scheduler, webhook outbox and deliveries")
        try:
            while not stopping.is_set():
                if metrics_port is not None:
                    await metrics.refresh_outbox(store)
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(METRICS_REFRESH_SECONDS):
                        await stopping.wait()
        finally:
            await automation.stop()
            logger.info("dispatcher stopped")
    finally:
        await client.close()
