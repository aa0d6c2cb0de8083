"""The lock files agree with pyproject.toml, checked offline.

Every install comes from requirements/*.lock; a dependency edited in pyproject.toml
without `make lock` would otherwise go unnoticed until someone's fresh install differs.
"""

from __future__ import annotations

import copy
import importlib.util
import re
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType

import pytest
from packaging.markers import Marker
from packaging.requirements import Requirement
from packaging.specifiers import SpecifierSet
from packaging.utils import canonicalize_name
from packaging.version import Version

ROOT = Path(__file__).resolve().parent.parent
LOCKS = ("dev.lock", "runtime.lock", "build.lock")


@dataclass
class Pin:
    name: str
    version: str
    marker: Marker | None
    hashes: list[str] = field(default_factory=list)


def load_lock_script() -> ModuleType:
    spec = importlib.util.spec_from_file_location("lock_script", ROOT / "requirements/lock.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def pyproject() -> dict:
    return tomllib.loads((ROOT / "pyproject.toml").read_text())


def pins(name: str) -> list[Pin]:
    """Each requirement line of a lock file, its continuation lines joined."""
    text = (ROOT / "requirements" / name).read_text()
    logical = re.sub(r"\\\n", " ", text)
    result = []
    for line in logical.splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        words = line.split(" --hash=")
        requirement = Requirement(words[0].strip())
        (specifier,) = requirement.specifier  # exactly one: ==version
        assert specifier.operator == "==", line
        result.append(Pin(canonicalize_name(requirement.name), specifier.version,
                          requirement.marker, [word.strip() for word in words[1:]]))
    return result


def supported_pythons() -> list[str]:
    prefix = "Programming Language :: Python :: 3."
    return [classifier.rsplit(" ", 1)[1] for classifier in pyproject()["project"]["classifiers"]
            if classifier.startswith(prefix)]


def environment(python: str, extra: str = "") -> dict[str, str]:
    """Markers as on a CPython of that version, on this platform."""
    return {"python_version": python, "python_full_version": f"{python}.0", "extra": extra}


def applies(marker: Marker | None, env: dict[str, str]) -> bool:
    return marker is None or marker.evaluate(env)


def roots() -> dict[str, list[tuple[Requirement, str]]]:
    """Each lock's direct requirements from pyproject.toml, with the extra they come from."""
    data = pyproject()
    runtime = [(Requirement(text), "") for text in data["project"]["dependencies"]]
    build = [(Requirement(text), "") for text in data["build-system"]["requires"]]
    extras = [(Requirement(text), extra)
              for extra, texts in data["project"]["optional-dependencies"].items()
              for text in texts]
    return {"runtime.lock": runtime, "build.lock": build,
            "dev.lock": runtime + build + extras}


def test_dev_lock_holds_every_extra() -> None:
    # the Makefile installs dev.lock alone: it must cover every extra there is
    assert set(pyproject()["project"]["optional-dependencies"]) == {"embedded", "dev"}


@pytest.mark.parametrize("lock", LOCKS)
def test_lock_records_the_digest_of_pyprojects_dependency_tables(lock: str) -> None:
    script = load_lock_script()
    text = (ROOT / "requirements" / lock).read_text()
    recorded = [line.removeprefix(script.DIGEST_PREFIX) for line in text.splitlines()
                if line.startswith(script.DIGEST_PREFIX)]
    assert recorded == [script.digest(pyproject())], (
        f"requirements/{lock} was made from other dependencies than pyproject.toml now "
        "lists: run `make lock` and commit the lock files")
    assert "`make lock`" in text.split("\n", 5)[1]


@pytest.mark.parametrize("table", ["requires-python", "dependencies",
                                   "optional-dependencies", "build-system"])
def test_the_digest_changes_with_each_dependency_table(table: str) -> None:
    script = load_lock_script()
    before = pyproject()
    after = copy.deepcopy(before)
    if table == "requires-python":
        after["project"]["requires-python"] = ">=3.10"
    elif table == "dependencies":
        after["project"]["dependencies"].append("six")
    elif table == "optional-dependencies":
        after["project"]["optional-dependencies"]["dev"][0] += ",<99"
    else:
        after["build-system"]["requires"].append("wheel")
    assert script.digest(after) != script.digest(before)
    # and what the locks do not depend on may change freely
    after = copy.deepcopy(before)
    after["project"]["description"] = "changed"
    assert script.digest(after) == script.digest(before)


@pytest.mark.parametrize("lock", LOCKS)
def test_every_pin_is_exact_and_hashed(lock: str) -> None:
    found = pins(lock)
    assert found
    for pin in found:
        assert pin.hashes, f"{pin.name} has no --hash in {lock}"
        assert all(re.fullmatch(r"sha256:[0-9a-f]{64}", digest) for digest in pin.hashes)


@pytest.mark.parametrize("lock", LOCKS)
@pytest.mark.parametrize("python", supported_pythons())
def test_every_requirement_is_pinned_within_its_specifier(lock: str, python: str) -> None:
    locked = pins(lock)
    for requirement, extra in roots()[lock]:
        if not applies(requirement.marker, environment(python, extra)):
            continue
        name = canonicalize_name(requirement.name)
        chosen = [pin for pin in locked
                  if pin.name == name and applies(pin.marker, environment(python))]
        assert len(chosen) == 1, (
            f"{requirement} (from pyproject.toml) has {len(chosen)} pins in {lock} for "
            f"Python {python}: run `make lock`")
        assert requirement.specifier.contains(chosen[0].version, prereleases=True), (
            f"{lock} pins {name}=={chosen[0].version}, outside {requirement}")


@pytest.mark.parametrize("lock", ["runtime.lock", "build.lock"])
def test_the_image_locks_pin_what_the_suite_ran_on(lock: str) -> None:
    dev = {(pin.name, pin.version): pin.hashes for pin in pins("dev.lock")}
    for pin in pins(lock):
        assert dev.get((pin.name, pin.version)) == pin.hashes, (
            f"{lock} pins {pin.name}=={pin.version}, which dev.lock does not")


def test_dev_only_packages_stay_out_of_the_runtime_lock() -> None:
    runtime = {pin.name for pin in pins("runtime.lock")}
    # (httpx is a runtime dependency now: the webhook dispatcher sends with it)
    for leaked in ("secantusdb", "pytest", "standardwebhooks", "hypothesis", "setuptools",
                   "uv"):
        assert leaked not in runtime


def test_supported_pythons_agree_everywhere() -> None:
    versions = supported_pythons()
    assert versions == sorted(versions, key=Version) and versions
    requires = SpecifierSet(pyproject()["project"]["requires-python"])
    assert all(f"{version}.0" in requires for version in versions)
    lowest, highest = Version(versions[0]), Version(versions[-1])
    # nothing claimed beyond the classifiers, either side
    assert f"{lowest.major}.{lowest.minor - 1}.0" not in requires
    assert f"{highest.major}.{highest.minor + 1}.0" not in requires
    # the Makefile looks for exactly these, newest first; the locks start at the lowest
    makefile = (ROOT / "Makefile").read_text()
    (listed,) = re.findall(r"^SUPPORTED_PYTHONS := (.*)$", makefile, re.MULTILINE)
    assert listed.split() == [f"python{version}" for version in reversed(versions)]
    assert versions[0] == load_lock_script().LOWEST_PYTHON
