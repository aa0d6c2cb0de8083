"""The soak test's short mode: workers, subscribers and a kill -9 of the database."""

from __future__ import annotations

import os

import pytest

from bench.soak import Options, run


@pytest.mark.slow
async def test_soak_short_mode_loses_nothing_across_a_database_kill() -> None:
    if os.environ.get("JOBGRAPH_MONGODB_URI"):
        pytest.skip("the database named by JOBGRAPH_MONGODB_URI is not the suite's to kill")

    # (10 s leases: a claim held for no worker after the kill comes back within the run)
    report = await run(Options(duration=8, workers=4, subscribers=20, restarts=1,
                               lease_seconds=10), log=lambda _line: None)

    assert report.restarts == 1
    assert report.problems == []
    assert report.jobs > 0 and report.lifecycles > 0
    assert report.events > 0
