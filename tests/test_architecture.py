"""graph/ is built in rooms by concern, and imports only go down.

Each room may import its own modules and the rooms below it, never a room above it nor
a peer on its own level; no module imports another that (directly or not) imports it at
run time (imports under ``if TYPE_CHECKING:`` are for the type checker and do not count
for circles, as Strawberry's ``strawberry.lazy`` types need them); ``repository/``
imports nothing of ``graph/`` and no GraphQL library.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent

LAYERS: tuple[tuple[str, ...], ...] = (
    ("graph.commands",),
    ("graph.server",),
    ("graph.schema",),
    ("graph.engine", "graph.realtime", "graph.loops"),
    ("graph.auth",),
    ("graph.config",),
    ("graph.support",),
)
"""Top to bottom: a room imports only from rooms on a lower line."""

SCHEMA_CORE = "graph.schema.core"
FORBIDDEN_IN_REPOSITORY = ("graph", "strawberry", "graphql", "starlette")
FORBIDDEN_IN_GRAPH = ("pymongo", "bson", "motor")
"""The database driver is the repository's business (it names what graph/ needs)."""


@dataclass(frozen=True)
class Import:
    importer: str
    imported: str
    line: int
    type_only: bool


def module_name(path: Path, root: Path) -> str:
    parts = list(path.relative_to(root).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _type_checking_lines(tree: ast.Module) -> set[int]:
    lines: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            for child in node.body:
                for inner in ast.walk(child):
                    if hasattr(inner, "lineno"):
                        lines.add(inner.lineno)
    return lines


def imports_of(path: Path, root: Path) -> Iterator[Import]:
    name = module_name(path, root)
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    tree = ast.parse(path.read_text(), str(path))
    type_only = _type_checking_lines(tree)
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield Import(name, alias.name, node.lineno, node.lineno in type_only)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[: len(base) - (node.level - 1)]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module or ""
            for alias in node.names:  # `from pkg import module` imports that module
                candidate = f"{target}.{alias.name}"
                resolved = candidate if _is_module(candidate, root) else target
                yield Import(name, resolved, node.lineno, node.lineno in type_only)


def _is_module(name: str, root: Path) -> bool:
    path = root.joinpath(*name.split("."))
    return path.with_suffix(".py").exists() or (path / "__init__.py").exists()


def all_imports(root: Path, package: str) -> list[Import]:
    return [found for path in sorted((root / package).rglob("*.py"))
            for found in imports_of(path, root)]


def layer_of(module: str) -> int | None:
    for index, rooms in enumerate(LAYERS):
        if any(module == room or module.startswith(room + ".") for room in rooms):
            return index
    return None


def room_of(module: str) -> str | None:
    for rooms in LAYERS:
        for room in rooms:
            if module == room or module.startswith(room + "."):
                return room
    return None


def upward_imports(imports: list[Import]) -> list[str]:
    """Each arrow that leaves its room for a room above it or beside it."""
    problems = []
    for found in imports:
        if not found.imported.startswith("graph"):
            continue
        mine, theirs = room_of(found.importer), room_of(found.imported)
        if found.importer.startswith("graph.") and mine is None:
            problems.append(f"{found.importer} sits in no room")
            continue
        if theirs is None or mine == theirs:
            if (found.importer.startswith(SCHEMA_CORE + ".")
                    and found.imported.startswith("graph.schema.")
                    and not found.imported.startswith(SCHEMA_CORE)):
                problems.append(f"{found.importer}:{found.line} imports {found.imported} "
                                f"(schema.core is below every domain)")
            continue
        if layer_of(theirs) <= layer_of(mine):  # type: ignore[operator]
            problems.append(f"{found.importer}:{found.line} imports {found.imported} "
                            f"({theirs} is not below {mine})")
    return problems


def circles(imports: list[Import]) -> list[list[str]]:
    """Cycles of run-time imports between modules."""
    graph: dict[str, set[str]] = {}
    for found in imports:
        if not found.type_only and found.imported != found.importer:
            graph.setdefault(found.importer, set()).add(found.imported)
    found_cycles: list[list[str]] = []
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(node: str) -> None:
        state[node] = 1
        stack.append(node)
        for nxt in sorted(graph.get(node, ())):
            if state.get(nxt) == 1:
                found_cycles.append([*stack[stack.index(nxt):], nxt])
            elif nxt not in state:
                visit(nxt)
        stack.pop()
        state[node] = 2

    for node in sorted(graph):
        if node not in state:
            visit(node)
    return found_cycles


def test_graph_imports_only_go_down() -> None:
    assert upward_imports(all_imports(ROOT, "graph")) == []


def test_no_module_imports_itself_in_a_circle() -> None:
    assert circles(all_imports(ROOT, "graph")) == []


def test_every_graph_module_lives_in_a_room() -> None:
    loose = [path.name for path in (ROOT / "graph").glob("*.py") if path.name != "__init__.py"]
    assert loose == []
    for package in (ROOT / "graph").rglob("__init__.py"):
        tree = ast.parse(package.read_text())
        assert ast.get_docstring(tree), f"{package.relative_to(ROOT)} has no opening docstring"


def test_repository_imports_nothing_of_graph_nor_graphql() -> None:
    offending = [f"{found.importer}:{found.line} imports {found.imported}"
                 for found in all_imports(ROOT, "repository")
                 if found.imported.split(".")[0] in FORBIDDEN_IN_REPOSITORY]
    assert offending == []


def test_graph_imports_no_database_driver() -> None:
    offending = [f"{found.importer}:{found.line} imports {found.imported}"
                 for found in all_imports(ROOT, "graph")
                 if found.imported.split(".")[0] in FORBIDDEN_IN_GRAPH]
    assert offending == []


@pytest.fixture
def planted(tmp_path: Path) -> Path:
    """A small tree shaped like graph/, for checking the checker itself."""
    for package in ("graph", "graph/config", "graph/server", "graph/schema",
                    "graph/schema/core", "graph/schema/jobs"):
        (tmp_path / package).mkdir()
        (tmp_path / package / "__init__.py").write_text('"""Room."""\n')
    (tmp_path / "graph/config/settings.py").write_text("X = 1\n")
    (tmp_path / "graph/server/app.py").write_text("from graph.schema.jobs import types\n")
    (tmp_path / "graph/schema/jobs/types.py").write_text("from ...config import settings\n")
    return tmp_path


def test_the_checker_accepts_downward_imports(planted: Path) -> None:
    imports = all_imports(planted, "graph")
    assert upward_imports(imports) == [] and circles(imports) == []


def test_the_checker_finds_a_planted_upward_import(planted: Path) -> None:
    (planted / "graph/config/settings.py").write_text("from graph.server import app\n")
    assert upward_imports(all_imports(planted, "graph")) == [
        "graph.config.settings:1 imports graph.server.app "
        "(graph.server is not below graph.config)"]


def test_the_checker_finds_core_importing_a_domain(planted: Path) -> None:
    (planted / "graph/schema/core/context.py").write_text("from ..jobs import types\n")
    assert upward_imports(all_imports(planted, "graph")) == [
        "graph.schema.core.context:1 imports graph.schema.jobs.types "
        "(schema.core is below every domain)"]


def test_the_checker_finds_a_planted_circle(planted: Path) -> None:
    (planted / "graph/schema/jobs/queries.py").write_text("from . import types\n")
    (planted / "graph/schema/jobs/types.py").write_text("from . import queries\n")
    assert circles(all_imports(planted, "graph")) == [
        ["graph.schema.jobs.queries", "graph.schema.jobs.types", "graph.schema.jobs.queries"]]


def test_a_type_only_import_makes_no_circle(planted: Path) -> None:
    (planted / "graph/schema/jobs/queries.py").write_text("from . import types\n")
    (planted / "graph/schema/jobs/types.py").write_text(
        "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from . import queries\n")
    assert circles(all_imports(planted, "graph")) == []


INTERNALS = "graph.engine.internals"
INTERNAL_MODULES = ("strawberry.schema.schema", "strawberry.schema.schema_converter",
                    "strawberry.schema.types", "strawberry.types.arguments",
                    "graphql.pyutils.gather_with_cancel")


def private_uses(root: Path) -> list[str]:
    """Imports of a dependency's private or internal API outside ``graph.engine.internals``."""
    found = []
    for path in sorted((root / "graph").rglob("*.py")):
        if module_name(path, root) == INTERNALS:
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            if not isinstance(node, ast.ImportFrom) or node.level or not node.module:
                continue
            if node.module.split(".")[0] not in ("strawberry", "graphql"):
                continue
            private = any(part.startswith("_") for part in node.module.split(".")) or any(
                alias.name.startswith("_") for alias in node.names)
            if private or node.module.startswith(INTERNAL_MODULES):
                found.append(f"{path.relative_to(root)}:{node.lineno} {node.module}")
    return found


def test_internals_of_dependencies_are_used_in_one_place() -> None:
    assert private_uses(ROOT) == []
