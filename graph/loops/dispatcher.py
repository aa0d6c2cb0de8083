"""The webhook dispatcher: every API process runs one, sending what the outbox holds.

Each sender claims one due delivery at a time (a lease; see ``repository.deliveries``),
checks at that moment that the webhook still exists and that its owner may still read
the object (else the delivery is SKIPPED and nothing is sent), checks the target's
addresses again, signs the body (Standard Webhooks) and POSTs it. A 2xx answer is
DELIVERED; anything else, a timeout or a refused connection is retried with exponential
backoff until ``max_attempts``, then DEAD.

httpx is the client: asynchronous (no thread per request), with a timeout on each phase,
no redirects followed, no proxy settings read from the environment, and it lets the
request go to an address that was checked while ``Host`` and TLS keep the URL's name.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import random
import ssl
import time
from datetime import timedelta
from typing import Any
from urllib.parse import urlsplit

import httpx
import orjson

from graph.support import tasks
from repository.access import Principal, read_filter
from repository.database import Store
from repository.deliveries import Delivery
from repository.errors import ValidationError
from repository.models import utcnow
from repository.webhook_events import WATCHED

from .signatures import signed_headers
from .targets import allowed_addresses

logger = logging.getLogger("jobgraph.webhooks")

MAX_BACKOFF_SECONDS = 6 * 3600
USER_AGENT = "jobgraph-webhooks/1"


@functools.cache
def tls() -> ssl.SSLContext:
    """What httpx builds for each client that verifies (the CA bundle parsed, ~30 ms of
    CPU), built once per process: every app start made one."""
    return httpx.create_ssl_context(trust_env=False)


class Dispatcher:
    def __init__(self, store: Store, *, timeout: float, lease_seconds: float,
                 max_attempts: int, retry_seconds: float, allow_private: bool,
                 concurrency: int = 4, poll_seconds: float = 1.0, metrics: Any = None) -> None:
        self.store = store
        self.timeout = timeout
        self.lease_seconds = lease_seconds
        self.max_attempts = max_attempts
        self.retry_seconds = retry_seconds
        self.allow_private = allow_private
        self.concurrency = concurrency
        self.poll_seconds = poll_seconds
        self.metrics = metrics
        """Optional ``graph.server.metrics.Metrics``: attempts by outcome."""
        self.client = httpx.AsyncClient(timeout=timeout, follow_redirects=False, verify=tls(),
                                        trust_env=False, headers={"User-Agent": USER_AGENT})
        self._wakeup = asyncio.Event()
        self._polling = False
        """An idle sender looks again every ``poll_seconds``; the others wait to be woken."""
        self._tasks: list[asyncio.Task[None]] = []

    def start(self) -> None:
        self._tasks = [asyncio.create_task(self._run(), name=f"jobgraph-dispatcher-{index}")
                       for index in range(self.concurrency)]

    async def stop(self) -> None:
        running, self._tasks = self._tasks, []
        await tasks.stop(running)
        await self.client.aclose()

    def wake(self) -> None:
        """New deliveries were written: look now rather than at the next poll."""
        self._wakeup.set()

    async def send_due(self) -> int:
        """Send deliveries until none is due; how many were attempted (for tests)."""
        sent = 0
        while (delivery := await self.store.deliveries.claim(utcnow(), self.lease_seconds)):
            await self.deliver(delivery)
            sent += 1
        return sent

    async def _run(self) -> None:
        while True:
            try:
                delivery = await self.store.deliveries.claim(utcnow(), self.lease_seconds)
                if delivery is not None:
                    self._wakeup.set()  # more may be due: the idle senders look too
                    await self.deliver(delivery)
                    continue
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                tasks.reraise_if_cancelled(exc)
                logger.warning("webhook dispatcher: %s", str(exc).splitlines()[0] if str(exc)
                               else type(exc).__name__)
            self._wakeup.clear()
            await self._idle()

    async def _idle(self) -> None:
        """Wait to be woken; one idle sender at a time also looks every ``poll_seconds``
        (for retries coming due, and deliveries another process's outbox wrote): each
        sender polling on its own cost an idle process a query per sender a second."""
        if self._polling:
            await self._wakeup.wait()
            return
        self._polling = True
        try:
            # asyncio.timeout, not wait_for: on Python 3.11, wait_for swallows a cancel
            # that arrives as the event is set, and stop() would wait for this loop forever.
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(self.poll_seconds):
                    await self._wakeup.wait()
        finally:
            self._polling = False

    async def deliver(self, delivery: Delivery) -> str:
        """One attempt at a claimed delivery; its outcome (delivered, failed, dead, skipped)."""
        started = time.monotonic()
        webhook = await self.store.webhooks.find(delivery.webhook_id)
        if webhook is None:
            outcome = "skipped"
            await self.store.deliveries.skipped(delivery, "the webhook was deleted")
        elif not await self._readable(delivery):
            outcome = "skipped"
            await self.store.deliveries.skipped(
                delivery, "the object no longer exists or its owner may no longer read it")
        else:
            code, error = await self._post(webhook.url, webhook.secret, delivery)
            if code is not None and 200 <= code < 300:
                outcome = "delivered"
                recorded = await self.store.deliveries.delivered(delivery, code)
            else:
                retry_at = self._retry_at(delivery.attempts)
                outcome = "failed" if retry_at is not None else "dead"
                recorded = await self.store.deliveries.failed(delivery, code, error or "",
                                                              retry_at)
                log = logger.warning if retry_at is None else logger.info
                log("webhook %s delivery %s attempt %d: %s", delivery.webhook_id,
                    delivery.delivery_id, delivery.attempts, error)
            if not recorded:
                logger.info("webhook delivery %s: its claim ran out before the outcome was "
                            "recorded; it may be sent again", delivery.delivery_id)
        if self.metrics is not None:
            self.metrics.webhook_attempt(outcome, time.monotonic() - started)
        return outcome

    async def _readable(self, delivery: Delivery) -> bool:
        """The owner's read access now, not when the event happened."""
        if delivery.collection not in WATCHED:
            return False
        query = {"_id": delivery.object_id, **read_filter(Principal(delivery.owner))}
        found = await self.store.db[delivery.collection].find_one(query, projection={"_id": 1})
        return found is not None

    def _retry_at(self, attempts: int) -> Any:
        if attempts >= self.max_attempts:
            return None
        delay = min(self.retry_seconds * 2 ** (attempts - 1), MAX_BACKOFF_SECONDS)
        return utcnow() + timedelta(seconds=delay * random.uniform(0.8, 1.2))

    async def _post(self, url: str, secret: str, delivery: Delivery
                    ) -> tuple[int | None, str | None]:
        """POST the signed body to an address that passed the check: (status, error)."""
        try:
            addresses = await allowed_addresses(url, allow_private=self.allow_private)
        except ValidationError as exc:
            return None, f"refused: {exc.message.removeprefix('url: ')}"
        body = orjson.dumps(delivery.payload)
        headers = signed_headers(secret, delivery.delivery_id, int(time.time()), body)
        headers["Content-Type"] = "application/json"
        target = httpx.URL(url)
        parts = urlsplit(url)
        headers["Host"] = parts.netloc.rsplit("@", 1)[-1]
        pinned = target.copy_with(host=str(addresses[0]))
        extensions = {"sni_hostname": target.host} if target.scheme == "https" else {}
        try:
            async with self.client.stream("POST", pinned, content=body, headers=headers,
                                          extensions=extensions) as response:
                code = response.status_code  # the body is never read
        except httpx.TimeoutException:
            return None, f"no answer within {self.timeout:g} s"
        except httpx.HTTPError as exc:
            return None, f"{type(exc).__name__}: {exc}"[:200]
        return code, None if 200 <= code < 300 else f"HTTP {code}"
