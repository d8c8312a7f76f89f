"""Every table of every package, for migrations and schema checks."""

from __future__ import annotations

from sqlmodel import SQLModel

import agent.memory
import event_handlers.models  # noqa: F401  (importing a models module registers its tables)
import mcp_server.models  # noqa: F401

metadata = SQLModel.metadata
# The agent keeps its tables (conversations, the Agents SDK's sessions) on a MetaData of its own.
for table in agent.memory.metadata.tables.values():
    if table.name not in metadata.tables:
        table.to_metadata(metadata)
