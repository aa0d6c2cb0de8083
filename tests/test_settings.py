"""A bad JOBGRAPH_* value stops start-up with one line that names the variable."""

from __future__ import annotations

import os

import pytest
import uvicorn

from graph.commands import cli
from graph.config.settings import SettingsError, load_settings
from repository.database import EmbeddedServer

BAD_VALUES = [
    ("JOBGRAPH_MONGODB_TIMEOUT_MS", "50"),
    ("JOBGRAPH_MONGODB_TIMEOUT_MS", "600000"),
    ("JOBGRAPH_MONGODB_TIMEOUT_MS", "soon"),
    ("JOBGRAPH_MAX_PAGE_SIZE", "0"),
    ("JOBGRAPH_MAX_PAGE_SIZE", "1001"),
    ("JOBGRAPH_MAX_BODY_BYTES", "10"),
    ("JOBGRAPH_LOG_LEVEL", "LOUD"),
    ("JOBGRAPH_LOG_FORMAT", "xml"),
    ("JOBGRAPH_JWT_SECRET", "too-short-a-secret"),
    ("JOBGRAPH_FINISHED_JOB_TTL_SECONDS", "5"),
    ("JOBGRAPH_DEV_TRUST_USER_HEADER", "maybe"),
    ("JOBGRAPH_LEASE_SECONDS", "0"),
    ("JOBGRAPH_CORS_ORIGINS", "app.example.com"),
    ("JOBGRAPH_CORS_ORIGINS", "https://app.example.com/path"),
    ("JOBGRAPH_WEBHOOK_ALLOW_PRIVATE", "maybe"),
    ("JOBGRAPH_WEBHOOK_TIMEOUT_SECONDS", "0"),
    ("JOBGRAPH_WEBHOOK_LEASE_SECONDS", "5"),  # not longer than the 10 s timeout
    ("JOBGRAPH_WEBHOOK_MAX_ATTEMPTS", "0"),
    ("JOBGRAPH_SCHEDULER_INTERVAL_SECONDS", "0"),
    ("JOBGRAPH_DISPATCHER", "sometimes"),
]
IDS = [f"{name}={value}" for name, value in BAD_VALUES]


@pytest.fixture(autouse=True)
def clean_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in list(os.environ):
        if name.startswith("JOBGRAPH_"):
            monkeypatch.delenv(name)


@pytest.mark.parametrize(("name", "value"), BAD_VALUES, ids=IDS)
def test_load_settings_refuses_bad_value_in_one_line(
        monkeypatch: pytest.MonkeyPatch, name: str, value: str) -> None:
    # given
    monkeypatch.setenv(name, value)
    # when
    with pytest.raises(SettingsError) as raised:
        load_settings()
    # then
    message = str(raised.value)
    assert name in message
    assert "\n" not in message
    if name == "JOBGRAPH_JWT_SECRET":
        assert value not in message  # a secret is never echoed


@pytest.mark.parametrize(("name", "value"), BAD_VALUES, ids=IDS)
def test_serve_with_bad_value_exits_2_before_starting_anything(
        monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str],
        name: str, value: str) -> None:
    # given
    monkeypatch.setenv(name, value)
    started: list[str] = []
    monkeypatch.setattr(EmbeddedServer, "start", lambda self: started.append("database"))
    monkeypatch.setattr(uvicorn, "run", lambda *args, **kwargs: started.append("server"))
    # when
    code = cli.main(["serve", "--port", "8999"])
    # then
    out, err = capsys.readouterr()
    assert code == 2
    assert started == []
    assert out == ""
    lines = err.splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith("jobgraph: ") and name in lines[0]


def test_load_settings_reads_good_values(monkeypatch: pytest.MonkeyPatch) -> None:
    # given
    monkeypatch.setenv("JOBGRAPH_LOG_LEVEL", "debug")
    monkeypatch.setenv("JOBGRAPH_CORS_ORIGINS", "https://app.example, http://localhost:3000")
    monkeypatch.setenv("JOBGRAPH_FINISHED_JOB_TTL_SECONDS", "86400")
    monkeypatch.setenv("JOBGRAPH_MAX_PAGE_SIZE", "1000")
    # when
    settings = load_settings()
    # then
    assert settings.log_level == "DEBUG"
    assert settings.cors_origins == ["https://app.example", "http://localhost:3000"]
    assert settings.finished_job_ttl_seconds == 86400
    assert settings.max_page_size == 1000


def test_load_settings_defaults_leave_optional_features_off() -> None:
    settings = load_settings()
    assert settings.cors_origins == []
    assert settings.finished_job_ttl_seconds is None
    assert settings.mongodb_uri is None


def test_readme_configuration_table_lists_every_variable() -> None:
    from pathlib import Path

    from graph.config.settings import Settings

    readme = (Path(__file__).resolve().parents[1] / "README.md").read_text()
    table = readme[readme.index("## Configuration"):readme.index("## GraphQL operations")]
    missing = [name for name in Settings.model_fields
               if f"| `JOBGRAPH_{name.upper()}` |" not in table]
    assert missing == []
