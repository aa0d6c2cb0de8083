"""Executing one subscription event once for every subscriber it provably reads the same.

Subscribers of the same object with the same document and variables are handed the same
payload object for a change (the change's model, decoded once). Executing the selection
on it gives the same result for each of them as long as nothing in the selection reads
who the caller is: a field with a resolver may (``viewerCanWrite``; ``batch``, which a
DataLoader filters by the caller's access), a plain field cannot.

So results are shared under a key:

- the operation (its parsed node: the same document text gives the same node), the raw
  variables (canonical JSON), and the payload's identity;
- the caller (the context's ``share_key()``), unless the selection under the root field
  is *caller-independent*: every field in it is plain, ``__typename``, or has a resolver
  marked ``@caller_independent`` (one that reads the object, or data everyone who may
  read the object may read, and nothing else), on object types only (an abstract type, a
  field extension or permission, or a fragment on another type makes it dependent).
  Decided once per document.

The root field's resolver must be marked ``@shared_payloads``: it promises that a payload
it yields for several subscribers is the same object only when it stands for the same
thing (an event of one change). Which subscriber hears which payload stays the
resolver's decision, per subscriber and per event (access is checked there).

A context without ``share_key()``, or whose ``share_key()`` is None, shares nothing.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

import orjson
from graphql import (
    FieldNode,
    FragmentSpreadNode,
    GraphQLObjectType,
    GraphQLSchema,
    InlineFragmentNode,
    get_named_type,
)
from graphql.pyutils import Undefined
from strawberry.types.field import StrawberryField

from .internals import DEFINITION_BACKREF
from .plans import schema_cache

F = TypeVar("F", bound=Callable[..., Any])

CALLER_INDEPENDENT = "_jobgraph_caller_independent"
SHARED_PAYLOADS = "_jobgraph_shared_payloads"
INDEPENDENT = ("caller-independent",)
"""The caller part of the key of a caller-independent selection."""
MAX_RESULTS = 512
"""Results kept (with their payloads) for subscribers that come for them later: a change
reaches all of its subscribers within one fan-out, so a few hundred is plenty."""


def caller_independent(function: F) -> F:
    """Marks a field resolver whose value depends on its object alone (and on data anyone
    who may read the object may read), never on who asks."""
    setattr(function, CALLER_INDEPENDENT, True)
    return function


def shared_payloads(function: F) -> F:
    """Marks a subscription resolver that yields the same object to subscribers who are
    to hear the same event (see the module's doc)."""
    setattr(function, SHARED_PAYLOADS, True)
    return function


def _marked(field_def: Any, mark: str) -> bool:
    definition = (field_def.extensions or {}).get(DEFINITION_BACKREF)
    if type(definition) is not StrawberryField or definition.extensions:
        return False
    resolver = definition.base_resolver
    if resolver is None:
        return definition.is_basic_field and definition.default_resolver is getattr
    function = resolver.wrapped_func
    function = getattr(function, "__func__", function)
    return bool(getattr(function, mark, False))


def _independent(schema: GraphQLSchema, selection_set: Any, parent: GraphQLObjectType,
                 fragments: dict[str, Any], seen: set[str]) -> bool:
    for selection in selection_set.selections:
        if isinstance(selection, FieldNode):
            name = selection.name.value
            if name == "__typename":
                continue
            field_def = parent.fields.get(name)
            if field_def is None or not _marked(field_def, CALLER_INDEPENDENT):
                return False
            if selection.selection_set is not None:
                named = get_named_type(field_def.type)
                if not isinstance(named, GraphQLObjectType) or not _independent(
                        schema, selection.selection_set, named, fragments, seen):
                    return False
        elif isinstance(selection, InlineFragmentNode):
            condition = selection.type_condition
            if condition is not None and condition.name.value != parent.name:
                return False
            if not _independent(schema, selection.selection_set, parent, fragments, seen):
                return False
        elif isinstance(selection, FragmentSpreadNode):
            name = selection.name.value
            fragment = fragments.get(name)
            if fragment is None or fragment.type_condition.name.value != parent.name:
                return False
            if name not in seen:
                seen.add(name)
                if not _independent(schema, fragment.selection_set, parent, fragments, seen):
                    return False
        else:
            return False
    return True


def analyse(schema: GraphQLSchema, operation: Any, fragments: dict[str, Any]) -> Any:
    """None when the operation's events are not shareable at all; INDEPENDENT when they
    are whoever the caller is; True when they are among callers alike."""
    root = schema.subscription_type
    if root is None or operation.operation.value != "subscription":
        return None
    selections = operation.selection_set.selections
    if len(selections) != 1 or not isinstance(selections[0], FieldNode):
        return None
    field = selections[0]
    field_def = root.fields.get(field.name.value)
    if field_def is None:
        return None
    definition = (field_def.extensions or {}).get(DEFINITION_BACKREF)
    resolver = getattr(definition, "base_resolver", None)
    function = getattr(resolver, "wrapped_func", None)
    if not getattr(getattr(function, "__func__", function), SHARED_PAYLOADS, False):
        return None
    named = get_named_type(field_def.type)
    if field.selection_set is None or not isinstance(named, GraphQLObjectType):
        return None
    if _independent(schema, field.selection_set, named, fragments, set()):
        return INDEPENDENT
    return True


def event_key(executor: Any) -> tuple[Any, ...] | None:
    """The key under which a subscription executor's events are shared, or None.

    Cached on the executor's schema per operation node for the analysis; the rest is per
    executor (its variables and caller)."""
    context = executor.context_value
    share_key = getattr(context, "share_key", None)
    caller = share_key() if share_key is not None else None
    if caller is None:
        return None
    operation = executor.operation
    analyses = schema_cache(executor.schema, "_jobgraph_event_sharing")
    found = analyses.get(id(operation))
    if found is None or found[0] is not operation:
        fragments = {name: details.definition for name, details in executor.fragments.items()}
        found = analyses[id(operation)] = (operation,
                                           analyse(executor.schema, operation, fragments))
        if len(analyses) > 1024:
            analyses.clear()
    verdict = found[1]
    if verdict is None:
        return None
    variables = canonical_variables(executor.variable_values)
    if variables is None:
        return None
    return (id(operation), variables, INDEPENDENT if verdict is INDEPENDENT else caller)


def canonical_variables(values: Any) -> str | None:
    """The raw variables as canonical JSON (each name with whether it was given and its
    value); None when one is not JSON (nothing is shared then)."""
    sources = getattr(values, "sources", None)
    if sources is None:
        return None
    items = [[name, 0] if source.value is Undefined else [name, 1, source.value]
             for name, source in sorted(sources.items())]
    try:
        return orjson.dumps(items, option=orjson.OPT_SORT_KEYS).decode()  # kept: exact size
    except TypeError:
        return None


class SharedResults:
    """Results of executed events by key and payload, bounded; each kept with its payload,
    so the payload's identity cannot be reused while its result is here."""

    __slots__ = ("entries",)

    def __init__(self) -> None:
        self.entries: dict[tuple[Any, int], tuple[Any, Any]] = {}

    def get(self, key: tuple[Any, ...], payload: Any) -> Any:
        found = self.entries.get((key, id(payload)))
        if found is not None and found[0] is payload:
            return found[1]
        return None

    def put(self, key: tuple[Any, ...], payload: Any, result: Any) -> None:
        entries = self.entries
        entries[(key, id(payload))] = (payload, result)
        if len(entries) > MAX_RESULTS:
            del entries[next(iter(entries))]
        if not result.errors and result.data is not None:
            ENCODINGS.register(result.data)


def shared_results(schema: GraphQLSchema) -> SharedResults:
    found = schema.__dict__.get("_jobgraph_shared_results")
    if found is None:
        found = schema.__dict__["_jobgraph_shared_results"] = SharedResults()
    return found


class Encodings:
    """The JSON of shared results' payloads, encoded once: ``register`` a result's data
    when it is shared, and the first encoder of ``{"data": data}`` keeps its bytes for
    the others (by identity, as long as the entry lives)."""

    __slots__ = ("entries",)

    def __init__(self) -> None:
        self.entries: dict[int, list[Any]] = {}

    def register(self, data: Any) -> None:
        entries = self.entries
        if id(data) not in entries:
            entries[id(data)] = [data, None]
            if len(entries) > MAX_RESULTS:
                del entries[next(iter(entries))]

    def encoded(self, payload: Any, dumps: Callable[[Any], bytes]) -> bytes:
        """``dumps(payload)``, once per shared data when ``payload`` is ``{"data": data}``."""
        if type(payload) is dict and len(payload) == 1:
            data = payload.get("data")
            found = self.entries.get(id(data))
            if found is not None and found[0] is data:
                if found[1] is None:
                    found[1] = dumps(payload)
                return found[1]  # type: ignore[no-any-return]
        return dumps(payload)


ENCODINGS = Encodings()
"""Process-wide: every transport's encoder (HTTP streams, WebSockets) reads it."""
