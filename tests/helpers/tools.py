"""Tools outside Python that some tests drive (Node and its packages, Chromium).

Missing on a developer's machine, such a test skips with a one-line reason; under CI
(``CI=true``) the same absence fails it, so CI can never pass by skipping the clients.
"""

from __future__ import annotations

import importlib
import os
import shutil
from pathlib import Path
from types import ModuleType
from typing import NoReturn

import pytest

ROOT = Path(__file__).resolve().parents[2]
NODE_CLIENTS = ROOT / "tests" / "clients"
"""The npm packages of the Node client tests: package.json, package-lock.json."""


def in_ci() -> bool:
    return os.environ.get("CI", "").strip().lower() in ("true", "1")


def unavailable(reason: str) -> NoReturn:
    """Skip the test, or fail it when running under CI."""
    if in_ci():
        pytest.fail(f"CI=true, so this test may not skip: {reason}", pytrace=False)
    pytest.skip(reason)


def require_tool(name: str, hint: str) -> str:
    """The path of executable ``name``; skips (fails under CI) when it is not installed."""
    path = shutil.which(name)
    if path is None:
        unavailable(f"`{name}` is not installed ({hint})")
    return path


def require_node_packages() -> str:
    """The path of ``node``, once the pinned npm packages of tests/clients are installed."""
    node = require_tool("node", "install Node.js 20+ to run the JavaScript client tests")
    installed = NODE_CLIENTS / "node_modules" / ".package-lock.json"
    if not installed.exists():
        unavailable("the npm packages of tests/clients are not installed "
                    "(`make test` installs them; or `npm ci` in tests/clients)")
    if installed.stat().st_mtime < (NODE_CLIENTS / "package-lock.json").stat().st_mtime:
        unavailable("tests/clients/node_modules is older than package-lock.json "
                    "(`make test` reinstalls it; or `npm ci` in tests/clients)")
    return node


def require_module(name: str) -> ModuleType:
    """Python module ``name``, imported; skips (fails under CI) when it is not installed."""
    try:
        return importlib.import_module(name)
    except ImportError:
        unavailable(f"the Python package {name} is not installed (make test installs it)")
