"""components/ and dapr.yaml (local `dapr run -f dapr.yaml`): valid for the Dapr 1.18 CRDs and wired
like the chart: the same subscriptions, scopes equal to the app ids that run."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from event_handlers.subscriptions import SUBSCRIPTIONS, pubsub_for
from tests.chart.rendering import REPO
from tests.chart.validation import validation_errors

COMPONENTS = REPO / "components"
FILES = sorted(COMPONENTS.glob("**/*.yaml"))
RUN_FILE: dict[str, Any] = yaml.safe_load((REPO / "dapr.yaml").read_text())
PUBSUB = RUN_FILE["common"]["env"]["PUBSUB_NAME"]
# The two pub/sub flavours; every other file is shared by both. They define the same component names,
# so exactly one flavour may sit in a resources path.
FLAVOURS = {"kafka": {"pubsub-kafka.yaml", "pubsub-broadcast.yaml"}, "redis": {"redis/pubsub-redis.yaml"}}


def objects(*paths: Path) -> list[dict[str, Any]]:
    return [doc for path in paths for doc in yaml.safe_load_all(path.read_text()) if doc]


def of_kind(kind: str, paths: list[Path] = FILES) -> list[dict[str, Any]]:
    return [obj for obj in objects(*paths) if obj["kind"] == kind]


def flavour_files(flavour: str) -> list[Path]:
    others = set().union(*(files for name, files in FLAVOURS.items() if name != flavour))
    return [path for path in FILES if str(path.relative_to(COMPONENTS)) not in others]


@pytest.mark.parametrize("path", FILES, ids=[p.name for p in FILES])
def test_each_file_is_valid_for_the_dapr_crds(path: Path) -> None:
    docs = objects(path)
    assert docs
    assert [problem for doc in docs for problem in validation_errors(doc)] == []


@pytest.mark.parametrize("flavour", FLAVOURS)
def test_each_flavour_has_unique_names_and_both_pubsub_components(flavour: str) -> None:
    components = [c["metadata"]["name"] for c in of_kind("Component", flavour_files(flavour))]
    assert sorted(components) == sorted([PUBSUB, f"{PUBSUB}-broadcast"])


def test_kafka_components_set_auth_type_and_a_protocol_version_for_kafka_4() -> None:
    for component in of_kind("Component", [COMPONENTS / name for name in FLAVOURS["kafka"]]):
        metadata = {item["name"]: item["value"] for item in component["spec"]["metadata"]}
        assert component["spec"]["type"] == "pubsub.kafka"
        assert metadata["authType"] == "none" and metadata["brokers"] == "localhost:9092"
        assert tuple(int(part) for part in metadata["version"].split(".")[:2]) >= (2, 1)


@pytest.mark.parametrize("flavour", FLAVOURS)
def test_the_broadcast_component_is_push_only_and_one_group_per_process(flavour: str) -> None:
    [broadcast] = [
        c
        for c in of_kind("Component", flavour_files(flavour))
        if c["metadata"]["name"].endswith("-broadcast")
    ]
    metadata = {item["name"]: item["value"] for item in broadcast["spec"]["metadata"]}
    assert broadcast["scopes"] == ["push"]
    assert "consumerGroup" not in metadata
    # {podName} makes a self-hosted daprd exit; a unique id gives the same "every process its own group".
    assert "{uuid}" in metadata["consumerID"]


def test_subscriptions_equal_event_handlers_subscriptions() -> None:
    found = {tuple(s["scopes"]): s for s in of_kind("Subscription")}
    assert len(found) == len(SUBSCRIPTIONS)
    env = RUN_FILE["common"]["env"]
    for handler, subscription in SUBSCRIPTIONS.items():
        assert found[(handler,)]["spec"] == {
            "pubsubname": pubsub_for(subscription, PUBSUB),
            "topic": env["TOPIC"],
            "routes": {
                "rules": [{"match": subscription.match, "path": subscription.path}],
                "default": subscription.default_path,
            },
            "deadLetterTopic": env["DEAD_LETTER_TOPIC"],
        }


def test_every_subscribed_component_retries_inbound_before_dead_lettering() -> None:
    [resiliency] = of_kind("Resiliency")
    targets = resiliency["spec"]["targets"]["components"]
    retries = resiliency["spec"]["policies"]["retries"]
    for subscription in of_kind("Subscription"):
        assert retries[targets[subscription["spec"]["pubsubname"]]["inbound"]["retry"]]["maxRetries"] != 0
    assert "circuitBreaker" in targets[PUBSUB]["outbound"]


def test_run_file_structure() -> None:
    assert RUN_FILE["version"] == 1
    assert RUN_FILE["common"]["resourcesPath"] == "./components"
    assert (REPO / RUN_FILE["common"]["configFilePath"]).is_file()
    apps = RUN_FILE["apps"]
    assert {app["appID"] for app in apps} == {
        "agent",
        "mcp-server",
        "audit",
        "reminders",
        "recurring",
        "push",
    }
    ports = [app["appPort"] for app in apps]
    assert len(set(ports)) == len(ports), "each app needs its own port locally"
    for app in apps:
        assert set(app) <= {"appID", "appDirPath", "appPort", "command", "env"}
        command = app["command"]
        assert command[0] == "todo-chatbot"
        assert command[command.index("--port") + 1] == str(app["appPort"]), app["appID"]
        assert command[command.index("--host") + 1] == "127.0.0.1", app["appID"]
        assert app["appID"] in command, "the app id names the service the command runs"
    assert RUN_FILE["common"]["env"]["SUBSCRIPTIONS"] == "declarative"
    agent = next(app for app in apps if app["appID"] == "agent")
    mcp = next(app for app in apps if app["appID"] == "mcp-server")
    assert agent["env"]["MCP_URL"] == f"http://127.0.0.1:{mcp['appPort']}/mcp"


def test_run_file_app_ids_equal_the_scopes_in_components() -> None:
    app_ids = {app["appID"] for app in RUN_FILE["apps"]}
    scoped = {scope for obj in objects(*FILES) for scope in obj.get("scopes", [])}
    # The agent uses no Dapr resource (it reaches tasks over MCP); every other app is scoped somewhere.
    assert scoped == app_ids - {"agent"}
