"""Tables of the event handlers: idempotency records, embedded jobs, dead letters."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Column, Index, Text
from sqlmodel import Field, SQLModel

from mcp_server.db import UTCDateTime
from mcp_server.models import BigId, JSONDocument, utcnow


class ProcessedEvent(SQLModel, table=True):
    """`(consumer, event id)`, written in the same transaction as the consumer's side effect."""

    __tablename__ = "processed_events"

    consumer: str = Field(primary_key=True, max_length=64)
    event_id: str = Field(primary_key=True, max_length=128)
    processed_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)


class ScheduledJob(SQLModel, table=True):
    """A job of the embedded scheduler (the Dapr Jobs API's stand-in): survives restarts."""

    __tablename__ = "scheduled_jobs"
    __table_args__ = (Index("ix_scheduled_jobs_due", "due_at"),)

    name: str = Field(primary_key=True, max_length=200)
    due_at: datetime = Field(sa_type=UTCDateTime)
    data: dict[str, Any] = Field(sa_column=Column(JSONDocument, nullable=False))
    attempts: int = 0
    max_attempts: int = 4
    retry_seconds: float = 3.0
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)


class DeadLetter(SQLModel, table=True):
    """An event a handler dropped (the embedded `task-events-dlq`)."""

    __tablename__ = "dead_letters"

    id: int | None = Field(default=None, sa_column=Column(BigId, primary_key=True, autoincrement=True))
    consumer: str = Field(max_length=64)
    event_id: str | None = Field(default=None, max_length=128)
    reason: str = Field(sa_type=Text)
    body: str = Field(sa_type=Text)
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
