"""Resolver arguments converted as Strawberry's ``convert_arguments`` converts them, by a
function made once per argument instead of a walk of its type on every call.

``convert_argument`` inspects the argument's type on every call, recursively for every
input field and list item, and imports three names each time it runs: in a worker's
lifecycle (eight mutations with input objects) about 80 imports and the isinstance checks
around them, ~6% of the API's instructions for it. The functions here do what it does
for the types our schema uses (leaves, enums, optionals, lists, plain input objects); for any
other (``Maybe``, ``GlobalID``, an input that builds itself with ``from_input``, a type
not known here) ``converter`` returns None and the field keeps Strawberry's conversion.
``tests/graph/test_argument_conversion.py`` compares both for every mutation. Every
function made here passes None and UNSET through, as ``convert_argument`` does first.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import MISSING
from typing import Any

from strawberry.relay.types import GlobalID
from strawberry.types.base import (
    StrawberryList,
    StrawberryMaybe,
    StrawberryOptional,
    has_object_definition,
)
from strawberry.types.enum import has_enum_definition
from strawberry.types.lazy_type import LazyType
from strawberry.types.unset import UNSET

from .internals import is_leaf_type

Convert = Callable[[Any], Any]


def arguments_converter(arguments: list[Any], scalar_registry: Any, config: Any
                        ) -> Callable[[dict[str, Any]], dict[str, Any]] | None:
    """``convert_arguments(raw, arguments, ...)`` for these arguments, or None."""
    steps = []
    for argument in arguments:
        convert = converter(argument.type, scalar_registry, config)
        if convert is None:
            return None
        steps.append((config.name_converter.from_argument(argument), argument.python_name,
                      convert))

    def convert_all(raw: dict[str, Any]) -> dict[str, Any]:
        return {python: convert(raw[name]) for name, python, convert in steps if name in raw}

    return convert_all


def converter(type_: Any, scalar_registry: Any, config: Any) -> Convert | None:
    """What ``convert_argument`` does with a value of ``type_``; None where not known."""
    if isinstance(type_, StrawberryMaybe):
        return None
    if isinstance(type_, StrawberryOptional):  # converted as its inner type
        return converter(type_.of_type, scalar_registry, config)
    if isinstance(type_, LazyType):
        return converter(type_.resolve_type(), scalar_registry, config)
    if type_ is GlobalID:
        return None
    if isinstance(type_, StrawberryList):
        return _list_converter(type_.of_type, scalar_registry, config)
    if is_leaf_type(type_, scalar_registry) or has_enum_definition(type_):
        return _kept
    if has_object_definition(type_):
        return _input_converter(type_, scalar_registry, config)
    return None


def _kept(value: Any) -> Any:
    return value


def _list_converter(item_type: Any, scalar_registry: Any, config: Any) -> Convert | None:
    leaf = item_type
    if isinstance(leaf, StrawberryOptional) and not isinstance(leaf, StrawberryMaybe):
        leaf = leaf.of_type
    if leaf is not GlobalID and is_leaf_type(leaf, scalar_registry):
        # copied: graphql-core gives every request that omits it the same default list
        return lambda value: value if value is None or value is UNSET else list(value)
    item = converter(item_type, scalar_registry, config)
    if item is None:
        return None
    return lambda value: value if value is None or value is UNSET else [
        item(entry) for entry in value]


def _input_converter(type_: Any, scalar_registry: Any, config: Any) -> Convert | None:
    definition = type_.__strawberry_definition__
    if definition.from_input is not None:
        return None
    implicit = {field.python_name: None for field in definition.fields
                if field.default_value is MISSING and field.default_factory is MISSING} \
        if definition.is_input else {}
    fields = []
    for field in definition.fields:
        convert = converter(field.resolve_type(type_definition=definition), scalar_registry,
                            config)
        if convert is None:
            return None
        fields.append((config.name_converter.from_field(field), field.python_name, convert))

    def build(value: Any) -> Any:
        if value is None or value is UNSET:
            return value
        kwargs = dict(implicit)
        for name, python, convert in fields:
            if name in value:
                kwargs[python] = convert(value[name])
        return type_(**kwargs)

    return build
