"""Fixtures shared by the repository tests. Module-scoped ones here are still one per
test module."""

from __future__ import annotations

from collections.abc import AsyncIterator

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
