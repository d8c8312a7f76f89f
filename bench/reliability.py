"""The long versions of the reliability tests, and the figures they report.

    python bench/reliability.py [--workers 3] [--seed N] [-- extra pytest arguments]

Runs `pytest tests/reliability` with `RELIABILITY_SCALE=full`: SIGKILL of `todo-chatbot serve` under
2,000 MCP changes from 8 clients; 1,000 changes through a fake Dapr sidecar failing 30% of
publishes and job calls and dropping connections; database outages under load on a private
PostgreSQL cluster. Each test writes a one-line summary of its figures, printed here per test.
Exits with pytest's status (xfails are the defects listed in the tests' reasons).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--workers", type=int, default=3, help="pytest-xdist workers (0: none; default 3)")
    parser.add_argument("--seed", type=int, default=None, help="RELIABILITY_SEED for the tests' randomness")
    parser.add_argument("pytest_args", nargs="*", help="more pytest arguments (after --)")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="reliability-") as scratch:
        figures = Path(scratch) / "figures.jsonl"
        env = {**os.environ, "RELIABILITY_SCALE": "full", "RELIABILITY_REPORT": str(figures)}
        if args.seed is not None:
            env["RELIABILITY_SEED"] = str(args.seed)
        command = [
            sys.executable,
            "-m",
            "pytest",
            "tests/reliability",
            "-q",
            "-rxXfE",
            "-p",
            "no:cacheprovider",
        ]
        if args.workers:
            command += ["-n", str(args.workers)]
        command += args.pytest_args
        print("running:", " ".join(command), "(RELIABILITY_SCALE=full)", flush=True)
        started = time.monotonic()
        status = subprocess.run(command, cwd=ROOT, env=env, check=False).returncode
        elapsed = time.monotonic() - started
        lines = figures.read_text().splitlines() if figures.exists() else []

    print(f"\nfigures (full scale, {elapsed:.0f} s in all):")
    if not lines:
        print("  none reported (did the tests run?)")
    for line in lines:
        entry = json.loads(line)
        name = entry.pop("test")
        entry.pop("scale", None)
        print(f"  {name}")
        for key, value in entry.items():
            print(f"    {key:<38} {value}")
    sys.exit(status)


if __name__ == "__main__":
    main()
