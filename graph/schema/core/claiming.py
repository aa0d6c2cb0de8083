"""A claim for a caller that may leave: a claim whose answer cannot reach its caller is
undone, so no work sits claimed for a full lease for nobody and loses an attempt.

Over HTTP the client's disconnect is watched while the claim is in flight (the server
puts ``caller_gone`` in the context; elsewhere there is nothing to watch). If the
caller leaves first, the claim is cancelled and the repository undoes whatever the
database still applies; if it left by the time the claim returned, the claim is undone
here. Either way the answer is null, which nobody reads. Any kind of claimable work
(``claimDocumentationJob``) goes through here with its repository's claim and release.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

logger = logging.getLogger("jobgraph.claims")

T = TypeVar("T")


async def claim_for_caller(claim: Callable[[], Awaitable[T | None]],
                           release: Callable[[T], Awaitable[Any]],
                           caller_gone: Callable[[], Awaitable[None]] | None, *,
                           operation: str, user: str | None,
                           describe: Callable[[T], str]) -> T | None:
    """``claim()``'s answer, or None once the caller left; ``release(claimed)`` undoes a
    claim whose caller left. ``operation``, ``user`` and ``describe`` name it in logs."""
    if caller_gone is None:  # a WebSocket's operations are cancelled on close
        return await claim()
    left = asyncio.ensure_future(caller_gone())
    attempt = asyncio.ensure_future(claim())
    try:
        await asyncio.wait((attempt, left), return_when=asyncio.FIRST_COMPLETED)
        if not attempt.done():
            logger.warning("the caller of %s left before its answer; the claim is undone "
                           "(user %s)", operation, user)
            attempt.cancel()
            return None
        claimed = attempt.result()
        if claimed is not None and left.done():
            logger.warning("the caller of %s left before its answer; the claim of %s is "
                           "undone (user %s)", operation, describe(claimed), user)
            await release(claimed)
            return None
        return claimed
    finally:
        left.cancel()
