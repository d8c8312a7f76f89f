"""Listing at 100,000 tasks for one user (PostgreSQL, `TaskService.list_tasks` in process).

    python bench/list_scale.py [--tasks 100000] [--calls 21]

Each listing the tools and the REST API offer (every sort, each status, each filter, 20 per page
with the exact total) for a user with `--tasks` tasks, beside other users holding as many again,
against the same listing for a user with 1,000 tasks in the same database (the baseline). Printed:
p50 of each and the ratio. The total is an exact count of the matching tasks, so a listing costs
more with more matches; the page itself is an index read in the listing's order
(`tests/mcp_server/test_listing_plans.py` checks the plans).
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import time
from pathlib import Path
from typing import Any

import psycopg

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import scratch_database
from bench.mcp_tools import SEED_SQL
from mcp_server.db import Database
from mcp_server.schemas import TaskQuery
from mcp_server.service import Caller, TaskService

LISTINGS: dict[str, dict[str, Any]] = {
    "open, by due (the default)": {},
    "open and done, by due": {"status": "all"},
    "done": {"status": "done"},
    "priority high": {"priority": "high"},
    "tagged work": {"tag": "work"},
    "tagged work, by priority": {"tag": "work", "sort": "priority"},
    "due before tomorrow": {"due_before": "tomorrow"},
    "due after a week from now": {"due_after": "in 7 days"},
    "overdue": {"overdue": True},
    "words 'number 12'": {"query": "number 12"},
    "words that match nothing": {"query": "zzzz"},
    "by title": {"sort": "title"},
    "by created": {"sort": "created"},
    "by updated": {"sort": "updated"},
    "by priority": {"sort": "priority"},
    "open and done, by updated": {"status": "all", "sort": "updated"},
    "page 50 by due (offset 980)": {"cursor": 49},
}


async def p50(service: TaskService, user: str, arguments: dict[str, Any], calls: int) -> tuple[float, int]:
    page = None
    if isinstance(arguments.get("cursor"), int):  # that many pages on, by the cursors handed out
        pages, arguments = arguments["cursor"], {k: v for k, v in arguments.items() if k != "cursor"}
        for _ in range(pages):
            cursor = (await service.list_tasks(Caller(user), TaskQuery(**arguments))).next_cursor
            arguments = {**arguments, "cursor": cursor}
    query = TaskQuery(**arguments)
    await service.list_tasks(Caller(user), query)  # warm: the statement is prepared after a few
    samples = []
    for _ in range(calls):
        started = time.perf_counter()
        page = await service.list_tasks(Caller(user), query)
        samples.append(time.perf_counter() - started)
    assert page is not None
    return statistics.median(samples) * 1000, page.total


async def run(tasks: int, calls: int) -> None:
    with scratch_database() as url:
        with psycopg.connect(url, autocommit=True) as connection:
            connection.execute(SEED_SQL, {"user": "big", "count": tasks})
            connection.execute(SEED_SQL, {"user": "small", "count": 1_000})
            for index in range(5):
                connection.execute(SEED_SQL, {"user": f"other-{index}", "count": tasks // 5})
            connection.execute("VACUUM ANALYZE")
        db = Database(url)
        service = TaskService(db)
        print(
            f"{'listing (20 per page, exact total)':<34}{'1k p50 ms':>11}{f'{tasks // 1000}k p50 ms':>12}"
            f"{'ratio':>8}{'total':>9}"
        )
        try:
            for name, arguments in LISTINGS.items():
                small, _ = await p50(service, "small", arguments, calls)
                big, total = await p50(service, "big", arguments, calls)
                print(f"{name:<34}{small:>11.2f}{big:>12.2f}{big / small:>8.1f}{total:>9}")
        finally:
            await db.dispose()


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--tasks", type=int, default=100_000)
    parser.add_argument("--calls", type=int, default=21)
    args = parser.parse_args()
    asyncio.run(run(args.tasks, args.calls))


if __name__ == "__main__":
    main()
