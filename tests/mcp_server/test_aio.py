"""`stop`: cancelling background tasks without swallowing the caller's own cancellation."""

from __future__ import annotations

import asyncio

import pytest

from mcp_server.aio import stop


async def slow_to_stop(stopping: asyncio.Event) -> None:
    """A task that takes a while to wind down once cancelled (closing a connection, say)."""
    try:
        await asyncio.Event().wait()
    finally:
        stopping.set()
        await asyncio.sleep(0.2)


async def test_a_caller_cancelled_while_stopping_a_task_is_still_cancelled() -> None:
    stopping = asyncio.Event()
    went_on = []

    async def owner() -> None:
        child = asyncio.create_task(slow_to_stop(stopping))
        await asyncio.sleep(0)
        await stop(child)
        # Must not happen. With `child.cancel(); with suppress(CancelledError): await child` it
        # did: the relay then started a new leadership and shutdown waited for it forever.
        went_on.append(True)
        await asyncio.Event().wait()

    task = asyncio.create_task(owner())
    await stopping.wait()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await asyncio.wait_for(task, 2)
    assert went_on == []


async def test_stop_waits_for_every_task_and_keeps_their_errors_to_them() -> None:
    async def fails() -> None:
        raise ValueError("its own problem")

    async def runs() -> None:
        await asyncio.Event().wait()

    failing, running = asyncio.create_task(fails()), asyncio.create_task(runs())
    await asyncio.sleep(0)
    await stop(failing, running)
    assert failing.done() and running.cancelled()
    assert isinstance(failing.exception(), ValueError)
