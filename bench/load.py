"""Sustained load on the embedded service (PostgreSQL, auth on): chat sessions and MCP clients at once.

    python bench/load.py [--seconds 60] [--warmup 5] [--chat-sessions 50] [--mcp-clients 20]
                         [--think 3] [--mcp-pause 1] [--closed-loop]

`--chat-sessions` people chat through `POST /api/chat?stream=false` (the offline model) with a
rotating set of everyday requests (add, list, complete, search), each in one conversation; at the
same time `--mcp-clients` MCP clients (the official client over Streamable HTTP, in a second process)
call add/list/update/complete. Every session and client is its own user. After `--warmup` seconds
the measured window of `--seconds` starts. Printed: errors by kind, p50/p99 per operation,
throughput, and the server process's RSS at the start and the end of the window.

A chat session is a person: they read the answer and type the next request. By default each waits
`--think` seconds (3) between turns and each MCP client (an agent, whose model thinks between tool
calls) `--mcp-pause` seconds (1), each pause drawn between half and one and a half times the value,
and each starts at a random moment within one pause, so that they do not all send at once. That is
about 16 turns/s and 20 MCP calls/s: some 60% of the chat turns one process serves flat out.
`--closed-loop` sends every request the moment the last is answered: a capacity test, whose
latency is the queue of 70 clients in front of one event loop (Little's law), not a turn's time.

Targets (the default, paced load): 0 errors; RSS growth < 10%; chat turn p99 < 250 ms.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import multiprocessing
import os
import random
import subprocess
import sys
import tempfile
import time
from collections import Counter, defaultdict
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import cpu_seconds, percentile, print_ratio, scratch_database
from tests.helpers import TEST_SECRET, free_port, mcp_over_http, token

Samples = dict[str, list[float]]  # operation -> seconds of each call inside the window


def rss_kib(pid: int) -> int:
    """VmRSS of a process, in KiB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise RuntimeError(f"no VmRSS for pid {pid}")


@contextlib.contextmanager
def embedded_server(url: str, port: int, log: Any) -> Iterator[subprocess.Popen[bytes]]:
    """`python -m bench.embedded_server` (the app of `todo-chatbot serve`) until /readyz answers;
    its output goes to `log`."""
    env = {
        **os.environ,
        "DATABASE_URL": url,
        "AUTH_SECRET": TEST_SECRET,
        "LOG_LEVEL": "WARNING",
        "OPENAI_API_KEY": "",  # the offline model
    }
    process = subprocess.Popen(
        [sys.executable, "-m", "bench.embedded_server", "--port", str(port)],
        env=env,
        cwd=Path(__file__).resolve().parent.parent,
        stdout=log,
        stderr=log,
    )
    try:
        deadline = time.monotonic() + 60
        while True:
            with contextlib.suppress(httpx.HTTPError):
                if httpx.get(f"http://127.0.0.1:{port}/readyz", timeout=1).status_code == 200:
                    break
            if process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError("the embedded server did not start")
            time.sleep(0.1)
        yield process
    finally:
        process.terminate()
        process.wait(timeout=15)


# ---- chat sessions ---------------------------------------------------------------------------


def utterances(n: int) -> list[str]:
    """One round of what a person says: add, list, complete, search (task names unique per round)."""
    return [
        f"add buy milk {n} tomorrow at 9am #errands",
        "what's due today?",
        f"add call the plumber about leak {n} friday 3pm",
        "show my tasks",
        f"mark buy milk {n} done",
        f"search leak {n}",
        f"complete call the plumber about leak {n}",
        "list tasks tagged errands",
    ]


async def chat_session(
    base: str, user: str, window: tuple[float, float], samples: Samples, errors: Counter[str], think: float
) -> None:
    start, stop = window
    headers = {"Authorization": f"Bearer {token(user, expires_in=24 * 3600)}"}
    conversation: str | None = None
    pacing = random.Random(user)
    await asyncio.sleep(think * pacing.random())
    async with httpx.AsyncClient(base_url=base, headers=headers, timeout=30) as http:
        rounds = 0
        while time.time() < stop:
            rounds += 1
            for message in utterances(rounds):
                if time.time() >= stop:
                    return
                began = time.time()
                try:
                    response = await http.post(
                        "/api/chat",
                        params={"stream": "false"},
                        json={"message": message, "conversation_id": conversation},
                    )
                    ended = time.time()
                    if response.status_code != 200:
                        error = f"chat http {response.status_code}"
                    else:
                        reply = response.json()
                        conversation = reply["conversation_id"]
                        error = f"chat {reply['error']['kind']}" if reply.get("error") else ""
                        failed = [
                            call for call in reply["tool_calls"] if not isinstance(call.get("output"), dict)
                        ]
                        if not error and failed:  # a tool answered text (an error), not its JSON result
                            error = f"chat {failed[0]['name']} failed: {str(failed[0].get('output'))[:60]}"
                except httpx.HTTPError as failure:
                    ended, error = time.time(), f"chat {type(failure).__name__}"
                if start <= began and ended <= stop:
                    samples["chat turn"].append(ended - began)
                    if error:
                        errors[error] += 1
                if think:
                    await asyncio.sleep(think * pacing.uniform(0.5, 1.5))


