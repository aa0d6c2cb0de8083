"""Wait for a condition with a generous deadline, never sleep and hope."""

from __future__ import annotations

import asyncio
import inspect
from collections.abc import Awaitable, Callable
from typing import Any

DEADLINE = 30.0


async def eventually(check: Callable[[], Any | Awaitable[Any]], *, deadline: float = DEADLINE,
                     interval: float = 0.05) -> Any:
    """Call ``check`` until it returns something truthy; that value is returned."""
    async with asyncio.timeout(deadline):
        while True:
            result = check()
            if inspect.isawaitable(result):
                result = await result
            if result:
                return result
            await asyncio.sleep(interval)
