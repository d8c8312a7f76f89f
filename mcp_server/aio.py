"""Asyncio helpers: stopping background tasks without losing a cancellation (Python 3.11), and
waiting for a moment of a clock.

A lost cancellation is a shutdown that never ends. Two idioms lose one: `with suppress(CancelledError):
await task` after `task.cancel()` also swallows a cancellation of the caller that arrives while it
waits (use `stop`), and `wait_for(...)` returns normally when what it awaits completes in the same
step as the cancellation (use `async with asyncio.timeout(...)`).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from datetime import datetime
from typing import Any


async def stop(*tasks: asyncio.Task[Any]) -> None:
    """Cancel `tasks` and wait until each has finished, whatever it raised.

    The tasks' own CancelledErrors stay theirs; the caller's is never swallowed.
    """
    for task in tasks:
        task.cancel()
    if tasks:
        await asyncio.wait(tasks)
    for task in tasks:
        if not task.cancelled():
            task.exception()  # retrieved: no "exception was never retrieved" at exit


async def wait_until(moment: datetime, clock: Callable[[], datetime]) -> None:
    """Sleep until `clock()` reads `moment` or later (never return before it)."""
    while (delay := (moment - clock()).total_seconds()) > 0:  # noqa: ASYNC110  (a time, not an event)
        await asyncio.sleep(delay)