# ---- MCP clients (run in a second process, so their SDK's work does not slow the chat clients) ---


async def mcp_client(
    base: str, user: str, window: tuple[float, float], samples: Samples, errors: Counter[str], pause: float
) -> None:
    start, stop = window
    rng = random.Random(user)
    mine: list[str] = []
    await asyncio.sleep(pause * rng.random())
    async with mcp_over_http(base, token(user, expires_in=24 * 3600)) as client:
        count = 0
        while time.time() < stop:
            count += 1
            roll = rng.random()
            if not mine or roll < 0.4:
                tool, arguments = (
                    "add_task",
                    {"title": f"load task {count}", "due": "tomorrow 5pm", "tags": ["load"]},
                )
            elif roll < 0.7:
                tool, arguments = "list_tasks", {"status": "open", "limit": 20}
            elif roll < 0.85:
                tool, arguments = (
                    "update_task",
                    {"task_id": rng.choice(mine), "title": f"load task {count} (renamed)"},
                )
            else:
                task_id = mine.pop(rng.randrange(len(mine)))
                tool, arguments = "complete_task", {"task_id": task_id}
            began = time.time()
            try:
                result = await client.call_tool(tool, arguments)
                ended = time.time()
                if result.is_error:
                    text = " ".join(getattr(block, "text", "") for block in result.content)
                    error = f"{tool} tool error: {text[:60]}"
                else:
                    error = ""
                    if tool == "add_task" and result.structured_content:
                        mine.append(str(result.structured_content["id"]))
            except Exception as failure:
                raise RuntimeError(f"MCP client {user} failed on {tool}: {failure!r}") from failure
            if start <= began and ended <= stop:
                samples[tool].append(ended - began)
                if error:
                    errors[error] += 1
            if pause:
                await asyncio.sleep(pause * rng.uniform(0.5, 1.5))


def mcp_process(base: str, clients: int, window: tuple[float, float], pause: float, out: Any) -> None:
    async def main() -> None:
        samples: Samples = defaultdict(list)
        errors: Counter[str] = Counter()
        users = [f"load-mcp-{index}-{os.getpid()}" for index in range(clients)]
        results = await asyncio.gather(
            *(mcp_client(base, user, window, samples, errors, pause) for user in users),
            return_exceptions=True,
        )
        for result in results:
            if isinstance(result, BaseException):
                errors[f"client crashed: {type(result.__cause__ or result).__name__}"] += 1
        out.put((dict(samples), dict(errors)))

    asyncio.run(main())


# ---- the run ---------------------------------------------------------------------------------


async def chat_load(
    base: str, sessions: int, window: tuple[float, float], pid: int, think: float
) -> tuple[Samples, Counter[str], list[tuple[int, float]]]:
    samples: Samples = defaultdict(list)
    errors: Counter[str] = Counter()
    server: list[tuple[int, float]] = []  # (RSS KiB, CPU s) at the start of the window, ..., at the end

    async def watch_server() -> None:
        await asyncio.sleep(max(0.0, window[0] - time.time()))
        while True:
            server.append((rss_kib(pid), cpu_seconds(pid)))
            if time.time() >= window[1]:
                return
            await asyncio.sleep(min(1.0, max(0.0, window[1] - time.time())))

    users = [f"load-chat-{index}-{os.getpid()}" for index in range(sessions)]
    results = await asyncio.gather(
        watch_server(),
        *(chat_session(base, user, window, samples, errors, think) for user in users),
        return_exceptions=True,
    )
    for result in results:
        if isinstance(result, BaseException):
            errors[f"chat session crashed: {type(result).__name__}"] += 1
    return samples, errors, server


