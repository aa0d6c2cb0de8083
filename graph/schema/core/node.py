"""Relay's global object identification.

Every entity implements ``Node``: its ``id`` is a global id (base64 of ``Type:localId``,
as Relay and Strawberry write it), so Apollo's, urql's and Relay's normalised caches key
objects with no configuration; ``node(id:)`` and ``nodes(ids:)`` fetch objects by it under
the caller's read rules, where a hidden object is null exactly like a missing one. Value
types (progress, log entries, access control, pages) have no identity of their own and
stay inside their parent in a client's cache.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Mapping
from typing import Annotated, Any

import strawberry
from strawberry.relay import GlobalID, GlobalIDValueError

from repository.errors import ValidationError

from .context import Context, Info

Fetch = Callable[[Context, list[str]], Awaitable[Mapping[str, Any]]]
"""The readable objects of one type among some local ids, by local id."""


@strawberry.interface(description="An object with a global id (Relay's Node): client caches "
                      "key objects by it, and `node(id:)` fetches any object by it.")
class Node:
    id: strawberry.ID = strawberry.field(
        description="Global id: unique across types, stable for the object's life.")


def global_id(type_name: str, local_id: str) -> strawberry.ID:
    return strawberry.ID(str(GlobalID(type_name, str(local_id))))


def parse_global_id(value: str, field: str, known: Mapping[str, Fetch]) -> tuple[str, str]:
    try:
        parsed = GlobalID.from_id(value)
    except (GlobalIDValueError, ValueError, TypeError):
        raise ValidationError(field, "is not a global id of this API") from None
    if parsed.type_name not in known:
        raise ValidationError(field, "is not a global id of this API")
    return parsed.type_name, parsed.node_id


def node_queries(fetchers: Mapping[str, Fetch]) -> type:
    """The ``node`` and ``nodes`` root fields over the entities each domain fetches."""

    @strawberry.type
    class NodeQueries:
        @strawberry.field(description="Any object by its global `id`; null when it does not "
                          "exist or you may not read it (the two look the same).")
        async def node(
            self, info: Info,
            id: Annotated[strawberry.ID, strawberry.argument(description="A global id.")],
        ) -> Node | None:
            type_name, local_id = parse_global_id(id, "id", fetchers)
            found = await fetchers[type_name](info.context, [local_id])
            return found.get(local_id)

        @strawberry.field(description="Objects by their global ids, in the order asked; null "
                          "for each that does not exist or that you may not read.")
        async def nodes(
            self, info: Info,
            ids: Annotated[list[strawberry.ID], strawberry.argument(
                description="Global ids (at most the maximum page size).")],
        ) -> list[Node | None]:
            limit = info.context.store.limits.max_page_size
            if len(ids) > limit:
                raise ValidationError("ids", f"must hold at most {limit} ids")
            wanted = [parse_global_id(value, "ids", fetchers) for value in ids]
            by_type: dict[str, list[str]] = {}
            for type_name, local_id in wanted:
                by_type.setdefault(type_name, []).append(local_id)
            types = list(by_type)
            found = await asyncio.gather(*(fetchers[name](info.context, by_type[name])
                                           for name in types))
            objects = dict(zip(types, found, strict=True))
            return [objects[type_name].get(local_id) for type_name, local_id in wanted]

    return NodeQueries
