"""What the benchmarks share: a scratch PostgreSQL database, a server process, figures."""

from __future__ import annotations

import asyncio
import contextlib
import gc
import multiprocessing
import os
import statistics
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any, NamedTuple

import httpx
import psycopg
from sqlalchemy import make_url

from tests.fakes import FakeSidecar
from tests.helpers import free_port
from todo_chatbot import migrate

SERVER_URL = os.environ.get("BENCH_DATABASE_URL") or os.environ.get(
    "TEST_DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/test"
)


@contextlib.contextmanager
def scratch_database() -> Iterator[str]:
    """A new, migrated PostgreSQL database, dropped afterwards."""
    server = make_url(SERVER_URL).set(drivername="postgresql")
    name = f"todo_bench_{uuid.uuid4().hex[:10]}"
    admin = server.render_as_string(hide_password=False)
    with psycopg.connect(admin, autocommit=True) as connection:
        connection.execute(f'CREATE DATABASE "{name}"')
    url = server.set(database=name).render_as_string(hide_password=False)
    try:
        migrate.upgrade(url)
        yield url
    finally:
        with psycopg.connect(admin, autocommit=True) as connection:
            connection.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def cpu_seconds(pid: int) -> float:
    """User + system CPU time a process has used so far (Linux: /proc, in clock ticks)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


class Server(NamedTuple):
    base: str  # http://127.0.0.1:PORT
    pid: int


@contextlib.contextmanager
def server_process(module: str, port: int, env: dict[str, str]) -> Iterator[Server]:
    """Run `python -m module --port PORT` and wait until /healthz answers."""
    process = subprocess.Popen(
        [sys.executable, "-m", module, "--port", str(port)],
        env={**os.environ, **env},
        stdout=subprocess.DEVNULL,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                if httpx.get(base + "/healthz", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"{module} did not start")
            time.sleep(0.1)
        yield Server(base, process.pid)
    finally:
        process.terminate()
        process.wait(timeout=10)


@contextlib.contextmanager
def client_gc_paused() -> Iterator[None]:
    """The load generator's own cyclic garbage collector off while it measures.

    A full collection of the bench client's heap once took 209 ms in the middle of a run: its
    sockets went unread, its paced writes fell behind and then went out in a burst, and all of
    it counted as the server's latency. Reference counting still frees nearly everything; what is
    left is collected afterwards.
    """
    gc.collect()
    gc.disable()
    try:
        yield
    finally:
        gc.enable()


def _run_sidecar(port: int, ready: Any) -> None:
    async def main() -> None:
        async with FakeSidecar(port=port):
            ready.set()
            await asyncio.Event().wait()

    asyncio.run(main())


@contextlib.contextmanager
def sidecar_process() -> Iterator[int]:
    """A fake Dapr sidecar (tests.fakes.FakeSidecar) in its own process; yields its port."""
    port = free_port()
    ready = multiprocessing.Event()
    process = multiprocessing.Process(target=_run_sidecar, args=(port, ready), daemon=True)
    process.start()
    ready.wait(20)
    try:
        yield port
    finally:
        process.terminate()
        process.join(5)


def percentile(samples: Sequence[float], q: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, round(q / 100 * (len(ordered) - 1)))]


def summary(name: str, seconds: Sequence[float]) -> dict[str, float | str]:
    return {
        "name": name,
        "n": len(seconds),
        "p50_ms": percentile(seconds, 50) * 1000,
        "p99_ms": percentile(seconds, 99) * 1000,
        "per_s": len(seconds) / sum(seconds) if seconds else 0.0,
        "mean_ms": statistics.fmean(seconds) * 1000,
    }


def print_table(rows: Sequence[dict[str, float | str]]) -> None:
    print(f"{'operation':<34}{'n':>7}{'p50 ms':>10}{'p99 ms':>10}{'calls/s':>10}")
    for row in rows:
        print(
            f"{row['name']:<34}{row['n']:>7}{row['p50_ms']:>10.2f}{row['p99_ms']:>10.2f}{row['per_s']:>10.0f}"
        )


def print_ratio(label: str, value: float, target: float, *, at_most: bool = True) -> None:
    """One line per target: the measured ratio, the target, and whether it was met."""
    met = value <= target if at_most else value >= target
    sign = "<=" if at_most else ">="
    print(f"  {label:<48} {value:6.2f}  ({sign} {target:.2f})  {'ok' if met else 'MISSED'}")
