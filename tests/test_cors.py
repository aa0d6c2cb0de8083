"""CORS for HTTP (Starlette's middleware) and Origin checks for WebSockets (Strawberry's)."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
import websockets

from graph.config.settings import Settings
from graph.server.app import create_app
from tests.helpers.graphql import ALICE, Api, make_settings
from tests.helpers.live import DEADLINE, live_server

ALLOWED = "https://app.example"
REFUSED = "https://evil.example"
ME = "query Me { viewer { userId } }"


@pytest.fixture
def settings(database_name: str) -> Settings:
    return make_settings(database=database_name, cors_origins=[ALLOWED])


def preflight(origin: str) -> dict[str, str]:
    return {"Origin": origin, "Access-Control-Request-Method": "POST",
            "Access-Control-Request-Headers": "authorization,content-type"}


async def test_preflight_from_allowed_origin_is_allowed(api: Api) -> None:
    response = await api.client.options("/graphql", headers=preflight(ALLOWED))
    assert response.status_code == 200
    assert response.headers["access-control-allow-origin"] == ALLOWED
    allowed_headers = response.headers["access-control-allow-headers"].lower()
    assert "authorization" in allowed_headers and "content-type" in allowed_headers
    assert "POST" in response.headers["access-control-allow-methods"]


async def test_preflight_from_refused_origin_gets_no_allow_origin(api: Api) -> None:
    response = await api.client.options("/graphql", headers=preflight(REFUSED))
    assert "access-control-allow-origin" not in response.headers


async def test_post_from_allowed_origin_gets_allow_origin_and_request_id(api: Api) -> None:
    response = await api.post(ME, headers={"Origin": ALLOWED})
    assert response.json() == {"data": {"viewer": {"userId": ALICE.user_id}}}
    assert response.headers["access-control-allow-origin"] == ALLOWED
    assert "x-request-id" in response.headers["access-control-expose-headers"].lower()


async def test_post_from_refused_origin_gets_no_allow_origin(api: Api) -> None:
    response = await api.post(ME, headers={"Origin": REFUSED})
    assert response.status_code == 200  # CORS is for browsers to enforce
    assert "access-control-allow-origin" not in response.headers


async def test_refusal_before_execution_still_carries_allow_origin(
        api: Api, settings: Settings) -> None:
    too_large = "#" * (settings.max_body_bytes + 1)
    response = await api.client.post("/graphql", content=too_large,
                                      headers={"Origin": ALLOWED,
                                               "Content-Type": "application/json"})
    assert response.status_code == 413
    assert response.headers["access-control-allow-origin"] == ALLOWED


async def test_preflight_without_configured_origins_is_never_allowed(mongo_uri: str) -> None:
    # given: the default, no JOBGRAPH_CORS_ORIGINS
    app = create_app(make_settings(), mongodb_uri=mongo_uri)
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
        # when
        response = await client.options("/graphql", headers=preflight(ALLOWED))
    # then
    assert "access-control-allow-origin" not in response.headers


@pytest.mark.parametrize(("origin", "accepted"), [(ALLOWED, True), (REFUSED, False)])
async def test_websocket_handshake_checks_origin(
        settings: Settings, mongo_uri: str, store: Any, origin: str, accepted: bool) -> None:
    async with live_server(settings, mongo_uri) as server:
        try:
            socket = await websockets.connect(
                server.ws_url, origin=origin,  # type: ignore[arg-type]
                subprotocols=["graphql-transport-ws"],  # type: ignore[list-item]
                open_timeout=DEADLINE)
        except websockets.InvalidStatus as refused:
            assert not accepted
            assert refused.response.status_code == 403
        else:
            await socket.close()
            assert accepted
