"""Background tasks stop when asked, even when a library turns the cancellation into an
error that a loop logs and carries on after (as pymongo's async driver can)."""

from __future__ import annotations

import asyncio

from graph.support import tasks


class LibraryError(Exception):
    """What a driver may raise instead of CancelledError while it connects."""


async def swallowing_call() -> None:
    try:
        await asyncio.sleep(3600)
    except asyncio.CancelledError:
        raise LibraryError("connection closed") from None


async def careless_loop(rounds: list[int]) -> None:
    """Logs every error and carries on; its first call swallows the cancellation (the
    driver was connecting), the pause between rounds does not."""
    while True:
        rounds.append(1)
        try:
            if len(rounds) == 1:
                await swallowing_call()
        except LibraryError:
            rounds.append(0)  # the cancellation became an error, logged and forgotten
        await asyncio.sleep(3600)


async def careful_loop(rounds: list[int]) -> None:
    while True:
        rounds.append(1)
        try:
            await swallowing_call()
        except LibraryError as exc:
            tasks.reraise_if_cancelled(exc)


async def test_stop_ends_a_loop_whose_library_swallowed_the_cancellation() -> None:
    rounds: list[int] = []
    task = asyncio.create_task(careless_loop(rounds))
    await asyncio.sleep(0)

    async with asyncio.timeout(10):
        await tasks.stop([task])

    assert task.cancelled()
    assert rounds == [1, 0]  # its first cancellation was swallowed, the second ended it


async def test_a_careful_loop_ends_at_the_first_cancellation() -> None:
    rounds: list[int] = []
    task = asyncio.create_task(careful_loop(rounds))
    await asyncio.sleep(0)

    async with asyncio.timeout(10):
        await tasks.stop([task])

    assert task.cancelled() and rounds == [1]


async def test_reraise_if_cancelled_lets_ordinary_errors_be_handled() -> None:
    async def handle() -> str:
        try:
            raise LibraryError("just an error")
        except LibraryError as exc:
            tasks.reraise_if_cancelled(exc)
            return "handled"

    assert await handle() == "handled"
