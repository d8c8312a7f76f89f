"""CPU time of the outbox relay per event when changes come one at a time (PostgreSQL).

    python bench/relay_round.py [--events 1000]

An MCP client adding tasks one by one: each `TaskService.create` commits one task with its event,
then one relay round reads the event, publishes it into a fake Dapr sidecar (its own process) and
marks it published. Both run in this process; printed is the CPU time of each per event, and the
round's against the write's (the same-run baseline). In the MCP server both share one event loop,
so this is CPU that each `add_task` call costs the server on top of the write itself. The round
runs as the leader runs it (its statements on a connection of its own), and then, for comparison,
on connections from the pool (as on SQLite, and in the server before it had its own).
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import scratch_database, sidecar_process
from mcp_server.db import Database
from mcp_server.publishing import DaprPublisher
from mcp_server.relay import OutboxRelay
from mcp_server.schemas import TaskCreate
from mcp_server.service import Caller, TaskService


async def rounds(relay: OutboxRelay, service: TaskService, events: int) -> tuple[float, float]:
    """CPU seconds per event of the write and of the round that publishes it, one at a time."""
    caller = Caller("bench-relay", None)
    write = round_ = 0.0
    for index in range(-100, events):  # the first 100 warm up
        fields = TaskCreate(title=f"Task {index}", tags=["bench"], due="tomorrow 5pm")
        started = time.process_time()
        await service.create(caller, fields)
        written = time.process_time()
        assert await relay.drain() == 1
        if index >= 0:
            write += written - started
            round_ += time.process_time() - written
    return write / events, round_ / events


async def run(events: int) -> None:
    with scratch_database() as url, sidecar_process() as port:
        db = Database(url)
        publisher = DaprPublisher(port=port, pubsub="taskpubsub", topic="task-events")
        relay, service = OutboxRelay(db, publisher), TaskService(db)
        try:
            async with relay.leading():  # as in the server: the leader's own connection
                write, leader = await rounds(relay, service, events)
            _, pooled = await rounds(relay, service, events)  # a connection from the pool each time
        finally:
            await publisher.aclose()
            await db.dispose()
    print(f"CPU ms per event, {events} events one at a time:")
    print(f"  TaskService.create (the task and its outbox row, baseline) {write * 1000:8.3f}")
    print(f"  relay round (read, publish, mark) as the leader runs it     {leader * 1000:8.3f}")
    print(f"  the same round on pooled SQLAlchemy connections             {pooled * 1000:8.3f}")
    print(f"  leader's round / write                                      {leader / write:8.2f}")


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--events", type=int, default=1000)
    asyncio.run(run(parser.parse_args().events))


if __name__ == "__main__":
    main()
