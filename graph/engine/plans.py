"""What the fast executor does with each field of each type, decided once per schema.

A field is a plain leaf, a list of leaves, a plain object or list of objects (read
directly), a resolver that can be called without Strawberry's per-call wrapper, or
generic (graphql-core's own path). See ``graph/engine/executor.py``. The subscription
fields' sources are started without that wrapper too, where it is exact
(``direct_subscribers``).
"""

from __future__ import annotations

import math
from datetime import UTC, date, datetime, time
from enum import Enum, EnumMeta
from functools import partial
from inspect import isasyncgenfunction
from keyword import iskeyword
from typing import Any

import orjson
from graphql import (
    GraphQLBoolean,
    GraphQLEnumType,
    GraphQLFloat,
    GraphQLID,
    GraphQLInt,
    GraphQLList,
    GraphQLNonNull,
    GraphQLObjectType,
    GraphQLSchema,
    GraphQLString,
)
from graphql.language import VariableNode
from graphql.pyutils import Undefined
from strawberry.relay.types import GlobalID
from strawberry.resolvers import is_default_resolver
from strawberry.types.base import StrawberryMaybe, StrawberryOptional
from strawberry.types.field import StrawberryField

from repository.database import STORED_UTC

from .arguments import arguments_converter
from .internals import DEFINITION_BACKREF, convert_arguments, is_leaf_type, isoformat

MAX_INT, MIN_INT = 2**31 - 1, -(2**31)
LEAF, LEAF_LIST, OBJECT, OBJECT_LIST, TYPENAME, DIRECT, GENERIC = range(7)


class Bail(Exception):
    """A leaf the fast path cannot complete: graphql-core completes the object instead.
    Raised new each time: one shared instance gathered a frame per raise in its
    traceback, and kept each (with what it read) alive."""


MISSING = object()


def leaf_completer(named: Any) -> Any:
    """A function that returns the completed leaf value or raises ``Bail``."""
    coerce = named.coerce_output_value

    def generic(value: Any) -> Any:
        try:
            coerced = coerce(value)
        except Exception:
            raise Bail from None
        if coerced is None or coerced is Undefined:
            raise Bail
        return coerced

    if coerce is isoformat:  # Strawberry's DateTime, Date and Time
        return _temporal_completer(generic)
    members = getattr(named, "wrapped_cls", None)  # Strawberry's enums
    if isinstance(named, GraphQLEnumType) and isinstance(members, EnumMeta):
        return _enum_completer(coerce, members, generic)
    if named is GraphQLString or named is GraphQLID:
        return lambda value: value if type(value) is str else generic(value)
    if named is GraphQLBoolean:
        return lambda value: value if type(value) is bool else generic(value)
    if named is GraphQLInt:
        return lambda value: value if type(value) is int and MIN_INT <= value <= MAX_INT \
            else generic(value)
    if named is GraphQLFloat:
        return lambda value: value if type(value) is float and math.isfinite(value) \
            else generic(value)
    return generic


MAX_COMPILED = 2_000
"""Compiled leaf functions kept per schema (all are dropped when there are more)."""


def compiled_leaves(cache: dict[Any, Any], type_name: str, response_names: tuple[str, ...],
                    leaves: list[tuple[Any, ...]]) -> Any:
    """``compile_leaves``, once per distinct selection: a selection collected anew per
    request (the root's, a document's with variable directives) finds it by its shape."""
    key = (type_name, response_names, tuple(leaves))
    fill = cache.get(key)
    if fill is None:
        if len(cache) >= MAX_COMPILED:
            cache.clear()
        fill = cache[key] = compile_leaves(type_name, list(response_names), leaves)
    return fill


def compile_leaves(type_name: str, response_names: list[str], leaves: list[tuple[Any, ...]]
                   ) -> Any:
    """One function that reads and completes every leaf of a selection on one type and
    returns the response dict (its keys in response order, other fields None for now), or
    raises ``Bail``: what a loop over the steps did, less its per-leaf dispatch (a job read
    has ~70 leaves, most of them in its log's entries). Leaves are read and completed one
    after the other, as the loop did, so an exception surfaces from the same leaf.

    Only identifiers reach the source: an attribute name that is not one is read with
    ``getattr``; response names and completers are passed as values."""
    names: dict[str, Any] = {"Bail": Bail, "MISSING": MISSING, "type_name": type_name,
                             "complete_list": _complete_leaf_list}
    lines = ["def fill(source):"]
    values = dict.fromkeys(response_names, "None")
    for number, step in enumerate(leaves):
        kind, response_name = step[0], step[1]
        if kind is TYPENAME:
            values[response_name] = "type_name"
            continue
        attribute, non_null, complete = step[2], step[3], step[4]
        value = f"v{number}"
        names[f"a{number}"], names[f"c{number}"] = attribute, complete
        if attribute.isidentifier() and not iskeyword(attribute):
            lines += ["    try:", f"        {value} = source.{attribute}",
                      "    except AttributeError:", "        raise Bail from None"]
        else:
            lines += [f"    {value} = getattr(source, a{number}, MISSING)",
                      f"    if {value} is MISSING:", "        raise Bail"]
        completed = (f"c{number}({value})" if kind is LEAF
                     else f"complete_list({value}, c{number}, {bool(step[5])})")
        if non_null:
            lines += [f"    if {value} is None:", "        raise Bail",
                      f"    {value} = {completed}"]
        else:
            lines += [f"    if {value} is not None:", f"        {value} = {completed}"]
        values[response_name] = value
    keys = [f"r{number}" for number in range(len(values))]
    names.update(zip(keys, values, strict=True))
    lines.append("    return {" + ", ".join(f"{key}: {value}" for key, value in
                                         zip(keys, values.values(), strict=True)) + "}")
    namespace: dict[str, Any] = {}
    exec("\n".join(lines), names, namespace)  # our own source: no input reaches it
    fill = namespace["fill"]
    fill.__qualname__ = f"fill_{type_name}"
    return fill


