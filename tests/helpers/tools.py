"""Third-party clients a test needs (a browser, a Python package): when one is missing the
test skips with a one-line reason, but under CI (CI=true), where .ci/run installs them, a
skip would hide a broken client, so it fails instead."""

from __future__ import annotations

import importlib
import os
import shutil
from types import ModuleType
from typing import NoReturn

import pytest


def missing(reason: str) -> NoReturn:
    if os.environ.get("CI", "").strip().lower() == "true":
        pytest.fail(f"{reason}; under CI=true this test must run, not skip", pytrace=False)
    pytest.skip(reason)


def require_executable(name: str) -> str:
    """The path of program ``name`` on PATH."""
    path = shutil.which(name)
    if path is None:
        missing(f"{name} is not installed (Debian: apt-get install {name})")
    return path


def require_module(name: str) -> ModuleType:
    """Python module ``name``, imported."""
    try:
        return importlib.import_module(name)
    except ImportError:
        missing(f"the Python package {name} is not installed (pip install -e '.[dev]')")
