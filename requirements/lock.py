"""`make lock`: regenerate the lock files from pyproject.toml with uv.

Every install (make, CI, the Docker image) comes from these files, with hashes, so a
release published tomorrow changes nothing until someone relocks and commits. Each lock
is universal (one file for every supported Python and platform, markers where they
differ) and records a digest of pyproject's dependency tables, which
tests/test_lock.py recomputes: editing dependencies without relocking fails the suite.

Existing pins are kept where pyproject still allows them; `make lock UPGRADE=--upgrade`
moves everything to the newest allowed, `UPGRADE="--upgrade-package NAME"` one package.
Stdlib only, so it runs before anything is installed.
"""

from __future__ import annotations

import hashlib
import json
import os
import shlex
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PYPROJECT = ROOT / "pyproject.toml"
LOWEST_PYTHON = "3.11"
COMMON = ["--universal", "--generate-hashes", "--python-version", LOWEST_PYTHON,
          "--no-header", "--quiet"]
DIGEST_PREFIX = "# pyproject-digest: "

# name -> (what it is for, arguments after `uv pip compile`); dev first: the others
# are constrained by it, so the image runs the very versions the suite ran on.
LOCKS: dict[str, tuple[str, list[str]]] = {
    "dev.lock": ("runtime + [embedded] + [dev] + the build backend: make and CI",
                 ["pyproject.toml", "-", "--extra", "embedded", "--extra", "dev"]),
    "runtime.lock": ("runtime dependencies only: the Docker image",
                     ["pyproject.toml", "--constraint", "requirements/dev.lock"]),
    "build.lock": ("the build backend only: building the wheel in the Docker image",
                   ["-", "--constraint", "requirements/dev.lock"]),
}


def dependency_tables(pyproject: dict) -> dict:
    """What the locks are made from; anything else in pyproject.toml may change freely."""
    project = pyproject["project"]
    return {"requires-python": project.get("requires-python"),
            "dependencies": project.get("dependencies", []),
            "optional-dependencies": project.get("optional-dependencies", {}),
            "build-system": pyproject["build-system"].get("requires", [])}


def digest(pyproject: dict) -> str:
    canonical = json.dumps(dependency_tables(pyproject), sort_keys=True, separators=(",", ":"))
    return "sha256:" + hashlib.sha256(canonical.encode()).hexdigest()


def uv_binary() -> str:
    beside = Path(sys.executable).parent / "uv"
    found = os.environ.get("UV") or (str(beside) if beside.exists() else shutil.which("uv"))
    if not found:
        raise SystemExit("lock: uv not found; run `make lock` (it installs the dev tools) "
                         "or set UV=/path/to/uv")
    return found


def main(extra: list[str]) -> int:
    pyproject = tomllib.loads(PYPROJECT.read_text())
    build_requires = "\n".join(pyproject["build-system"]["requires"]) + "\n"
    uv = uv_binary()
    for name, (purpose, args) in LOCKS.items():
        arguments = ["pip", "compile", *args, *COMMON, "--output-file",
                     f"requirements/{name}", *extra]
        stdin = build_requires if "-" in args else None
        subprocess.run([uv, *arguments], cwd=ROOT, input=stdin, text=True, check=True)
        path = ROOT / "requirements" / name
        header = [
            f"# requirements/{name}: {purpose}.",
            "# Do not edit: after changing pyproject.toml run `make lock` and commit both.",
            "# `make lock` (requirements/lock.py) runs, from the repository root:",
            f"#   uv {shlex.join(arguments)}",
        ]
        if stdin is not None:
            header.append("# with pyproject's [build-system] requires on standard input.")
        header.append(DIGEST_PREFIX + digest(pyproject))
        path.write_text("\n".join(header) + "\n" + path.read_text())
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