def _complete_leaf_list(value: Any, complete: Any, item_non_null: bool) -> list[Any]:
    if not isinstance(value, list | tuple):
        raise Bail
    completed: list[Any] = []
    for item in value:
        if item is None:
            if item_non_null:
                raise Bail
            completed.append(None)
        else:
            completed.append(complete(item))
    return completed


def _temporal_completer(generic: Any) -> Any:
    """``isoformat``'s text; for a UTC datetime (every one read from the database) through
    orjson, in a third of the time: a job read with ten log entries has a dozen."""
    kinds = {datetime, date, time}
    dumps = orjson.dumps

    def complete(value: Any) -> Any:
        kind = type(value)
        if kind is datetime:
            zone = value.tzinfo
            # orjson writes these as isoformat does (+00:00, or no offset); not every zone
            if zone is STORED_UTC or zone is UTC or zone is None:
                return dumps(value)[1:-1].decode()
        return value.isoformat() if kind in kinds else generic(value)

    return complete


def _enum_completer(coerce: Any, members: EnumMeta, generic: Any) -> Any:
    """Names of an enum's members and of their values (models may hold either), looked
    up by type and value, so that ``1`` and ``True`` stay apart."""
    names: dict[tuple[type, Any], Any] = {}
    member: Enum
    value: object
    for member in members:
        for value in (member, member.value):
            try:
                names[type(value), value] = coerce(value)
            except Exception:  # unhashable, or left out of the schema: graphql-core decides
                continue

    def complete(value: Any) -> Any:
        try:
            return names[type(value), value]
        except (KeyError, TypeError):
            return generic(value)

    return complete


def _is_plain(field_def: Any) -> str | None:
    """The Python attribute a field reads, when it is a plain Strawberry field."""
    resolve = field_def.resolve
    if resolve is None or not is_default_resolver(resolve):
        return None
    definition = (field_def.extensions or {}).get(DEFINITION_BACKREF)
    if type(definition) is not StrawberryField or not definition.is_basic_field:
        return None
    if definition.default_resolver is not getattr:
        return None
    return definition.python_name


def unwrap(type_: Any) -> tuple[Any, bool]:
    if isinstance(type_, GraphQLNonNull):
        return type_.of_type, True
    return type_, False


def _direct_call(field_def: Any, strawberry_schema: Any) -> tuple[Any, ...] | None:
    """How to call a resolver without Strawberry's per-call wrapper, when that is exact:
    no field extension (permissions are one) and no exception handler. Leaf arguments,
    which Strawberry passes through unconverted, are passed as they are; any other
    (input objects, lists of them) makes every argument go through Strawberry's own
    ``convert_arguments``, as its wrapper would."""
    definition = (field_def.extensions or {}).get(DEFINITION_BACKREF)
    if (type(definition) is not StrawberryField or definition.base_resolver is None
            or definition.extensions or strawberry_schema is None):
        return None
    converter = strawberry_schema.schema_converter
    if getattr(converter, "exception_handlers", ()):
        return None
    config = strawberry_schema.config
    arguments = []
    convert = None
    for argument in definition.arguments:
        type_ = argument.type
        if isinstance(type_, StrawberryOptional) and not isinstance(type_, StrawberryMaybe):
            type_ = type_.of_type
        if (isinstance(type_, StrawberryMaybe) or type_ is GlobalID
                or not is_leaf_type(type_, converter.scalar_registry)):
            convert = (arguments_converter(definition.arguments, converter.scalar_registry,
                                           config),
                       definition.arguments, converter.scalar_registry, config)
        arguments.append((config.name_converter.from_argument(argument), argument.python_name))
    resolver = definition.base_resolver
    if not callable(resolver.wrapped_func):
        return None

    def name_of(parameter: Any) -> str | None:
        return None if parameter is None else parameter.name

    return (DIRECT, field_def, definition, resolver.wrapped_func, tuple(arguments),
            resolver.self_parameter is not None, name_of(resolver.root_parameter),
            name_of(resolver.parent_parameter), name_of(resolver.info_parameter),
            config.info_class, convert)


