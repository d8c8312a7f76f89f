"""Stopping background tasks without losing a cancellation (Python 3.11).

A lost cancellation is a shutdown that never ends. Two idioms lose one: `with suppress(CancelledError):
await task` after `task.cancel()` also swallows a cancellation of the caller that arrives while it
waits (use `stop`), and `wait_for(...)` returns normally when what it awaits completes in the same
step as the cancellation (use `async with asyncio.timeout(...)`).
"""

from __future__ import annotations

import asyncio
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
