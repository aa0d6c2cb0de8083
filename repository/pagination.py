"""Keyset pagination over (created_at, _id), newest first, in both directions.

Cursors are opaque to clients; a malformed one is a validation error, never a
server error.
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from itertools import combinations
from typing import Any, Generic, TypeVar

from pymongo import ASCENDING, DESCENDING, IndexModel

from .errors import ValidationError
from .mongo_types import Collection, Document

T = TypeVar("T")

DEFAULT_PAGE_SIZE = 20
MAX_PAGE_SIZE = 100


def encode_cursor(created_at: datetime, object_id: str) -> str:
    millis = int(created_at.timestamp() * 1000)
    raw = json.dumps([millis, object_id], separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(field: str, cursor: str) -> tuple[datetime, str]:
    try:
        padded = cursor + "=" * (-len(cursor) % 4)
        millis, object_id = json.loads(base64.urlsafe_b64decode(padded.encode()))
        if type(millis) is not int or not isinstance(object_id, str):
            raise ValueError
        return datetime.fromtimestamp(millis / 1000, UTC), object_id
    except (ValueError, TypeError, binascii.Error, UnicodeDecodeError, OverflowError, OSError):
        raise ValidationError(field, "is not a valid cursor") from None


@dataclass(frozen=True)
class PageRequest:
    first: int | None = None
    after: str | None = None
    last: int | None = None
    before: str | None = None

    def validated(self, max_page_size: int = MAX_PAGE_SIZE) -> PageRequest:
        """This request checked against the configured maximum, with its size decided: a
        list asked for without ``first`` or ``last`` gets the default size, never more
        than the maximum."""
        if self.first is not None and self.last is not None:
            raise ValidationError("first", "cannot be combined with last")
        for name in ("first", "last"):
            value = getattr(self, name)
            if value is not None and not 0 <= value <= max_page_size:
                raise ValidationError(name, f"must be between 0 and {max_page_size}, got {value}")
        if self.after is not None:
            decode_cursor("after", self.after)
        if self.before is not None:
            decode_cursor("before", self.before)
        if self.first is None and self.last is None:
            default = min(DEFAULT_PAGE_SIZE, max_page_size)
            return replace(self, last=default) if self.before is not None else replace(
                self, first=default)
        return self

    @property
    def backwards(self) -> bool:
        return self.last is not None or (self.before is not None and self.first is None)

    @property
    def size(self) -> int:
        if self.last is not None:
            return self.last
        return self.first if self.first is not None else DEFAULT_PAGE_SIZE


@dataclass
class Page(Generic[T]):
    items: list[T]
    cursors: list[str]
    has_next_page: bool
    has_previous_page: bool


def filter_query(equal: dict[str, Any], created_after: datetime | None,
                 created_before: datetime | None) -> dict[str, Any]:
    """A list filter: the given equalities (enums by value) and an open creation range."""
    query = {name: getattr(value, "value", value) for name, value in equal.items()
             if value is not None}
    created = {op: bound for op, bound in (("$gt", created_after), ("$lt", created_before))
               if bound is not None}
    if created:
        query["created_at"] = created
    return query


def keyset_query(base: dict[str, Any], page: PageRequest) -> tuple[dict[str, Any], list[Any]]:
    """The filter and sort for one page. Newest first; backwards pages are read reversed."""
    clauses = [base] if base else []
    if page.after is not None:
        clauses.append(_beyond(*decode_cursor("after", page.after), older=True))
    if page.before is not None:
        clauses.append(_beyond(*decode_cursor("before", page.before), older=False))
    query = clauses[0] if len(clauses) == 1 else ({"$and": clauses} if clauses else {})
    direction = 1 if page.backwards else -1
    return query, [("created_at", direction), ("_id", direction)]


def _beyond(created_at: datetime, object_id: str, *, older: bool) -> dict[str, Any]:
    op = "$lt" if older else "$gt"
    # The outer bound lets the index scan start at the cursor instead of the edge.
    return {
        "created_at": {op + "e": created_at},
        "$or": [{"created_at": {op: created_at}}, {"_id": {op: object_id}}],
    }


async def fetch_page(collection: Collection, base: dict[str, Any], page: PageRequest,
                     decode: Callable[[Document], T]) -> Page[T]:
    """One round trip: read one more than asked to learn whether another page exists.

    ``page`` comes from ``PageRequest.validated``, against the configured maximum.
    """
    query, sort = keyset_query(base, page)
    size = page.size
    docs = await collection.find(query, sort=sort, limit=size + 1).to_list() if size else []
    more = len(docs) > size
    docs = docs[:size]
    if page.backwards:
        docs.reverse()
    items = [decode(doc) for doc in docs]
    cursors = [encode_cursor(doc["created_at"], doc["_id"]) for doc in docs]
    if page.backwards:
        return Page(items, cursors, has_next_page=page.before is not None,
                    has_previous_page=more)
    return Page(items, cursors, has_next_page=more, has_previous_page=page.after is not None)


def keyset_indexes(filters: dict[str, str], prefixes: dict[str, str],
                   declared: list[IndexModel]) -> list[IndexModel]:
    """The indexes a list needs beyond ``declared``: one per combination of its equality
    filters (``filters``: field -> name part), behind each access prefix (``prefixes``:
    the read filter's own equality field -> name part, "" for none), then the keyset
    order. Every page and count a caller can ask for is then read from an index in
    order, so MongoDB never sorts in memory. Named like ``readers_status_created``.
    """
    have = {tuple(index.document["key"].items()) for index in declared}
    needed = []
    for prefix, prefix_name in prefixes.items():
        for size in range(len(filters) + 1):
            for chosen in combinations(filters, size):
                fields = [prefix] if prefix else []
                fields += chosen
                keys = [(field, ASCENDING) for field in fields]
                keys += [("created_at", DESCENDING), ("_id", DESCENDING)]
                if tuple(keys) in have:
                    continue
                name = "_".join([*filter(None, [prefix_name]),
                                 *(filters[field] for field in chosen), "created"])
                needed.append(IndexModel(keys, name=name))
    return needed

