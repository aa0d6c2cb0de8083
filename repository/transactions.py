"""Multi-document transactions, for the few writes where two documents move together.

The body runs again from the start on a transient error (a write conflict with a
concurrent transaction), as the driver's ``with_transaction`` does, so it must be a pure
function of what it reads in the session. A body that decides to write nothing raises
``Abort``: the transaction is rolled back and the caller gets the value.
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar, cast

from pymongo.asynchronous.client_session import AsyncClientSession

from .mongo_types import Collection

T = TypeVar("T")


class Abort(Exception):
    """Leave the transaction without writing; ``value`` is what the caller gets."""

    def __init__(self, value: Any = None) -> None:
        super().__init__("transaction aborted on purpose")
        self.value = value


MAX_RETRY_PAUSE = 0.1


async def in_transaction(collection: Collection,
                         body: Callable[[AsyncClientSession], Awaitable[T]]) -> T:
    """``body(session)`` in one transaction on ``collection``'s client; retried on
    transient errors until the operation's deadline (pymongo's ``timeout``) or the
    driver's own limit, after a random pause that grows with each retry, so that
    transactions that conflicted do not meet again at once."""
    client = collection.database.client
    runs = 0

    async def paced(session: AsyncClientSession) -> T:
        nonlocal runs
        runs += 1
        if runs > 1:
            await asyncio.sleep(random.uniform(0, min(MAX_RETRY_PAUSE, 0.002 * 2 ** runs)))
        return await body(session)

    async with client.start_session() as session:
        try:
            return await session.with_transaction(paced)
        except Abort as abort:
            return cast(T, abort.value)  # what the body chose to give back
