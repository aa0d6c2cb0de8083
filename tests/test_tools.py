"""A missing third-party client skips its test locally and fails it under CI."""

from __future__ import annotations

import pytest

from tests.helpers.tools import require_module, require_tool

ABSENT = "jobgraph-no-such-program"


@pytest.mark.parametrize("require", [lambda: require_tool(ABSENT, "a hint"),
                                     lambda: require_module(ABSENT.replace("-", "_"))])
def test_missing_tool_skips_locally(require: object, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("CI", raising=False)
    with pytest.raises(pytest.skip.Exception, match=ABSENT.split("-")[0]):
        require()  # type: ignore[operator]


@pytest.mark.parametrize("require", [lambda: require_tool(ABSENT, "a hint"),
                                     lambda: require_module(ABSENT.replace("-", "_"))])
def test_missing_tool_fails_under_ci(require: object, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CI", "true")
    with pytest.raises(pytest.fail.Exception, match="CI=true"):
        require()  # type: ignore[operator]


def test_present_tool_is_found() -> None:
    assert require_tool("sh", "a hint").endswith("/sh")
    assert require_module("json").dumps([]) == "[]"
