"""Multi-document transactions, for the few writes where two documents move together.

The body runs again from the start on a transient error (a write conflict with a
concurrent transaction), as the driver's ``with_transaction`` does, so it must be a pure
function of what it reads in the session. A body that decides to write nothing raises
``Abort``: the transaction is rolled back and the caller gets the value.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

from pymongo.asynchronous.client_session import AsyncClientSession
from pymongo.asynchronous.collection import AsyncCollection

T = TypeVar("T")


class Abort(Exception):
    """Leave the transaction without writing; ``value`` is what the caller gets."""

    def __init__(self, value: Any = None) -> None:
        super().__init__("transaction aborted on purpose")
        self.value = value


async def in_transaction(collection: AsyncCollection,
                         body: Callable[[AsyncClientSession], Awaitable[T]]) -> T:
    """``body(session)`` in one transaction on ``collection``'s client; retried on
    transient errors until the operation's deadline (pymongo's ``timeout``) or the
    driver's own limit."""
    client = collection.database.client
    async with client.start_session() as session:
        try:
            return await session.with_transaction(body)
        except Abort as abort:
            return abort.value
