"""Every table of every package, for migrations and schema checks."""

from __future__ import annotations

from sqlmodel import SQLModel

import event_handlers.models  # noqa: F401  (importing a models module registers its tables)
import mcp_server.models  # noqa: F401

metadata = SQLModel.metadata
