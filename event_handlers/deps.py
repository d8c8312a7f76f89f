"""What handlers are given: the database, the task service, the scheduler, the push hub, a clock."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING

from mcp_server.db import Database
from mcp_server.models import utcnow
from mcp_server.service import TaskService

if TYPE_CHECKING:
    from event_handlers.push import PushHub
    from event_handlers.scheduling import JobScheduler


@dataclass
class HandlerDeps:
    db: Database
    service: TaskService
    scheduler: JobScheduler | None = None  # the reminders handler's
    hub: PushHub | None = None  # the push handler's
    clock: Callable[[], datetime] = utcnow