def row(name: str, seconds: list[float], window: float) -> str:
    if not seconds:
        return f"  {name:<26}{0:>8}"
    return (
        f"  {name:<26}{len(seconds):>8}{percentile(seconds, 50) * 1000:>10.1f}"
        f"{percentile(seconds, 99) * 1000:>10.1f}{len(seconds) / window:>10.1f}"
    )


def run(seconds: float, warmup: float, sessions: int, clients: int, think: float, pause: float) -> None:
    with scratch_database() as url:
        port = free_port()
        log = tempfile.NamedTemporaryFile(prefix="bench-load-server-", suffix=".log", delete=False)  # noqa: SIM115
        with log, embedded_server(url, port, log) as server:
            base = f"http://127.0.0.1:{port}"
            start = time.time() + warmup + 3.0  # the MCP process needs a moment to import and connect
            window = (start, start + seconds)
            context = multiprocessing.get_context("spawn")
            queue = context.Queue()
            arguments = (base, clients, window, pause, queue)
            child = context.Process(target=mcp_process, args=arguments, daemon=True)
            child.start()
            samples, errors, watched = asyncio.run(chat_load(base, sessions, window, server.pid, think))
            mcp_samples, mcp_errors = queue.get(timeout=120)
            child.join(30)
    samples.update(mcp_samples)
    errors.update(mcp_errors)

    print(
        f"load: {sessions} chat sessions + {clients} MCP clients, "
        f"{seconds:.0f} s after a {warmup:.0f} s warm-up"
        + (f", {think:.1f} s between a session's turns" if think else ", each turn right after the last")
        + (f", {pause:.1f} s between an MCP client's calls" if pause else ", each call right after the last")
    )
    print(f"  {'operation':<26}{'n':>8}{'p50 ms':>10}{'p99 ms':>10}{'per s':>10}")
    for name in ["chat turn", "add_task", "list_tasks", "update_task", "complete_task"]:
        print(row(name, samples.get(name, []), seconds))
    mcp_calls = sum(
        len(samples.get(name, [])) for name in ("add_task", "list_tasks", "update_task", "complete_task")
    )
    print(
        f"  throughput: {len(samples['chat turn']) / seconds:.1f} chat turns/s, "
        f"{mcp_calls / seconds:.1f} MCP calls/s"
    )
    total_errors = sum(errors.values())
    print(f"  errors: {total_errors}")
    for kind, count in errors.most_common():
        print(f"    {count:>6}  {kind}")
    (before, cpu_before), (after, cpu_after) = watched[0], watched[-1]
    growth = (after - before) / before * 100
    peak = max(rss for rss, _ in watched)
    print(
        f"  server RSS: {before / 1024:.1f} MiB at the start of the window, "
        f"{after / 1024:.1f} MiB at the end ({growth:+.1f}%), peak {peak / 1024:.1f} MiB"
    )
    quarters = [watched[round(index * (len(watched) - 1) / 4)][0] / 1024 for index in range(5)]
    print("  server RSS at each quarter of the window (MiB): " + ", ".join(f"{mib:.1f}" for mib in quarters))
    print(f"  server CPU: {(cpu_after - cpu_before) / seconds:.2f} cores on average (one process, one loop)")
    print(f"  server log: {log.name}")
    print("targets:")
    print_ratio("errors", total_errors, 0)
    print_ratio("server RSS growth over the window (%)", growth, 10)
    if not think and not pause:
        print("  chat turn p99: closed loop measures capacity (its latency is the queue); judged paced")
        return
    chat = samples["chat turn"]
    print_ratio("chat turn p99 (ms)", percentile(chat, 99) * 1000 if chat else float("inf"), 250)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--seconds", type=float, default=60, help="the measured window (default 60)")
    parser.add_argument("--warmup", type=float, default=5, help="load before the window (default 5)")
    parser.add_argument("--chat-sessions", type=int, default=50)
    parser.add_argument("--mcp-clients", type=int, default=20)
    parser.add_argument(
        "--think", type=float, default=3.0, help="seconds a person pauses between turns (default 3)"
    )
    parser.add_argument(
        "--mcp-pause", type=float, default=1.0, help="seconds an MCP client waits between calls (default 1)"
    )
    parser.add_argument(
        "--closed-loop",
        action="store_true",
        help="no pauses: every request the moment the last is answered (capacity, not the targets)",
    )
    args = parser.parse_args()
    think, pause = (0.0, 0.0) if args.closed_loop else (args.think, args.mcp_pause)
    run(args.seconds, args.warmup, args.chat_sessions, args.mcp_clients, think, pause)


if __name__ == "__main__":
    main()
