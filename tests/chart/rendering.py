"""Render chart/ offline with the real Helm engine (helm-python-sdk binds Helm's Go SDK; no helm binary,
no cluster) and hand the tests plain objects."""

from __future__ import annotations

import copy
import functools
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import helm_python
import yaml

REPO = Path(__file__).resolve().parents[2]
CHART = REPO / "chart"
RELEASE = "todo"
NAMESPACE = "todo"

# Distinctive secret values: none of them may appear in any object but a Secret.
SECRETS = {
    "auth": "auth-secret-Zq7Xv2Lw9Kp4Rt6Yb1Nm3Hd8Fs5Gj0Ce",
    "openai": "sk-test-openai-Wm2Qz8Rk4Vn6Tx1Pb9Lh",
    "api_token": "dapr-api-token-Hy5Ud7Oi3Ka9Es1Wr",
    "app_token": "dapr-app-token-Bc4Nj8Mv2Gx6Lq0Tz",
    "pg_password": "pg-password-Fo3Ri9Ye5Kw1Ua7Sd",
    "database_url": "postgresql://todo:db-password-Xe2Lp6Ck0Vb4Nq8Ji@db.example.com:5432/todo?sslmode=require",
}
SECRET_OVERRIDES: dict[str, Any] = {
    "secrets": {"authSecret": SECRETS["auth"], "openaiApiKey": SECRETS["openai"]},
    "dapr": {"apiToken": {"value": SECRETS["api_token"]}, "appToken": {"value": SECRETS["app_token"]}},
    "postgresql": {"password": SECRETS["pg_password"]},
}

# Named value sets: a values file merged over the chart defaults as `helm -f` does, plus overrides.
SCENARIOS: dict[str, tuple[str | None, dict[str, Any]]] = {
    # Nothing but the chart's own defaults (secrets generated).
    "default": (None, {}),
    "minikube": ("values-minikube.yaml", SECRET_OVERRIDES),
    "aks": ("values-aks.yaml", SECRET_OVERRIDES),
    # AKS without the existing Secrets: an inline external DATABASE_URL, Event Hubs-style Kafka
    # (SASL password from a Secret), existing Dapr token Secrets, OpenTelemetry tracing.
    "external": (
        "values-aks.yaml",
        {
            **SECRET_OVERRIDES,
            "secrets": {
                "existingSecret": "",
                "databaseUrl": SECRETS["database_url"],
                "authSecret": SECRETS["auth"],
                "openaiApiKey": SECRETS["openai"],
            },
            "kafka": {"enabled": False},
            "dapr": {
                "apiToken": {"existingSecret": "todo-dapr-api"},
                "appToken": {"existingSecret": "todo-dapr-app"},
                "pubsub": {
                    "brokers": "todo-ns.servicebus.windows.net:9093",
                    "authType": "password",
                    "saslUsername": "$ConnectionString",
                    "saslPasswordSecret": {"name": "eventhubs", "key": "connectionString"},
                    "disableTls": False,
                    "version": "1.0.0",
                },
                "tracing": {"otel": {"endpointAddress": "otel-collector.observability:4317"}},
            },
        },
    ),
}


def deep_merge(base: dict[str, Any], override: dict[str, Any]) -> dict[str, Any]:
    """`override` over `base`, maps merged key by key (as Helm layers -f files and --set)."""
    merged = copy.deepcopy(base)
    for key, value in override.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = deep_merge(merged[key], value)
        else:
            merged[key] = copy.deepcopy(value)
    return merged


def values_file(name: str) -> dict[str, Any]:
    loaded: dict[str, Any] = yaml.safe_load((CHART / name).read_text()) or {}
    return loaded


def scenario_values(scenario: str) -> dict[str, Any]:
    file, overrides = SCENARIOS[scenario]
    return deep_merge(values_file(file) if file else {}, overrides)


@functools.cache
def chart() -> helm_python.Chart:
    return helm_python.Chart.load(CHART)


@dataclass(frozen=True)
class Rendered:
    """The objects of one render, and its NOTES.txt."""

    objects: tuple[dict[str, Any], ...]
    notes: str
    values: dict[str, Any]

    def of_kind(self, kind: str) -> list[dict[str, Any]]:
        return [obj for obj in self.objects if obj["kind"] == kind]

    def one(self, kind: str, name: str) -> dict[str, Any]:
        matches = [obj for obj in self.of_kind(kind) if obj["metadata"]["name"] == name]
        assert len(matches) == 1, f"expected one {kind} named {name}, found {len(matches)}"
        return matches[0]


def render_values(values: dict[str, Any]) -> Rendered:
    manifests = chart().render(values, name=RELEASE, namespace=NAMESPACE, is_install=True)
    objects: list[dict[str, Any]] = []
    notes = ""
    for path, text in sorted(manifests.items()):
        if path.endswith("NOTES.txt"):
            notes = text
            continue
        for doc in yaml.safe_load_all(text):
            if doc:
                assert isinstance(doc, dict) and "kind" in doc, (
                    f"{path} rendered something that is not an object"
                )
                objects.append(doc)
    return Rendered(tuple(objects), notes, chart().merge_values(values))


@functools.cache
def _render_cached(values_json: str) -> Rendered:
    return render_values(json.loads(values_json))


def render(scenario: str) -> Rendered:
    """Render a named scenario (cached: objects are shared, do not mutate them)."""
    return _render_cached(json.dumps(scenario_values(scenario), sort_keys=True))
