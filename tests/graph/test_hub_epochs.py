"""The hub's job epochs (``Hub.job_epoch``), on which a subscription joins a read of the
job's current state that is already in flight (``repository/current_states.py``): the
epoch must move whenever a change of the job reaches its subscribers, and whenever its
group of subscribers is formed anew, and must not move for other jobs' changes."""

from __future__ import annotations

from typing import Any

from graph.realtime.hub import Hub
from repository.changes import Change


def change_of(job_id: str) -> Change:
    return Change(collection="jobs", operation="update", object_id=job_id,
                  document={"_id": job_id, "version": 2}, exact=True)


async def test_a_jobs_epoch_moves_with_its_changes_and_its_subscribers_group(
        store: Any) -> None:
    hub = Hub(store.db)
    assert hub.job_epoch("a") is None  # nobody follows it: nothing to compare
    async with hub.subscribe(keys=[("jobs", "a")]), hub.subscribe(keys=[("jobs", "b")]):
        formed = hub.job_epoch("a")
        assert formed is not None
        async with hub.subscribe(keys=[("jobs", "a")]):
            assert hub.job_epoch("a") == formed  # a second subscriber: same group
        # another job's change does not move it, its own does
        hub.dispatch(change_of("b"))
        assert hub.job_epoch("a") == formed
        hub.dispatch(change_of("a"))
        moved = hub.job_epoch("a")
        assert moved is not None and moved != formed
    assert hub.job_epoch("a") is None and hub.epochs == {}
    # a group formed anew never shows an epoch it had before
    async with hub.subscribe(keys=[("jobs", "a")]):
        assert hub.job_epoch("a") not in (None, formed, moved)
