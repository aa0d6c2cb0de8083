"""schema.graphql is generated from the code; this fails when they drift apart."""

from pathlib import Path

from graph.commands.cli import main
from graph.schema.root import export_sdl

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


def test_every_type_and_field_has_a_description() -> None:
    from graphql import GraphQLInputObjectType, GraphQLObjectType

    from graph.schema.root import build_schema

    schema = build_schema()._schema
    missing = []
    for name, gql_type in schema.type_map.items():
        if name.startswith("__") or not isinstance(gql_type, GraphQLObjectType
                                                   | GraphQLInputObjectType):
            continue
        if name in ("Query", "Mutation", "Subscription"):
            pass
        elif not gql_type.description:
            missing.append(name)
        if isinstance(gql_type, GraphQLObjectType):
            missing += [f"{name}.{field}" for field, value in gql_type.fields.items()
                        if not value.description]
    assert missing == []
