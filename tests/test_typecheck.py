"""The type check that `make test` runs (`make typecheck`: mypy, configured in pyproject.toml)
fails on a type error: each test plants one in a real module of the tree, through mypy's
``--shadow-file`` (the module's own text plus the error, the file itself untouched), and
runs mypy with the project's configuration on it."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

UNTYPED = "\n\ndef planted(value):\n    return value\n"
WRONG = '\n\ncount: int = "three"\n'


def mypy_with(module: str, planted: str, tmp_path: Path) -> subprocess.CompletedProcess[str]:
    shadow = tmp_path / Path(module).name
    shadow.write_text((ROOT / module).read_text() + planted)
    cache = ROOT / ".mypy_cache"  # `make typecheck`'s, as `make test` leaves it: a copy, warm
    if cache.is_dir():  # (mypy checks again whatever the shadow file changes)
        shutil.copytree(cache, tmp_path / "cache")
    return subprocess.run(
        [sys.executable, "-m", "mypy", "--config-file", str(ROOT / "pyproject.toml"),
         "--cache-dir", str(tmp_path / "cache"), "--shadow-file", module, str(shadow), module],
        cwd=ROOT, capture_output=True, text=True, timeout=600)


def test_the_module_checks_clean_as_it_is(tmp_path: Path) -> None:
    """The baseline: without a planted error the same command passes."""
    result = mypy_with("repository/mongo_types.py", "", tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr


def test_a_type_error_in_the_repository_fails_strictly(tmp_path: Path) -> None:
    result = mypy_with("repository/mongo_types.py", UNTYPED + WRONG, tmp_path)
    assert result.returncode == 1, result.stdout + result.stderr
    assert "[no-untyped-def]" in result.stdout  # strict: every function annotated
    assert "[assignment]" in result.stdout


def test_an_untyped_function_in_the_schema_fails(tmp_path: Path) -> None:
    result = mypy_with("graph/schema/core/enums.py", UNTYPED, tmp_path)
    assert result.returncode == 1, result.stdout + result.stderr
    assert "[no-untyped-def]" in result.stdout


def test_make_test_runs_the_type_check() -> None:
    """`make test` depends on `make typecheck`, which runs mypy over the configured tree."""
    dry = subprocess.run(["make", "-n", "test"], cwd=ROOT, capture_output=True, text=True,
                         timeout=120)
    assert "/mypy" in dry.stdout, dry.stdout + dry.stderr
