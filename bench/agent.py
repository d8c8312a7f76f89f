"""Chat turn overhead and the offline model's speed (in-process, PostgreSQL).

    python bench/agent.py [--turns 60]

1. Server time per chat turn excluding model time: `ChatService.turn` with a ScriptedModel making
   one tool call, in a conversation with 0, 50 and 200 earlier messages, against the time of the
   same MCP tool call alone (same in-process MCP server), measured in the same run.
   Target: at 200 messages the turn adds <= 10 ms over the tool call.
2. The offline model: parser utterances per second, and whole offline chat turns per second.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from agents.models.interface import Model
from agents.testing import ScriptedModel, assistant_message, function_call

from agent.chat import ChatService
from agent.config import ChatConfig
from agent.mcp_link import ChatUser, in_process_connector
from agent.memory import ConversationStore, is_user_message
from agent.offline_model import OfflineModel
from agent.offline_parser import parse
from bench.common import percentile, print_ratio, scratch_database
from mcp_server.db import Database
from mcp_server.schemas import TaskCreate
from mcp_server.service import Caller, TaskService
from mcp_server.tools import acting_as, build_mcp_server

TOOL = "list_tasks"
ARGUMENTS = {"status": "open", "limit": 20}
UTTERANCES = [
    "add buy milk tomorrow at 9am #errands",
    "what's due today?",
    "remind me to call mom at 6pm",
    "mark the milk one done",
    "submit report friday 5pm high priority",
    "show tasks tagged work",
    "rename the report to send the quarterly report",
    "pay rent on the 1st every month",
    "what's overdue",
    "help",
]


class TimedModel(Model):
    """Forwards to a model and adds up the time spent inside it (to subtract from the turn)."""

    def __init__(self, inner: Model) -> None:
        self.inner = inner
        self.seconds = 0.0

    async def get_response(self, *args: Any, **kwargs: Any) -> Any:
        started = time.perf_counter()
        try:
            return await self.inner.get_response(*args, **kwargs)
        finally:
            self.seconds += time.perf_counter() - started

    async def stream_response(self, *args: Any, **kwargs: Any) -> AsyncIterator[Any]:
        started = time.perf_counter()
        try:
            async for event in self.inner.stream_response(*args, **kwargs):
                self.seconds += time.perf_counter() - started
                yield event
                started = time.perf_counter()
        finally:
            self.seconds += time.perf_counter() - started


async def forget_last_turn(session: Any) -> None:
    """Take the last turn's items (back to its user message) out of the conversation."""
    while (item := await session.pop_item()) is not None:
        if is_user_message(item):
            return


async def turn_overhead(url: str, turns: int) -> dict[int, tuple[list[float], list[float]]]:
    db = Database(url)
    tasks = TaskService(db)
    mcp = build_mcp_server(tasks)
    connector = in_process_connector(mcp, lambda user: acting_as(Caller(user.user_id, user.timezone)))
    results: dict[int, tuple[list[float], list[float]]] = {}
    try:
        for history in (0, 50, 200):
            user = ChatUser(f"bench-agent-{history}", None, "UTC")
            for index in range(20):
                await tasks.create(Caller(user.user_id), TaskCreate(title=f"Task {index}"))
            scripted = ScriptedModel()
            model = TimedModel(scripted)
            chat = ChatService(model, connector, ConversationStore(db.engine), config=ChatConfig())
            scripted.extend([[assistant_message("Hello.")]])
            first = await chat.turn(user, "hello", None, "UTC")
            session = chat.sessions(first.conversation_id)
            if history:
                earlier: list[Any] = []
                for index in range(history // 2):
                    earlier.append({"role": "user", "content": f"earlier question {index}"})
                    earlier.append(
                        assistant_message(f"earlier answer {index}").model_dump(exclude_unset=True)
                    )
                await session.add_items(earlier)
            spent: list[float] = []
            for index in range(turns):
                scripted.extend(
                    [
                        [function_call(TOOL, ARGUMENTS, call_id=f"c{index}")],
                        [assistant_message("Here they are.")],
                    ]
                )
                model.seconds = 0.0
                started = time.perf_counter()
                result = await chat.turn(user, "what is open?", first.conversation_id, "UTC")
                spent.append(time.perf_counter() - started - model.seconds)
                assert result.tool_calls and result.error is None, result
                await forget_last_turn(session)  # every measured turn sees the same history
            baseline: list[float] = []
            server = connector(user)
            await server.connect()
            try:
                for _ in range(turns):
                    started = time.perf_counter()
                    await server.call_tool(TOOL, ARGUMENTS)
                    baseline.append(time.perf_counter() - started)
            finally:
                await server.cleanup()
            results[history] = (spent[5:], baseline[5:])  # after warm-up
            await chat.close()
    finally:
        await db.dispose()
    return results


async def offline_turns_per_second(url: str, count: int) -> float:
    db = Database(url)
    tasks = TaskService(db)
    connector = in_process_connector(
        build_mcp_server(tasks), lambda user: acting_as(Caller(user.user_id, user.timezone))
    )
    chat = ChatService(OfflineModel(), connector, ConversationStore(db.engine), config=ChatConfig())
    user = ChatUser("bench-offline", None, "UTC")
    conversation = None
    started = time.perf_counter()
    for index in range(count):
        result = await chat.turn(user, UTTERANCES[index % len(UTTERANCES)], conversation, "UTC")
        conversation = result.conversation_id
    elapsed = time.perf_counter() - started
    await chat.close()
    await db.dispose()
    return count / elapsed


def parser_per_second(seconds: float = 2.0) -> float:
    from datetime import UTC, datetime
    from zoneinfo import ZoneInfo

    now, tz = datetime(2026, 11, 27, 15, 0, tzinfo=UTC), ZoneInfo("America/New_York")
    done = 0
    stop = time.perf_counter() + seconds
    while time.perf_counter() < stop:
        for utterance in UTTERANCES:
            parse(utterance, now=now, tz=tz)
        done += len(UTTERANCES)
    return done / seconds


async def run(turns: int) -> None:
    with scratch_database() as url:
        results = await turn_overhead(url, turns)
        offline = await offline_turns_per_second(url, turns)
    parsed = parser_per_second()
    print(
        f"{'earlier messages':<18}{'turn p50 ms':>13}{'turn p99 ms':>13}"
        f"{'tool p50 ms':>13}{'added p50 ms':>14}"
    )
    for history, (spent, baseline) in results.items():
        added = statistics.median(spent) - statistics.median(baseline)
        print(
            f"{history:<18}{percentile(spent, 50) * 1000:>13.2f}{percentile(spent, 99) * 1000:>13.2f}"
            f"{percentile(baseline, 50) * 1000:>13.2f}{added * 1000:>14.2f}"
        )
    print(f"\noffline model: parser {parsed:,.0f} utterances/s; whole offline chat turns {offline:,.1f}/s")
    spent, baseline = results[200]
    print("\ntargets:")
    print_ratio(
        "turn minus tool call at 200 messages (ms)",
        (statistics.median(spent) - statistics.median(baseline)) * 1000,
        10,
    )


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--turns", type=int, default=60)
    asyncio.run(run(parser.parse_args().turns))


if __name__ == "__main__":
    main()
