"""The Dockerfile and docker-compose.yml, checked as text (no Docker engine here)."""

from __future__ import annotations

import re
import shlex
from pathlib import Path
from typing import Any

import pytest
import yaml

from graph.config.settings import Settings

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def dockerfile() -> str:
    # join continuation lines, so each instruction is one line
    return re.sub(r"\\\n\s*", " ", (ROOT / "Dockerfile").read_text())


@pytest.fixture(scope="module")
def stages(dockerfile: str) -> list[list[str]]:
    """The instructions of each stage, comments dropped."""
    result: list[list[str]] = []
    for line in dockerfile.splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        if line.upper().startswith("FROM "):
            result.append([])
        result[-1].append(line)
    return result


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    return yaml.safe_load((ROOT / "docker-compose.yml").read_text())


def instructions(stage: list[str], keyword: str) -> list[str]:
    return [line[len(keyword):].strip() for line in stage
            if line.upper().startswith(keyword + " ")]


def test_dockerfile_builds_in_a_builder_stage_and_runs_slim(stages: list[list[str]]) -> None:
    assert len(stages) >= 2
    assert instructions(stages[0], "FROM")[0].lower().endswith("as builder")
    runtime = instructions(stages[-1], "FROM")[0].split()
    assert runtime[0] == "python:3.11-slim"
    assert any("--from=builder" in copy for copy in instructions(stages[-1], "COPY"))
    assert any("venv" in run for run in instructions(stages[0], "RUN"))


def test_dockerfile_installs_no_dev_or_embedded_dependencies(stages: list[list[str]]) -> None:
    lowered = "\n".join(line for stage in stages for line in stage).lower()
    assert "secantus" not in lowered
    assert "[dev" not in lowered and "[embedded" not in lowered
    assert "pytest" not in lowered


def pip_installs(stage: list[str]) -> list[list[str]]:
    """The words of each `pip install` in the stage's RUN lines."""
    found = []
    for run in instructions(stage, "RUN"):
        for command in re.split(r"&&|;", run):
            words = shlex.split(command)
            if "pip" in " ".join(words[:3]) and "install" in words:
                found.append(words)
    return found


def test_dockerfile_installs_only_from_the_locks(stages: list[list[str]]) -> None:
    installs = pip_installs(stages[0])
    # every install is either hash-checked from a lock, or the wheel with no resolving
    for words in installs:
        assert "--require-hashes" in words or "--no-deps" in words, " ".join(words)
        if "--require-hashes" in words:
            assert words[words.index("-r") + 1].startswith("requirements/")
    runtime = [words for words in installs if "requirements/runtime.lock" in words]
    assert runtime and runtime[0][0].startswith("/opt/venv/")
    (wheel,) = [words for words in installs if any(w.endswith(".whl") for w in words)]
    assert "--no-deps" in wheel and wheel[0].startswith("/opt/venv/")
    # the wheel is built with the locked backend, not one fetched at build time
    (build,) = [run for run in instructions(stages[0], "RUN") if "pip wheel" in run]
    assert "--no-build-isolation" in build and "--no-deps" in build
    assert any("requirements/build.lock" in words for words in installs)
    copied = " ".join(instructions(stages[0], "COPY"))
    assert "requirements/runtime.lock" in copied and "requirements/build.lock" in copied


def test_dockerfile_runs_as_a_non_root_user(stages: list[list[str]]) -> None:
    users = instructions(stages[-1], "USER")
    assert users, "the runtime stage sets no USER"
    user = users[-1].split(":")[0]
    assert user not in ("root", "0")


def test_dockerfile_exposes_8000_with_a_stdlib_healthcheck(stages: list[list[str]]) -> None:
    runtime = stages[-1]
    assert instructions(runtime, "EXPOSE") == ["8000"]
    (healthcheck,) = instructions(runtime, "HEALTHCHECK")
    assert "/healthz" in healthcheck
    assert "urllib.request" in healthcheck and "curl" not in healthcheck


def test_dockerfile_command_serves_on_all_interfaces(stages: list[list[str]]) -> None:
    (command,) = instructions(stages[-1], "CMD")
    assert yaml.safe_load(command) == ["jobgraph", "serve", "--host", "0.0.0.0",
                                       "--port", "8000"]


def test_dockerignore_keeps_local_state_out_of_the_build_context() -> None:
    ignored = {line.strip() for line in (ROOT / ".dockerignore").read_text().splitlines()
               if line.strip() and not line.startswith("#")}
    assert {".git", ".venv", ".data", "tests"} <= ignored
    assert not ignored & {"graph", "repository", "pyproject.toml", "README.md", "requirements",
                          "requirements/runtime.lock", "requirements/build.lock"}


def test_compose_runs_mongodb_as_a_single_node_replica_set(compose: dict[str, Any]) -> None:
    mongodb = compose["services"]["mongodb"]
    assert mongodb["image"] == "mongo:8"
    command = mongodb["command"]
    words = command if isinstance(command, list) else shlex.split(command)
    assert words[words.index("--replSet") + 1] == "rs0"
    assert "--bind_ip_all" in words


def test_compose_initiates_the_replica_set_in_the_healthcheck(compose: dict[str, Any]) -> None:
    test = compose["services"]["mongodb"]["healthcheck"]["test"]
    script = test if isinstance(test, str) else " ".join(test)
    assert "mongosh" in script
    assert "rs.initiate" in script and "mongodb:27017" in script
    assert "rs.status()" in script


def test_compose_keeps_mongodb_data_on_a_named_volume(compose: dict[str, Any]) -> None:
    (mount,) = compose["services"]["mongodb"]["volumes"]
    volume, target = mount.split(":")[:2]
    assert target == "/data/db"
    assert volume in compose["volumes"]


@pytest.mark.parametrize("service", ["api", "api-2"])
def test_compose_api_waits_for_a_healthy_mongodb(compose: dict[str, Any], service: str) -> None:
    api = compose["services"][service]
    assert api["build"] in (".", {"context": "."})
    assert api["depends_on"]["mongodb"]["condition"] == "service_healthy"


@pytest.mark.parametrize("service", ["api", "api-2"])
def test_compose_api_is_configured_by_environment(compose: dict[str, Any], service: str) -> None:
    environment = compose["services"][service]["environment"]
    assert environment["JOBGRAPH_MONGODB_URI"] == "mongodb://mongodb:27017/?replicaSet=rs0"
    assert re.fullmatch(r"\$\{JOBGRAPH_JWT_SECRET:\?[^}]+\}", environment["JOBGRAPH_JWT_SECRET"])


def test_compose_sets_only_variables_the_settings_know(compose: dict[str, Any]) -> None:
    known = {f"JOBGRAPH_{name.upper()}" for name in Settings.model_fields}
    for name in ("api", "api-2"):
        assert set(compose["services"][name]["environment"]) <= known


def test_compose_publishes_two_api_instances_on_different_ports(
        compose: dict[str, Any]) -> None:
    published = {}
    for name in ("api", "api-2"):
        (port,) = compose["services"][name]["ports"]
        host, container = str(port).rsplit(":", 1)
        assert container == "8000"
        published[name] = host
    assert published["api"] == "8000"
    assert published["api"] != published["api-2"]
