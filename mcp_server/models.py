"""Tables of the task domain: users, tasks and the transactional outbox."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from enum import IntEnum
from typing import Any

from sqlalchemy import JSON, BigInteger, Column, Index, Integer, SmallInteger, Text, UniqueConstraint, text
from sqlalchemy.dialects.postgresql import JSONB
from sqlmodel import Field, SQLModel

from mcp_server.db import UTCDateTime

JSONDocument = JSON().with_variant(JSONB(), "postgresql")
# A 64-bit key that is SQLite's rowid alias there (only INTEGER PRIMARY KEY autoincrements in SQLite).
BigId = BigInteger().with_variant(Integer(), "sqlite")


def utcnow() -> datetime:
    return datetime.now(UTC)


class Priority(IntEnum):
    """Stored as a small integer so that sorting by priority can use an index."""

    none = 0
    low = 1
    medium = 2
    high = 3
    urgent = 4


class UserAccount(SQLModel, table=True):
    """Per-user state: the time zone dates are read in, and the sequence number of the last event."""

    __tablename__ = "users"

    user_id: str = Field(primary_key=True, max_length=255)
    timezone: str = Field("UTC", max_length=64)
    last_seq: int = Field(0, sa_type=BigInteger)
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)


LISTING_INDEXES = (
    Index("ix_tasks_user_due", "user_id", "completed", "due_at", text("priority DESC"), "id"),
    Index("ix_tasks_user_priority", "user_id", "completed", text("priority DESC"), "due_at"),
    Index("ix_tasks_user_created", "user_id", "completed", text("created_at DESC"), text("id DESC")),
    Index("ix_tasks_user_updated", "user_id", "completed", text("updated_at DESC"), text("id DESC")),
    Index("ix_tasks_user_title", "user_id", "completed", text("lower(title)"), "id"),
)


class Task(SQLModel, table=True):
    __tablename__ = "tasks"
    __table_args__ = (
        # Each listing order, open tasks before done ones, is one of these indexes read in order
        # (`TaskService._order`), so a page is read without sorting the user's other tasks
        # (migration 0004; PostgreSQL puts NULL due dates last in ascending order, as listings do).
        *LISTING_INDEXES,
        UniqueConstraint("series_id", "occurrence", name="uq_tasks_series_occurrence"),
    )

    id: uuid.UUID = Field(primary_key=True)
    user_id: str = Field(max_length=255)
    title: str = Field(max_length=200)
    description: str | None = Field(default=None, sa_type=Text)
    completed: bool = False
    completed_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    priority: int = Field(0, sa_type=SmallInteger)
    tags: list[str] = Field(default_factory=list, sa_column=Column(JSONDocument, nullable=False))
    due_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    remind_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    # Seconds before `due_at` when the reminder was given as an offset; it follows the due date.
    remind_offset_s: int | None = None
    recurrence: str | None = Field(default=None, max_length=500)
    series_id: uuid.UUID | None = None
    occurrence: int | None = None
    created_at: datetime = Field(sa_type=UTCDateTime)
    updated_at: datetime = Field(sa_type=UTCDateTime)
    version: int = 1


class OutboxEvent(SQLModel, table=True):
    """A CloudEvent written in the same transaction as the change it describes, until published."""

    __tablename__ = "outbox"
    __table_args__ = (
        Index(
            "ix_outbox_pending",
            "id",
            postgresql_where=text("published_at IS NULL"),
            sqlite_where=text("published_at IS NULL"),
        ),
        Index("ix_outbox_published", "published_at"),
    )

    id: int | None = Field(default=None, sa_column=Column(BigId, primary_key=True, autoincrement=True))
    event_id: str = Field(max_length=64, unique=True)
    event_type: str = Field(max_length=64)
    user_id: str = Field(max_length=255)
    seq: int = Field(sa_type=BigInteger)
    payload: dict[str, Any] = Field(sa_column=Column(JSONDocument, nullable=False))
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    published_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    attempts: int = 0
    last_error: str | None = Field(default=None, sa_type=Text)


class AuditEntry(SQLModel, table=True):
    """One delivered event, numbered per user: the history of every task and the replay source."""

    __tablename__ = "audit_log"
    __table_args__ = (
        UniqueConstraint("user_id", "seq", name="uq_audit_user_seq"),
        Index("ix_audit_user_task", "user_id", "task_id", "seq"),
    )

    id: int | None = Field(default=None, sa_column=Column(BigId, primary_key=True, autoincrement=True))
    user_id: str = Field(max_length=255)
    seq: int = Field(sa_type=BigInteger)
    event_id: str = Field(max_length=64, unique=True)
    event_type: str = Field(max_length=64)
    task_id: str = Field(max_length=64)
    occurred_at: datetime = Field(sa_type=UTCDateTime)
    recorded_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    event: dict[str, Any] = Field(sa_column=Column(JSONDocument, nullable=False))
