"""Fixtures to drive the public GraphQL API over HTTP, in-process (httpx + ASGI)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

import httpx
import pytest

from graph.auth.tokens import mint_token
from graph.config.settings import Settings, load_settings
from graph.server.app import create_app

TEST_SECRET = "test-secret-that-is-long-enough-for-hs256-0123456789"
TEST_METRICS_TOKEN = "test-metrics-token-0123456789"
METRICS = {"Authorization": f"Bearer {TEST_METRICS_TOKEN}"}
"""The headers of a scrape of /metrics, for an app made with ``make_settings``."""


@dataclass
class Caller:
    """A user (or nobody) the tests call the API as."""

    user_id: str | None = None
    roles: tuple[str, ...] = ()

    def headers(self, settings: Settings) -> dict[str, str]:
        if self.user_id is None:
            return {}
        return {"Authorization": f"Bearer {mint_token(settings, self.user_id, self.roles)}"}


ANON = Caller()
ALICE = Caller("alice")
BOB = Caller("bob")
WORKER = Caller("worker-1", ("worker",))
ADMIN = Caller("root", ("admin",))


class GraphQLError(AssertionError):
    pass


class Api:
    def __init__(self, client: httpx.AsyncClient, settings: Settings) -> None:
        self.client = client
        self.settings = settings

    async def post(self, query: str, variables: dict[str, Any] | None = None, *,
                   as_: Caller = ALICE, headers: dict[str, str] | None = None
                   ) -> httpx.Response:
        return await self.client.post(
            "/graphql", json={"query": query, "variables": variables or {}},
            headers={**as_.headers(self.settings), **(headers or {})})

    async def execute(self, query: str, variables: dict[str, Any] | None = None, *,
                      as_: Caller = ALICE) -> dict[str, Any]:
        """The whole response body (data and errors)."""
        response = await self.post(query, variables, as_=as_)
        assert response.status_code == 200, response.text
        return response.json()

    async def data(self, query: str, variables: dict[str, Any] | None = None, *,
                   as_: Caller = ALICE) -> dict[str, Any]:
        """The data of a response that must have no errors."""
        body = await self.execute(query, variables, as_=as_)
        if body.get("errors"):
            raise GraphQLError(body["errors"])
        return body["data"]

    async def error(self, query: str, variables: dict[str, Any] | None = None, *,
                    as_: Caller = ALICE) -> dict[str, Any]:
        """The single error of a response that must fail."""
        body = await self.execute(query, variables, as_=as_)
        assert body.get("errors"), f"expected an error, got {body}"
        assert len(body["errors"]) == 1, body["errors"]
        return body["errors"][0]


def make_settings(**overrides: Any) -> Settings:
    return load_settings(**{"jwt_secret": TEST_SECRET, "log_format": "text",
                            "metrics_token": TEST_METRICS_TOKEN, **overrides})


@pytest.fixture
def settings(database_name: str) -> Settings:
    return make_settings(database=database_name)


@pytest.fixture
async def app(settings: Settings, mongo_uri: str, store: Any) -> AsyncIterator[Any]:
    application = create_app(settings, mongodb_uri=mongo_uri)
    async with application.router.lifespan_context(application):
        yield application


@pytest.fixture
async def api(app: Any, settings: Settings) -> AsyncIterator[Api]:
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
        yield Api(client, settings)


@asynccontextmanager
async def open_api(settings: Settings, mongo_uri: str, **app_options: Any
                   ) -> AsyncIterator[Api]:
    """An app with its own settings (limits, leases, ...), lifespan running."""
    application = create_app(settings, mongodb_uri=mongo_uri, **app_options)
    async with application.router.lifespan_context(application):
        transport = httpx.ASGITransport(app=application)
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
            api = Api(client, settings)
            api.app = application  # type: ignore[attr-defined]
            yield api
