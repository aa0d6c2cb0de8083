"""One database server per test session, a fresh database per test.

``JOBGRAPH_MONGODB_URI`` set: the suite runs against that server. Otherwise it
starts the embedded SecantusDB itself, so a fresh clone needs no services.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import AsyncIterator, Iterator

import pytest

from repository.database import EmbeddedServer, Store, make_client

pytest_plugins = ["tests.helpers.graphql"]


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """The slow tests first, the longest (``slow(seconds=...)``) before the others:
    collected late, they were the suite's tail, one worker still running one alone after
    the others had finished. Under ``--dist worksteal`` (``make test``) each worker starts
    with one contiguous share of this order and the idle ones take over the busy ones'
    last tests, so the order is dealt into one pile per worker: each share opens with
    its turn of the slow tests, never one worker with all of them."""
    def weight(item: pytest.Item) -> float:
        slow = item.get_closest_marker("slow")
        return 0.0 if slow is None else float(slow.kwargs.get("seconds", 1))
    items.sort(key=weight, reverse=True)
    workers = int(os.environ.get("PYTEST_XDIST_WORKER_COUNT", "1"))  # the same in each
    if workers > 1:
        items[:] = [item for pile in range(workers) for item in items[pile::workers]]


@pytest.fixture(scope="session")
def embedded_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EmbeddedServer | None]:
    if os.environ.get("JOBGRAPH_MONGODB_URI"):
        yield None
        return
    # no sync on commit: nothing kills this one (the tests of durability, restarts and
    # outages start their own, durable as `jobgraph serve`'s), and each commit's fsync
    # was the database's wait on every write of the suite
    server = EmbeddedServer(data_dir=tmp_path_factory.mktemp("secantus") / "data",
                            durable=False)
    server.start()
    yield server
    server.stop()


@pytest.fixture(scope="session")
def mongo_uri(embedded_server: EmbeddedServer | None) -> str:
    return os.environ.get("JOBGRAPH_MONGODB_URI") or embedded_server.uri  # type: ignore[union-attr]


@pytest.fixture
def database_name() -> str:
    return f"jobgraph_test_{uuid.uuid4().hex[:12]}"


@pytest.fixture
async def store(request: pytest.FixtureRequest, mongo_uri: str, database_name: str
                ) -> AsyncIterator[Store]:
    client = make_client(mongo_uri)
    store = Store(client, database_name)
    if not {"app", "live"} & set(request.fixturenames):  # (the app's start-up does, first)
        await store.ensure_indexes()
    yield store
    await client.drop_database(database_name)
    await client.close()
