"""Keyset pagination in both directions: over (created_at, _id), newest first, by default,
or over any ``SortOrder`` (its keys, then ``_id`` to break ties).

Cursors are opaque to clients; a malformed one is a validation error, never a
server error, and so is one made under another order than the page asks for.
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Callable
from dataclasses import dataclass, field, replace
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
class SortOrder:
    """A list order: ``keys`` (then ``_id``), all descending or all ascending.

    Every listed document must hold a value of each key (``only`` says which documents
    do, e.g. finished ones for a finish time), since a keyset cannot step past a null.
    Keys ending in ``_at`` hold instants, the others integers.
    """

    name: str
    keys: tuple[str, ...]
    descending: bool = True
    only: dict[str, Any] = field(default_factory=dict)

    @property
    def tag(self) -> str:
        return f"{self.name}_{'desc' if self.descending else 'asc'}"

    @property
    def legacy(self) -> bool:
        """The default order's cursors keep their first format (clients may hold some)."""
        return self.keys == ("created_at",) and self.descending and not self.only

    def sort(self, backwards: bool = False) -> list[tuple[str, int]]:
        direction = DESCENDING if self.descending != backwards else ASCENDING
        return [(key, direction) for key in (*self.keys, "_id")]

    def encode(self, doc: dict[str, Any]) -> str:
        values = [_plain(doc.get(key)) for key in self.keys]
        data = [*values, doc["_id"]] if self.legacy else [self.tag, *values, doc["_id"]]
        raw = json.dumps(data, separators=(",", ":")).encode()
        return base64.urlsafe_b64encode(raw).decode().rstrip("=")

    def decode(self, field_name: str, cursor: str) -> tuple[list[Any], str]:
        try:
            padded = cursor + "=" * (-len(cursor) % 4)
            data = json.loads(base64.urlsafe_b64decode(padded.encode()))
            if not isinstance(data, list) or not data:
                raise ValueError
        except (ValueError, TypeError, binascii.Error, UnicodeDecodeError):
            raise ValidationError(field_name, "is not a valid cursor") from None
        tag = data.pop(0) if isinstance(data[0], str) and len(data) > 2 else CREATED.tag
        if tag != self.tag:
            raise ValidationError(field_name, f"was made for another order ({tag}) than "
                                  f"this page's ({self.tag}); start again without it")
        try:
            *values, object_id = data
            if len(values) != len(self.keys) or not isinstance(object_id, str) or any(
                    type(value) is not int or not _INT64_MIN <= value <= _INT64_MAX
                    for value in values):
                raise ValueError
            return [_typed(key, value) for key, value in zip(self.keys, values, strict=True)
                    ], object_id
        except (ValueError, TypeError, OverflowError, OSError):
            raise ValidationError(field_name, "is not a valid cursor") from None


_INT64_MIN, _INT64_MAX = -(2**63), 2**63 - 1
"""BSON's widest integer: a forged cursor's wider one would fail in the driver."""


def _plain(value: Any) -> Any:
    if isinstance(value, datetime):
        return int(value.timestamp() * 1000)
    return value


def _typed(key: str, value: int) -> Any:
    return datetime.fromtimestamp(value / 1000, UTC) if key.endswith("_at") else value


CREATED = SortOrder("created", ("created_at",))
"""The default: newest first."""


@dataclass(frozen=True)
class PageRequest:
    first: int | None = None
    after: str | None = None
    last: int | None = None
    before: str | None = None

    def validated(self, max_page_size: int = MAX_PAGE_SIZE,
                  order: SortOrder = CREATED) -> PageRequest:
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
            order.decode("after", self.after)
        if self.before is not None:
            order.decode("before", self.before)
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


def keyset_query(base: dict[str, Any], page: PageRequest, order: SortOrder = CREATED
                 ) -> tuple[dict[str, Any], list[Any]]:
    """The filter and sort for one page, in ``order``; backwards pages are read reversed."""
    clauses = [base] if base else []
    if order.only:
        clauses.append(order.only)
    if page.after is not None:
        clauses.append(_beyond(order, *order.decode("after", page.after), later=True))
    if page.before is not None:
        clauses.append(_beyond(order, *order.decode("before", page.before), later=False))
    query = clauses[0] if len(clauses) == 1 else ({"$and": clauses} if clauses else {})
    return query, order.sort(page.backwards)


def _beyond(order: SortOrder, values: list[Any], object_id: str, *, later: bool
            ) -> dict[str, Any]:
    """Documents past the cursor in ``order`` (``later``) or before it: lexicographic
    over the keys and ``_id``, nested so that each level holds ranges only. The outer bound
    lets the index scan start at the cursor instead of the edge."""
    op = "$lt" if order.descending == later else "$gt"
    condition: dict[str, Any] = {"_id": {op: object_id}}
    for key, value in reversed(list(zip(order.keys, values, strict=True))):
        condition = {key: {op + "e": value}, "$or": [{key: {op: value}}, condition]}
    return condition


async def fetch_page(collection: Collection, base: dict[str, Any], page: PageRequest,
                     decode: Callable[[Document], T], order: SortOrder = CREATED) -> Page[T]:
    """One round trip: read one more than asked to learn whether another page exists.

    ``page`` comes from ``PageRequest.validated``, against the configured maximum.
    """
    query, sort = keyset_query(base, page, order)
    size = page.size
    docs = await collection.find(query, sort=sort, limit=size + 1).to_list() if size else []
    more = len(docs) > size
    docs = docs[:size]
    if page.backwards:
        docs.reverse()
    items = [decode(doc) for doc in docs]
    cursors = [order.encode(doc) for doc in docs]
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

