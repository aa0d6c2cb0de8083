"""Fixtures shared by the repository tests. Module-scoped ones here are still one per
test module."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest

from repository.database import Store

from .support import connect, nothing, seeded


@pytest.fixture(scope="module")
async def module_database(mongo_uri: str) -> AsyncIterator[str]:
    """One database for the tests below that touch only their own objects, by id."""
    async with seeded(mongo_uri, nothing) as (name, _):
        yield name


@pytest.fixture
async def module_store(mongo_uri: str, module_database: str) -> AsyncIterator[Store]:
    async with connect(mongo_uri, module_database) as store:
        yield store


@pytest.fixture
async def shared(module_store: Store, request: pytest.FixtureRequest) -> Any:
    """Fresh objects of the module's ``share(store)`` for each test, in its database."""
    return await request.module.share(module_store)


@pytest.fixture(scope="module")
async def readable_data(mongo_uri: str, request: pytest.FixtureRequest
                        ) -> AsyncIterator[tuple[str, Any]]:
    """One database per module, seeded once by its ``seed_readable`` (else ``share``)."""
    seed = getattr(request.module, "seed_readable", request.module.share)
    async with seeded(mongo_uri, seed) as data:
        yield data


@pytest.fixture
async def readable(mongo_uri: str, readable_data: tuple[str, Any]
                   ) -> AsyncIterator[tuple[Store, Any]]:
    """The seeded objects, which these tests only read."""
    name, objects = readable_data
    async with connect(mongo_uri, name) as store:
        yield store, objects
