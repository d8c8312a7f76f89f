"""values.schema.json: closed at every level, typed, and enforced both by jsonschema and by Helm itself;
the values files are documented key by key."""

from __future__ import annotations

import json
import re
from typing import Any

import helm_python
import jsonschema
import pytest
import yaml

from tests.chart.rendering import CHART, NAMESPACE, RELEASE, chart, deep_merge, values_file

SCHEMA: dict[str, Any] = json.loads((CHART / "values.schema.json").read_text())
VALUES_FILES = ("values.yaml", "values-minikube.yaml", "values-aks.yaml")

# (overrides, what is wrong): wrong types and unknown keys at several depths.
INVALID = [
    ({"port": "8000"}, "port is a string"),
    ({"services": {"agent": {"replicas": "two"}}}, "replicas is a string"),
    ({"kafka": {"enabled": "yes"}}, "enabled is a string"),
    ({"dapr": {"pubsub": {"authType": "sasl"}}}, "authType outside its enum"),
    ({"secrets": {"authSecret": "too-short"}}, "AUTH_SECRET under 32 characters"),
    ({"replicaCount": 2}, "unknown top-level key"),
    ({"services": {"worker": {"enabled": True}}}, "unknown service"),
    ({"services": {"agent": {"replica": 2}}}, "misspelt service key"),
    ({"kafka": {"storage": {"sizeGi": 5}}}, "unknown nested key"),
    ({"ingress": {"tls": {"enabled": True, "secret": "x"}}}, "unknown key two levels down"),
]


def walk(node: Any, path: str = "#") -> list[tuple[str, dict[str, Any]]]:
    """Every schema object in the document, with its JSON pointer."""
    found: list[tuple[str, dict[str, Any]]] = []
    if isinstance(node, dict):
        found.append((path, node))
        for key, value in node.items():
            found += walk(value, f"{path}/{key}")
    elif isinstance(node, list):
        for index, value in enumerate(node):
            found += walk(value, f"{path}/{index}")
    return found


def test_schema_is_valid_draft_2020_12() -> None:
    assert SCHEMA["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    jsonschema.Draft202012Validator.check_schema(SCHEMA)


def test_every_object_level_is_closed_or_a_typed_map() -> None:
    for path, node in walk(SCHEMA):
        if node.get("type") != "object":
            continue
        extra = node.get("additionalProperties")
        if "properties" in node:
            assert extra is False, f"{path} accepts unknown keys"
        else:  # a free-form map (labels, annotations): its values must still be typed
            assert isinstance(extra, dict) and "type" in extra, f"{path} is an untyped map"


def test_every_leaf_has_a_type() -> None:
    for path, node in walk(SCHEMA):
        if path.endswith("/$defs") or path.endswith("/properties") or "type" in node or "$ref" in node:
            continue
        if "oneOf" in node or "anyOf" in node:
            continue
        if re.search(r"/properties/[^/]+$", path) or re.search(r"/\$defs/[^/]+$", path):
            pytest.fail(f"{path} has no type")


@pytest.mark.parametrize("name", VALUES_FILES)
def test_values_files_satisfy_the_schema(name: str) -> None:
    values = deep_merge(values_file("values.yaml"), values_file(name))
    jsonschema.Draft202012Validator(SCHEMA).validate(values)


@pytest.mark.parametrize(("overrides", "problem"), INVALID, ids=[problem for _, problem in INVALID])
def test_jsonschema_rejects_bad_values(overrides: dict[str, Any], problem: str) -> None:
    values = deep_merge(values_file("values.yaml"), overrides)
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.Draft202012Validator(SCHEMA).validate(values)


@pytest.mark.parametrize(("overrides", "problem"), INVALID, ids=[problem for _, problem in INVALID])
def test_helm_rejects_bad_values_on_validate_render_and_lint(overrides: dict[str, Any], problem: str) -> None:
    with pytest.raises(helm_python.HelmValuesError):
        chart().validate_schema(chart().merge_values(overrides))
    with pytest.raises(helm_python.HelmValuesError):
        chart().render(overrides, name=RELEASE, namespace=NAMESPACE)
    report = helm_python.lint(CHART, overrides, namespace=NAMESPACE)
    assert report["errors"], problem


def test_helm_reads_the_same_schema() -> None:
    assert chart().schema == SCHEMA


KEY = re.compile(r"^(\s*)(?:- )?(\"[^\"]+\"|'[^']+'|[^\s#:][^:#]*?):(\s|$)")


@pytest.mark.parametrize("name", VALUES_FILES)
def test_every_key_in_the_values_files_has_a_comment(name: str) -> None:
    """Each key has a comment on the line above or at the end of its line."""
    lines = (CHART / name).read_text().splitlines()
    undocumented = []
    for number, line in enumerate(lines):
        if not KEY.match(line):
            continue
        previous = next((lines[i].strip() for i in range(number - 1, -1, -1) if lines[i].strip()), "")
        if not previous.startswith("#") and " # " not in line:
            undocumented.append(f"{name}:{number + 1}: {line.strip()}")
    assert undocumented == []
    assert yaml.safe_load((CHART / name).read_text())  # and it still parses