def call_direct(step: tuple[Any, ...], source: Any, info: Any, raw: dict[str, Any]) -> Any:
    """The resolver of a DIRECT ``step`` called as Strawberry's wrapper calls it, with the
    arguments graphql-core coerced (``raw``)."""
    (_kind, _field_def, definition, function, arguments, pass_self, root_name, parent_name,
     info_name, info_class, convert) = step
    strawberry_info = None
    if convert is None:
        kwargs = {python: raw[graphql] for graphql, python in arguments if graphql in raw}
    elif convert[0] is not None:  # ours: see arguments.py
        kwargs = convert[0](raw)
    else:
        strawberry_info = info_class(_raw_info=info, _field=definition)
        kwargs = convert_arguments(raw, convert[1], scalar_registry=convert[2],
                                   config=convert[3], info=strawberry_info)
    if root_name is not None:
        kwargs[root_name] = source
    if parent_name is not None:
        kwargs[parent_name] = source
    if info_name is not None:
        kwargs[info_name] = strawberry_info or info_class(_raw_info=info, _field=definition)
    return function(source, **kwargs) if pass_self else function(**kwargs)


def _subscribe(step: tuple[Any, ...], source: Any, info: Any, **raw: Any) -> Any:
    return call_direct(step, source, info, raw)


def direct_subscribers(schema: GraphQLSchema, strawberry_schema: Any) -> None:
    """Each subscription field whose resolver is an async generator and may be called
    directly (``_direct_call``) starts its source without Strawberry's wrapper: a
    coroutine around the call, awaited by graphql-core, and the arguments walked by
    Strawberry: ~3.5% of the instructions a subscriber costs to connect. Its source, its
    arguments and its errors are the same (graphql-core locates what either raises)."""
    root = schema.subscription_type
    for field_def in (root.fields.values() if root is not None else ()):
        step = _direct_call(field_def, strawberry_schema)
        if step is not None and isasyncgenfunction(step[3]):
            field_def.subscribe = partial(_subscribe, step)


def field_kind(parent_type: GraphQLObjectType, field_def: Any, schema: GraphQLSchema
                ) -> tuple[Any, ...]:
    """What the executor does with one field of a type, decided once per schema."""
    name = _is_plain(field_def)
    if name is None:
        if parent_type is schema.subscription_type:  # its resolvers map events
            return (GENERIC,)
        return _direct_call(field_def, getattr(schema, "_strawberry_schema", None)) \
            or (GENERIC,)
    inner, non_null = unwrap(field_def.type)
    if isinstance(inner, GraphQLList):
        item, item_non_null = unwrap(inner.of_type)
        if isinstance(item, GraphQLObjectType):
            return (OBJECT_LIST, name, non_null, item, item_non_null)
        if hasattr(item, "coerce_output_value"):
            return (LEAF_LIST, name, non_null, leaf_completer(item), item_non_null)
        return (GENERIC,)
    if isinstance(inner, GraphQLObjectType):
        return (OBJECT, name, non_null, inner)
    if hasattr(inner, "coerce_output_value"):
        return (LEAF, name, non_null, leaf_completer(inner))
    return (GENERIC,)


def accepts(object_type: GraphQLObjectType, value: Any) -> bool:
    """Whether ``value`` passes the type's ``is_type_of`` (types that implement an
    interface check their values; graphql-core gives the error when one does not). The
    schema's checks are plain ``isinstance`` tests that read no resolve info."""
    is_type_of = object_type.is_type_of
    return is_type_of is None or is_type_of(value, None) is True  # type: ignore[arg-type]


def schema_cache(schema: GraphQLSchema, name: str) -> dict[Any, Any]:
    """A per-schema cache (it lives and dies with the schema)."""
    cache = schema.__dict__.get(name)
    if cache is None:
        cache = schema.__dict__[name] = {}
    return cache


MAX_SHARED_OPERATIONS = 1024
"""Operations whose selections are kept across requests (as many as the document cache
holds); past that the cache starts over, so it never keeps more alive."""


def names_no_variable(value: Any) -> bool:
    """Whether an argument's value is a literal all through (no ``$x`` in a list or an
    input object): its coerced value is then the same in every request."""
    stack = [value]
    while stack:
        node = stack.pop()
        if isinstance(node, VariableNode):
            return False
        stack.extend(getattr(node, "values", None) or ())  # a list
        stack.extend(field.value for field in getattr(node, "fields", None) or ())  # an object
    return True


def is_static(document: Any) -> bool:
    """Whether a document selects the same fields whatever its variables: no directive
    takes a variable (``@include(if: $x)``) and no fragment declares variables."""
    for definition in document.definitions:
        if getattr(definition, "variable_definitions", None) and definition.kind == \
                "fragment_definition":
            return False
    stack = list(document.definitions)
    while stack:
        node = stack.pop()
        for directive in getattr(node, "directives", None) or ():
            for argument in directive.arguments or ():
                if isinstance(argument.value, VariableNode):
                    return False
        selection_set = getattr(node, "selection_set", None)
        if selection_set is not None:
            stack.extend(selection_set.selections)
    return True


