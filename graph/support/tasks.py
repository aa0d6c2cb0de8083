"""Background tasks that stop when asked, whatever the libraries under them do.

A cancellation can be lost: pymongo's async driver, cancelled while it selects a server
or connects, may raise a connection error instead of ``CancelledError``, and a loop that
logs errors and carries on would then run forever while shutdown waits for it (seen in
the suite: an API process that never finished stopping after a database outage). Loops
call ``reraise_if_cancelled`` in their error handlers, and ``stop`` cancels again until
every task has ended.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Iterable

RECANCEL_SECONDS = 0.5


def reraise_if_cancelled(error: BaseException) -> None:
    """Raise ``CancelledError`` when the current task was asked to stop: the ``error``
    being handled may be what a library made of that request."""
    task = asyncio.current_task()
    if task is not None and task.cancelling():
        raise asyncio.CancelledError from error


async def stop(tasks: Iterable[asyncio.Task[None]]) -> None:
    """Cancel ``tasks`` and wait until each has ended, cancelling again those that ignored
    it; what they raise on the way out is not the caller's concern."""
    pending = {task for task in tasks if not task.done()}
    for task in pending:
        task.cancel()
    while pending:
        _done, pending = await asyncio.wait(pending, timeout=RECANCEL_SECONDS)
        for task in pending:
            task.cancel()
    for task in tasks:
        if task.done() and not task.cancelled():
            with contextlib.suppress(Exception):
                task.exception()
