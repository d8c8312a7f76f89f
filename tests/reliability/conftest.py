"""Sizes and figures of the reliability tests.

Each test has a short version (the normal suite) and a long one, chosen by `RELIABILITY_SCALE=full`
(what `bench/reliability.py` sets). Each test reports a one-line summary of its figures: printed
(visible with `-s`), listed at the end of a run without xdist, and appended as a JSON line to the
file named by `RELIABILITY_REPORT` when that is set (how `bench/reliability.py` collects them).
"""

from __future__ import annotations

import json
import os
from typing import Any

FULL = os.environ.get("RELIABILITY_SCALE", "short").strip().lower() == "full"
_REPORTED: list[str] = []


def sized(short: int, full: int) -> int:
    """`full` under RELIABILITY_SCALE=full, else `short`."""
    return full if FULL else short


def report(test: str, **figures: Any) -> None:
    """Record one test's figures (one line)."""
    words = " ".join(f"{key}={value}" for key, value in figures.items())
    line = f"[{'full' if FULL else 'short'}] {test}: {words}"
    print(line)
    _REPORTED.append(line)
    path = os.environ.get("RELIABILITY_REPORT")
    if path:
        with open(path, "a", encoding="utf-8") as out:  # one short write per line: safe across workers
            out.write(json.dumps({"test": test, "scale": "full" if FULL else "short", **figures}) + "\n")


def pytest_terminal_summary(terminalreporter: Any) -> None:
    if _REPORTED:
        terminalreporter.section("reliability figures")
        for line in _REPORTED:
            terminalreporter.write_line(line)
