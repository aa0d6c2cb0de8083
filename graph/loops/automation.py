"""The scheduler, the outbox writer and the webhook dispatcher, started and stopped
together: by the app's lifespan in every API process (unless ``JOBGRAPH_DISPATCHER`` is
false), or alone by ``jobgraph dispatcher``."""

from __future__ import annotations

from typing import Any

from graph.config.settings import Settings
from repository.database import Store

from .dispatcher import Dispatcher
from .outbox import OutboxWriter
from .scheduler import Scheduler


class Automation:
    def __init__(self, store: Store, settings: Settings, metrics: Any = None) -> None:
        self.scheduler = Scheduler(store.schedules,
                                   interval=settings.scheduler_interval_seconds,
                                   grace=settings.schedule_misfire_grace_seconds,
                                   metrics=metrics)
        self.dispatcher = Dispatcher(
            store, timeout=settings.webhook_timeout_seconds,
            lease_seconds=settings.webhook_lease_seconds,
            max_attempts=settings.webhook_max_attempts,
            retry_seconds=settings.webhook_retry_seconds,
            allow_private=settings.webhook_allow_private,
            concurrency=settings.webhook_concurrency,
            poll_seconds=settings.webhook_poll_seconds, metrics=metrics)
        self.outbox = OutboxWriter(store, lease_seconds=settings.webhook_lease_seconds,
                                   poll_seconds=settings.webhook_poll_seconds, metrics=metrics,
                                   on_written=self.dispatcher.wake)

    def start(self) -> None:
        self.scheduler.start()
        self.outbox.start()
        self.dispatcher.start()

    async def stop(self) -> None:
        await self.scheduler.stop()
        await self.outbox.stop()
        await self.dispatcher.stop()
