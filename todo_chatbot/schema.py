"""Every table of every package, for migrations and schema checks."""

from __future__ import annotations

from sqlmodel import SQLModel

import mcp_server.models  # noqa: F401  (importing registers the tables)

metadata = SQLModel.metadata
