"""/healthz (the process answers) and /readyz (MongoDB and the change stream)."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from tests.helpers.graphql import Api, make_settings
from tests.outage import app_on_own_database


async def test_healthz_answers_ok(api: Api) -> None:
    response = await api.client.get("/healthz")
    assert response.status_code == 200
    assert response.json() == {"status": "ok"}


async def test_readyz_answers_ready_when_database_and_change_stream_run(api: Api) -> None:
    response = await api.client.get("/readyz")
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["status"] == "ready"
    assert body["database"] == "ok"


async def test_readyz_answers_503_while_database_is_down(tmp_path: Path) -> None:
    # given: an app started on a database of its own
    settings = make_settings(database="readiness", mongodb_timeout_ms=500)
    async with app_on_own_database(settings, tmp_path / "data") as outage:
        assert (await outage.client.get("/readyz")).status_code == 200
        # when
        outage.stop_database()
        ready = await outage.client.get("/readyz")
        alive = await outage.client.get("/healthz")
    # then: out of rotation, but not to be restarted
    assert ready.status_code == 503
    assert ready.json()["status"] == "unavailable"
    assert ready.json()["database"] == "unavailable"
    assert alive.status_code == 200


@pytest.mark.parametrize(("running", "status_code", "change_stream"),
                         [(True, 200, "running"), (False, 503, "stopped")])
async def test_readyz_reports_change_stream_of_hub(
        api: Api, app: Any, monkeypatch: pytest.MonkeyPatch,
        running: bool, status_code: int, change_stream: str) -> None:
    # given
    monkeypatch.setattr(app.state, "hub", SimpleNamespace(running=running))
    # when
    response = await api.client.get("/readyz")
    # then
    assert response.status_code == status_code
    assert response.json()["change_stream"] == change_stream
    assert response.json()["database"] == "ok"


async def test_readyz_ignores_hub_without_running_flag(
        api: Api, app: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(app.state, "hub", SimpleNamespace())
    response = await api.client.get("/readyz")
    assert response.status_code == 200
    assert "change_stream" not in response.json()


async def test_objects_from_startup_are_frozen_out_of_the_collector_while_serving(
        settings: Any, mongo_uri: str, store: Any) -> None:
    import gc

    from graph.server.app import YOUNG_OBJECTS, create_app

    app = create_app(settings, mongodb_uri=mongo_uri)
    assert gc.get_freeze_count() == 0
    before = gc.get_threshold()
    async with app.router.lifespan_context(app):
        assert gc.get_freeze_count() > 0
        # a request's objects die before a collection of the youngest generation walks them
        assert gc.get_threshold() == (YOUNG_OBJECTS, *before[1:])
    assert gc.get_freeze_count() == 0  # unfrozen on shutdown: nothing kept for good
    assert gc.get_threshold() == before
