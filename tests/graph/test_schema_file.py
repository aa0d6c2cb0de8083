"""schema.graphql is generated from the code; this fails when they drift apart."""

import gc
import weakref
from pathlib import Path

from graphql import (
    GraphQLEnumType,
    GraphQLInputObjectType,
    GraphQLInterfaceType,
    GraphQLObjectType,
    GraphQLSchema,
    build_ast_schema,
    parse,
    specified_scalar_types,
)

from graph.commands.cli import main
from graph.schema.root import build_schema, export_sdl

SCHEMA_FILE = Path(__file__).resolve().parents[2] / "schema.graphql"


def test_schema_file_matches_the_code() -> None:
    assert SCHEMA_FILE.read_text() == export_sdl(), (
        "schema.graphql is stale: run `make schema` (jobgraph export-schema > schema.graphql)"
    )


def test_export_schema_command_writes_the_sdl(tmp_path: Path) -> None:
    target = tmp_path / "out.graphql"
    assert main(["export-schema", "--output", str(target)]) == 0
    assert target.read_text() == export_sdl()
    assert "type SecretaryJob" in target.read_text()


def undocumented(schema: GraphQLSchema) -> list[str]:
    """Every type, field, argument, input field and enum value without a description."""
    missing = []
    for name, gql_type in schema.type_map.items():
        if name.startswith("__") or name in specified_scalar_types:
            continue
        if not gql_type.description:
            missing.append(name)
        if isinstance(gql_type, GraphQLObjectType | GraphQLInterfaceType):
            for field_name, field in gql_type.fields.items():
                if not field.description:
                    missing.append(f"{name}.{field_name}")
                missing += [f"{name}.{field_name}({arg})" for arg, value in field.args.items()
                            if not value.description]
        elif isinstance(gql_type, GraphQLInputObjectType):
            missing += [f"{name}.{field}" for field, value in gql_type.fields.items()
                        if not value.description]
        elif isinstance(gql_type, GraphQLEnumType):
            missing += [f"{name}.{value}" for value, definition in gql_type.values.items()
                        if not definition.description]
    return missing


def test_every_type_field_argument_and_enum_value_has_a_description() -> None:
    from graph.schema.root import build_schema

    assert undocumented(build_schema()._schema) == []


def test_the_description_check_finds_what_is_undocumented() -> None:
    schema = build_ast_schema(parse(
        '"a type" type Query { "a field" f(x: Int): E g: Int } '
        '"an input" input I { y: Int } "an enum" enum E { A "b" B } scalar S'))

    assert sorted(undocumented(schema)) == ["E.A", "I.y", "Query.f(x)", "Query.g", "S"]


def test_a_schema_no_longer_used_is_collected() -> None:
    """Strawberry's lru_cache on ``get_type_by_name`` and ``get_directive_by_name`` kept
    the last 128 schemas built alive (~8,000 objects each)."""
    # given a schema that has answered both lookups
    schema = build_schema()
    assert schema.get_type_by_name("DocumentationJob") is not None
    assert schema.get_type_by_name("NoSuchType") is None
    assert schema.get_directive_by_name("include") is None  # built in: not Strawberry's
    alive = weakref.ref(schema)

    # when it is dropped
    del schema
    gc.collect()

    # then nothing holds it
    assert alive() is None
