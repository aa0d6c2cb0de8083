"""Hypothesis strategies for hostile GraphQL variables, derived from ``schema.graphql``.

``arguments(field, ids)`` draws the variables of one mutation from the types its
arguments declare: mostly well-typed but hostile values (operator-looking strings
and keys, NUL, huge and empty strings, odd list sizes, deep JSON), sometimes values
of the wrong type. Each draw says whether the GraphQL layer must refuse it
(``invalid``): then the only acceptable answer is GRAPHQL_VALIDATION_FAILED.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from graphql import (
    GraphQLArgument,
    GraphQLEnumType,
    GraphQLField,
    GraphQLInputField,
    GraphQLInputObjectType,
    GraphQLList,
    GraphQLNamedType,
    GraphQLNonNull,
    GraphQLObjectType,
    GraphQLScalarType,
    GraphQLSchema,
    build_schema,
    get_named_type,
    is_leaf_type,
    print_ast,
)
from hypothesis import strategies as st

SCHEMA_FILE = Path(__file__).resolve().parents[2] / "schema.graphql"
INT_MIN, INT_MAX = -(2**31), 2**31 - 1


def load_schema() -> GraphQLSchema:
    return build_schema(SCHEMA_FILE.read_text())


def mutation_names() -> list[str]:
    mutation = load_schema().mutation_type
    assert mutation is not None
    return list(mutation.fields)


# -- leaves ------------------------------------------------------------------------------------

OPERATOR_STRINGS = [
    '{"$ne": null}', '{"$gt": ""}', "$where", "$ne", "$gt", "$expr", "$function",
    "function() { return true; }", "this.status == 'PENDING'", "'; db.dropDatabase(); '",
    '{"$regex": ".*"}', ".*", "a.b", "$", "$$ROOT", "__proto__", "constructor", "_id",
    "null", "undefined", "true", "0", "-1", "NaN", "[object Object]",
]
"""Strings that mean something to MongoDB, JavaScript or a careless parser."""

HOSTILE_KEYS = [
    "$where", "$gt", "$ne", "$set", "$", "a.b", ".", "a\x00b", "\x00", "", " ", "_id",
    "__proto__", "ключ", "🔑", "$" * 50, "x" * 300,
]

LONE_SURROGATES = ["\ud800", "a\udfffb", "\udbff\ud800"]
"""Not Unicode scalar values: valid JSON escapes, but no UTF-8 (so no BSON) can hold them."""

weird_char = st.sampled_from(["\x00", "\u200b", "\u202e", "\ufeff", "\ufffd", "e\u0301",
                              "😀", "\U0001d54f", "\t", "\n", "\r", " ", "\x7f", "\u2028"])

long_text = st.builds(
    lambda chunk, size: (chunk * size)[:size],
    st.sampled_from(["x", "é", "😀", "$", "\x00", "ab "]),
    st.sampled_from([100, 101, 200, 201, 1000, 1001, 4096, 4097, 70_000, 300_000]),
)

_hostile_text = st.one_of(
    st.just(""),
    st.sampled_from([" ", "\t\n", "\u3000", "\x00", "a\x00b"]),
    st.sampled_from(OPERATOR_STRINGS),
    st.text(max_size=30),
    st.lists(st.one_of(weird_char, st.text(max_size=3)), max_size=8).map("".join),
    long_text,
)

surrogate_text = st.sampled_from(LONE_SURROGATES)

hostile_text = st.integers(1, 30).flatmap(lambda n: surrogate_text if n == 1 else _hostile_text)
"""Mostly sendable strings; one in thirty is a lone surrogate (the server refuses the body)."""

any_int = st.one_of(
    st.integers(INT_MIN, INT_MAX),
    st.sampled_from([0, -1, 1, 100, 101, -100, INT_MIN, INT_MAX]),
)
out_of_range_int = st.one_of(
    st.sampled_from([INT_MAX + 1, INT_MIN - 1, 2**63, -(2**63) - 1, 2**64, 10**30]),
    st.integers(min_value=INT_MAX + 1),
    st.integers(max_value=INT_MIN - 1),
)

finite_float = st.floats(allow_nan=False, allow_infinity=False)

json_key = st.one_of(
    st.sampled_from(HOSTILE_KEYS), st.text(max_size=10),
    st.integers(1, 40).flatmap(lambda n: surrogate_text if n == 1 else st.just("k")),
)
json_leaf = st.one_of(
    st.none(), st.booleans(), any_int, out_of_range_int, finite_float, hostile_text,
)


def _nest(depth: int, leaf: Any, key: str) -> Any:
    value = leaf
    for level in range(depth):
        value = {key: value} if level % 2 else [value]
    return value


json_value = st.one_of(
    st.recursive(
        json_leaf,
        lambda children: st.one_of(
            st.lists(children, max_size=6),
            st.dictionaries(json_key, children, max_size=6),
        ),
        max_leaves=25,
    ),
    # nesting past the stored-document depth limit (20), but well within JSON parsers'
    st.builds(_nest, st.integers(15, 120), json_leaf, json_key),
)
json_object = st.dictionaries(json_key, json_value, max_size=8)

WRONG_VALUES = [
    {"$ne": None}, {"$gt": ""}, {"$where": "sleep(100)"}, {}, [{"$ne": None}],
    1.5, -0.5, True, False,
]


# -- drawing variables from types ------------------------------------------------------------


@dataclass
class Ids:
    """Ids the strategies pick from: existing objects by kind, plus hostile ones."""

    jobs: list[str] = field(default_factory=list)
    batches: list[str] = field(default_factory=list)
    documentation_jobs: list[str] = field(default_factory=list)

    def all(self) -> list[str]:
        return [*self.jobs, *self.batches, *self.documentation_jobs]


@dataclass
class Drawn:
    """Variables for one request and whether GraphQL coercion must refuse them."""

    variables: dict[str, Any]
    invalid: bool
    reasons: list[str]
    unsure: bool = False


class _Draw:
    def __init__(self, draw: Any, schema: GraphQLSchema, ids: list[str], all_ids: list[str],
                 wrong_rate: int | None) -> None:
        self.draw = draw
        self.schema = schema
        self.ids = ids
        self.all_ids = all_ids
        self.wrong_rate = wrong_rate
        self.reasons: list[str] = []
        self.unsure: list[str] = []
        """Values of scalars this module does not know; GraphQL may refuse them or not."""

    def maybe(self, one_in: int) -> bool:
        return self.draw(st.integers(1, one_in)) == 1

    def ill_typed(self, weight: int = 1) -> bool:
        """Whether to put a value of the wrong type here (never in well-typed draws)."""
        return self.wrong_rate is not None and self.maybe(self.wrong_rate * weight)

    def wrong(self, path: str, why: str) -> None:
        self.reasons.append(f"{path}: {why}")

    def value(self, type_: Any, path: str) -> Any:
        if isinstance(type_, GraphQLNonNull):
            if self.ill_typed(3):
                self.wrong(path, "null for a non-null type")
                return None
            return self.nullable(type_.of_type, path)
        if self.maybe(8):
            return None
        return self.nullable(type_, path)

    def nullable(self, type_: Any, path: str) -> Any:
        if isinstance(type_, GraphQLList):
            return self.list_value(type_, path)
        assert isinstance(type_, GraphQLNamedType)
        if self.ill_typed() and not _accepts_anything(type_):
            wrong = self.draw(st.one_of(st.sampled_from(WRONG_VALUES), st.just([]),
                                        st.just("not-" + type_.name)))
            if not _coercible(type_, wrong):
                self.wrong(path, f"{wrong!r} for {type_.name}")
                return wrong
        if isinstance(type_, GraphQLInputObjectType):
            return self.input_object(type_, path)
        if isinstance(type_, GraphQLEnumType):
            if self.ill_typed():
                name = self.draw(st.sampled_from(["", "pending", "PUBLIC ", "$ne", "DELETED"]))
                if name not in type_.values:
                    self.wrong(path, f"{name!r} is not a {type_.name}")
                    return name
            return self.draw(st.sampled_from(sorted(type_.values)))
        assert isinstance(type_, GraphQLScalarType)
        return self.scalar(type_, path)

    def list_value(self, type_: GraphQLList, path: str) -> Any:
        if self.maybe(10):  # a single (non-null) value is coerced to a list of one
            item = type_.of_type
            if isinstance(item, GraphQLNonNull):
                return self.nullable(item.of_type, f"{path}[0]")
            return self.nullable(item, f"{path}[0]")
        size = self.draw(st.one_of(st.integers(0, 4), st.sampled_from([0, 1, 99, 100, 101, 150])))
        if size > 10:  # keep big lists cheap: one drawn item, repeated or varied by index
            item = self.value(type_.of_type, f"{path}[*]")
            if isinstance(item, str) and self.maybe(2):
                return [f"{item}{index}" for index in range(size)]
            return [item] * size
        return [self.value(type_.of_type, f"{path}[{index}]") for index in range(size)]

    def input_object(self, type_: GraphQLInputObjectType, path: str) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for name, input_field in type_.fields.items():
            if _required(input_field) and self.ill_typed(3):
                self.wrong(f"{path}.{name}", "required field missing")
                continue
            if not _required(input_field) and self.maybe(3):
                continue
            out[name] = self.value(input_field.type, f"{path}.{name}")
        if self.ill_typed(2):
            extra = self.draw(st.sampled_from(["$where", "$set", "_id", "unknownField"]))
            if extra not in type_.fields:
                self.wrong(f"{path}.{extra}", "unknown field")
                out[extra] = {"$ne": None}
        return out

    def scalar(self, type_: GraphQLScalarType, path: str) -> Any:
        name = type_.name
        if name == "ID":
            pick = self.draw(st.integers(1, 10))
            if pick <= 6:  # mostly an existing object of the mutation's kind
                return self.draw(st.sampled_from(self.ids or ["missing"]))
            if pick == 7:
                return self.draw(st.sampled_from(self.all_ids or ["missing"]))
            return self.draw(st.one_of(
                st.sampled_from(OPERATOR_STRINGS),
                hostile_text,
                st.integers(-(2**70), 2**70),  # IDs accept integers (as strings)
            ))
        if name == "String":
            return self.draw(st.one_of(hostile_text, st.sampled_from(["pdf", "claimed"])))
        if name == "Int":
            if self.ill_typed():
                self.wrong(path, "outside the 32-bit Int range")
                return self.draw(out_of_range_int)
            return self.draw(any_int)
        if name == "Float":
            return self.draw(finite_float)
        if name == "Boolean":
            return self.draw(st.booleans())
        if name == "JSON":
            return self.draw(st.one_of(json_object, json_value))
        # DateTime and scalars added later: strings, sometimes not the expected format
        self.unsure.append(f"{path}: {name}")
        return self.draw(st.one_of(
            st.datetimes().map(lambda moment: moment.isoformat()), hostile_text))


def _required(item: GraphQLArgument | GraphQLInputField) -> bool:
    node = item.ast_node
    has_default = node is not None and node.default_value is not None
    return isinstance(item.type, GraphQLNonNull) and not has_default


def _accepts_anything(type_: GraphQLNamedType) -> bool:
    return isinstance(type_, GraphQLScalarType) and type_.name == "JSON"


def _coercible(type_: GraphQLNamedType, value: Any) -> bool:
    """Whether GraphQL input coercion accepts ``value`` for ``type_`` (for WRONG_VALUES)."""
    if isinstance(type_, GraphQLInputObjectType):
        return False  # WRONG_VALUES hold no complete input object
    if isinstance(type_, GraphQLEnumType):
        return isinstance(value, str) and value in type_.values
    name = type_.name
    if name == "String":
        return isinstance(value, str)
    if name == "Boolean":
        return isinstance(value, bool)
    if name in ("ID", "Int"):
        if isinstance(value, str):
            return name == "ID"
        integral = (isinstance(value, int | float) and not isinstance(value, bool)
                    and math.isfinite(value) and value == int(value))
        return integral and (name == "ID" or INT_MIN <= value <= INT_MAX)
    if name == "Float":
        return isinstance(value, int | float) and not isinstance(value, bool)
    return True  # unknown scalars: no claim either way, so not counted as invalid


@st.composite
def arguments(draw: Any, mutation: str, ids: Ids, *, wrong_rate: int = 6) -> Drawn:
    """Variables for every argument of ``mutation``; optional ones are sometimes left out.

    One draw in three is ill-typed: each value in it is of the wrong type (or missing,
    or null where that is not allowed) with probability about ``1/wrong_rate``.
    """
    schema = load_schema_cached()
    assert schema.mutation_type is not None
    field_ = schema.mutation_type.fields[mutation]
    kind = get_named_type(field_.type).name
    own = {"BatchJob": ids.batches, "DocumentationJob": ids.documentation_jobs}.get(kind, ids.jobs)
    ill_typed = draw(st.integers(1, 3)) == 1
    state = _Draw(draw, schema, own, ids.all(), wrong_rate if ill_typed else None)
    variables: dict[str, Any] = {}
    for name, argument in field_.args.items():
        if not _required(argument) and state.maybe(3):
            continue
        if _required(argument) and state.ill_typed(4):
            state.wrong(name, "required variable not provided")
            continue
        variables[name] = state.value(argument.type, name)
    return Drawn(variables, bool(state.reasons), state.reasons, bool(state.unsure))


_SCHEMA: list[GraphQLSchema] = []


def load_schema_cached() -> GraphQLSchema:
    if not _SCHEMA:
        _SCHEMA.append(load_schema())
    return _SCHEMA[0]


# -- the operation ---------------------------------------------------------------------------


def operation(mutation: str, *, depth: int = 2) -> str:
    """``mutation($a: T!, ...) { name(a: $a, ...) { <every field to ``depth``> } }``."""
    schema = load_schema_cached()
    assert schema.mutation_type is not None
    field_ = schema.mutation_type.fields[mutation]
    definitions = ", ".join(f"${name}: {argument.type}{_default(argument)}"
                            for name, argument in field_.args.items())
    passed = ", ".join(f"{name}: ${name}" for name in field_.args)
    head = f"mutation Hostile({definitions})" if definitions else "mutation Hostile"
    call = f"{mutation}({passed})" if passed else mutation
    return f"{head} {{ {call}{selection(field_, depth)} }}"


def _default(argument: GraphQLArgument) -> str:
    """`` = value`` when the argument has a default, so leaving the variable out uses it."""
    node = argument.ast_node
    if node is None or node.default_value is None:
        return ""
    return f" = {print_ast(node.default_value)}"


def selection(field_: GraphQLField, depth: int) -> str:
    named = get_named_type(field_.type)
    if is_leaf_type(named):
        return ""
    assert isinstance(named, GraphQLObjectType)
    parts = ["__typename"]
    for name, child in named.fields.items():
        if any(_required(argument) for argument in child.args.values()):
            continue
        child_type = get_named_type(child.type)
        if is_leaf_type(child_type):
            parts.append(name)
        elif depth > 1:
            parts.append(name + selection(child, depth - 1))
    return " { " + " ".join(parts) + " }"


# -- what a server can accept as JSON ------------------------------------------------------


def strict_json(value: Any, depth: int = 0, max_depth: int = 1000) -> bool:
    """JSON any conforming parser reads the same: finite numbers, Unicode scalar strings,
    containers nested no deeper than ``max_depth`` (``value`` itself at ``depth``)."""
    if isinstance(value, float):
        return math.isfinite(value)
    if isinstance(value, str):
        return _encodable(value)
    if isinstance(value, Mapping | list | tuple) and depth > max_depth:
        return False
    if isinstance(value, Mapping):
        return all(_encodable(key) and strict_json(item, depth + 1, max_depth)
                   for key, item in value.items())
    if isinstance(value, list | tuple):
        return all(strict_json(item, depth + 1, max_depth) for item in value)
    return True


def _encodable(text: str) -> bool:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True
