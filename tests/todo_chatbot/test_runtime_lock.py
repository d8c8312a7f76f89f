"""`make run` installs requirements.lock alone: everything the service imports while it serves must be
pinned there, not only in the dev lock (greenlet, needed by SQLAlchemy's asyncio, once came only
through playwright, and a fresh `make run` failed on its first query)."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]

# Serve a chat turn and a task listing in the embedded app (SQLite), then report the distributions
# behind every module that was imported.
SCRIPT = """
import json, sys, tempfile, importlib.metadata as md
from pathlib import Path
from starlette.testclient import TestClient
from todo_chatbot import migrate
from todo_chatbot.app import create_app
from todo_chatbot.settings import Settings
url = "sqlite:///" + str(Path(tempfile.mkdtemp()) / "todo.db")
migrate.upgrade(url)
with TestClient(create_app(Settings(database_url=url))) as client:
    assert client.post("/api/chat?stream=false", json={"message": "add buy milk tomorrow"}).status_code == 200
    assert client.get("/api/tasks").status_code == 200
owners = md.packages_distributions()
names = {owner for module in sys.modules for owner in owners.get(module.split(".")[0], [])}
print(json.dumps(sorted(names)))
"""


def pinned(lock: Path) -> set[str]:
    names = set()
    for line in lock.read_text().splitlines():
        if match := re.match(r"^([A-Za-z0-9_.\\-]+)==", line):
            names.add(re.sub(r"[-_.]+", "-", match[1]).lower())
    return names


def test_what_the_service_imports_is_in_the_runtime_lock() -> None:
    result = subprocess.run(
        [sys.executable, "-c", SCRIPT], capture_output=True, text=True, cwd=ROOT, timeout=120, check=True
    )
    used = {re.sub(r"[-_.]+", "-", name).lower() for name in json.loads(result.stdout.splitlines()[-1])}
    testing_only = {"httpx", "httpcore"}  # the TestClient driving this check
    optional = {
        "rich": "the MCP SDK's logging uses it when it is installed (the dev tools bring it)",
        "pygments": "rich's",
        "setuptools": "the virtual environment's distutils hook (.pth), not the service",
    }
    missing = used - pinned(ROOT / "requirements.lock") - testing_only - optional.keys() - {"todo-chatbot"}
    assert "greenlet" in used  # the check sees what the service really loaded
    assert not missing, f"imported while serving but not in requirements.lock: {sorted(missing)}"
