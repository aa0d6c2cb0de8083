"""Relay-style connections over the repository's keyset pages."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any, Generic, TypeVar

import strawberry

from repository.access import Principal
from repository.pagination import Page, PageRequest

T = TypeVar("T")


@strawberry.type(description="Where a page sits in the whole list.")
class PageInfo:
    has_next_page: bool = strawberry.field(description="More items follow this page.")
    has_previous_page: bool = strawberry.field(description="Items come before this page.")
    start_cursor: str | None = strawberry.field(description="Cursor of the first item.")
    end_cursor: str | None = strawberry.field(description="Cursor of the last item.")


@strawberry.type(description="One item of a page and the cursor to continue from it.")
class Edge(Generic[T]):
    node: T = strawberry.field(description="The item.")
    cursor: str = strawberry.field(description="Opaque position of this item in the list.")


@strawberry.type(description="A page of a list, newest first, with keyset cursors.")
class Connection(Generic[T]):
    edges: list[Edge[T]] = strawberry.field(description="The items of this page.")
    page_info: PageInfo = strawberry.field(description="Cursors and whether more pages exist.")
    counter: strawberry.Private[Callable[[], Awaitable[int]]]

    @strawberry.field(description="How many items the whole list holds for this caller.")
    async def total_count(self) -> int:
        return await self.counter()


def to_connection(page: Page[T], counter: Callable[[], Awaitable[int]]) -> Connection[T]:
    edges = [Edge(node=item, cursor=cursor) for item, cursor in zip(page.items, page.cursors,
                                                                     strict=True)]
    info = PageInfo(
        has_next_page=page.has_next_page,
        has_previous_page=page.has_previous_page,
        start_cursor=page.cursors[0] if page.cursors else None,
        end_cursor=page.cursors[-1] if page.cursors else None,
    )
    return Connection(edges=edges, page_info=info, counter=counter)


async def paginate(repository: Any, principal: Principal, list_filter: Any, first: int | None,
                   after: str | None, last: int | None, before: str | None,
                   order: Any = None) -> Connection[Any]:
    """A page of ``repository.list`` as a connection (in ``order``, when the list has
    orders); ``totalCount`` is counted only if asked."""
    request = page_request(first, after, last, before)
    page = await (repository.list(principal, list_filter, request) if order is None
                  else repository.list(principal, list_filter, request, order))
    if order is None:
        return to_connection(page, lambda: repository.count(principal, list_filter))
    return to_connection(page, lambda: repository.count(principal, list_filter, order))


def page_request(
    first: int | None, after: str | None, last: int | None, before: str | None
) -> PageRequest:
    return PageRequest(first=first, after=after, last=last, before=before)


FIRST = strawberry.argument(description="Page size from the start (or after `after`).")
AFTER = strawberry.argument(description="Cursor to continue after.")
LAST = strawberry.argument(description="Page size from the end (or before `before`).")
BEFORE = strawberry.argument(description="Cursor to continue before.")
ORDER_BY = strawberry.argument(description="The order (default: newest first).")
FILTER = strawberry.argument(description="Conditions the items must all meet (none: all).")
