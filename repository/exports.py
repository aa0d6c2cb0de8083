"""A whole filtered list as one cursor, for the export endpoints: the list's own query
(its filter and the caller's read access), newest first as the list's default order, so
an export holds exactly what paging the list would visit."""

from __future__ import annotations

from typing import Any, Protocol

from pymongo import DESCENDING
from pymongo.asynchronous.cursor import AsyncCursor

from .access import Principal
from .mongo_types import Collection, Document


class Listable(Protocol):
    collection: Collection

    def _list_query(self, principal: Principal, list_filter: Any) -> dict[str, Any]: ...


def export_cursor(repository: Listable, principal: Principal, list_filter: Any,
                  projection: dict[str, int], batch_size: int) -> AsyncCursor[Document]:
    """Read lazily, ``batch_size`` documents per round trip; the caller closes it."""
    return repository.collection.find(
        repository._list_query(principal, list_filter), projection=projection,
        batch_size=batch_size, sort=[("created_at", DESCENDING), ("_id", DESCENDING)])
