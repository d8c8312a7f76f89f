"""`connect_cleanly`: a connection attempt whose caller is cancelled leaves nothing half-made.

PostgreSQL cannot finish a fast shutdown while a client it accepted has not sent its startup packet
(it waits up to `authentication_timeout`, 60 s). A psycopg attempt cancelled between its SSL request
and its startup packet kept its socket open for as long as the CancelledError's traceback lived.
"""

from __future__ import annotations

import asyncio
import struct
import uuid

import psycopg
import pytest

from mcp_server.db import connect_cleanly

SSL_REQUEST = struct.pack("!ii", 8, 80877103)


def shutting_down_error() -> bytes:
    fields = b"SFATAL\0VFATAL\0C57P03\0Mthe database system is shutting down\0\0"
    return b"E" + struct.pack("!i", 4 + len(fields)) + fields


async def test_a_cancelled_attempt_still_finishes_its_handshake() -> None:
    """A server slow to answer the SSL request (as a dead-end backend at shutdown may be): the
    caller gives up meanwhile, and the server still gets the startup packet, answers, and is done."""
    startup_packet = asyncio.Event()

    async def dead_end_backend(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        assert await reader.readexactly(8) == SSL_REQUEST
        await asyncio.sleep(0.5)
        writer.write(b"N")  # no SSL
        length = struct.unpack("!i", await reader.readexactly(4))[0]
        await reader.readexactly(length - 4)
        startup_packet.set()
        writer.write(shutting_down_error())
        await writer.drain()
        writer.close()

    server = await asyncio.start_server(dead_end_backend, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    kept: list[BaseException] = []  # the caller's CancelledError stays alive, as in a task or a log record
    try:
        caller = asyncio.create_task(
            connect_cleanly(f"host=127.0.0.1 port={port} user=u dbname=d sslmode=prefer")
        )
        await asyncio.sleep(0.2)
        caller.cancel()
        with pytest.raises(asyncio.CancelledError) as cancelled:
            await caller
        kept.append(cancelled.value)
        await asyncio.wait_for(startup_packet.wait(), 3)
    finally:
        server.close()
        await server.wait_closed()


async def test_a_connection_made_after_its_caller_left_is_closed(postgres_url: str) -> None:
    name = f"orphan-{uuid.uuid4().hex[:8]}"
    conninfo = postgres_url.replace("postgresql+psycopg://", "postgresql://")
    caller = asyncio.create_task(connect_cleanly(conninfo, application_name=name))
    await asyncio.sleep(0)  # the attempt has started
    caller.cancel()
    with pytest.raises(asyncio.CancelledError):
        await caller
    async with await psycopg.AsyncConnection.connect(conninfo, autocommit=True) as watcher:
        for _ in range(100):
            cursor = await watcher.execute(
                "SELECT count(*) FROM pg_stat_activity WHERE application_name = %s", (name,)
            )
            row = await cursor.fetchone()
            if row == (0,):
                break
            await asyncio.sleep(0.05)
        assert row == (0,), "the connection made for a caller that had left is still open"
