"""Validate Kubernetes objects: built-in kinds with kubernetes-validate (strict), Dapr and Strimzi kinds
against their CustomResourceDefinitions (tests/chart/crds), the way the API server would.

A CRD's `openAPIV3Schema` is a "structural schema", not plain JSON Schema. To validate like the API
server with `kubectl apply` (field validation Strict), the conversion below:
- rejects unknown fields: every object schema without `x-kubernetes-preserve-unknown-fields` and
  without `additionalProperties` gets `additionalProperties: false` (the API server would reject or
  prune them, and a pruned field is a silently lost setting either way);
- turns `x-kubernetes-int-or-string` into integer-or-string and `nullable: true` into "or null";
- checks the root `metadata` against the Kubernetes ObjectMeta schema (the CRD leaves it open);
- leaves out `x-kubernetes-validations` (CEL rules need a CEL engine; none of the chart's objects sets
  a field those rules cover).
"""

from __future__ import annotations

import copy
import functools
import importlib.resources
import json
from pathlib import Path
from typing import Any

import jsonschema
import kubernetes_validate
import yaml
from referencing import Registry, Resource

CRD_DIR = Path(__file__).with_name("crds")
# The oldest Kubernetes the chart supports (Chart.yaml kubeVersion), and the newest the package knows.
KUBE_VERSIONS = ("1.30", kubernetes_validate.utils.major_minor(kubernetes_validate.latest_version()))
OBJECT_META = (
    "https://kubernetes.io/api/_definitions.json#/$defs/io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta"
)


class NoSchemaError(AssertionError):
    """A rendered kind that neither Kubernetes nor a known CRD defines."""


def _k8s_definitions() -> dict[str, Any]:
    """kubernetes-validate's strict definitions for the oldest supported version (ObjectMeta and friends)."""
    versions = kubernetes_validate.utils.all_versions()
    version = [v for v in versions if v.startswith(KUBE_VERSIONS[0] + ".")][-1]
    path = importlib.resources.files("kubernetes_validate").joinpath(
        f"kubernetes-json-schema/v{version}-local-strict/_definitions.json"
    )
    definitions: dict[str, Any] = json.loads(path.read_text())
    return definitions


def structural_to_json_schema(node: Any) -> Any:
    """Turn one node of a CRD structural schema into JSON Schema with the API server's strictness."""
    if isinstance(node, list):
        return [structural_to_json_schema(item) for item in node]
    if not isinstance(node, dict):
        return node
    out: dict[str, Any] = {}
    for key, value in node.items():
        if key == "description" or key == "nullable" or key.startswith("x-kubernetes-"):
            continue
        if key == "properties":
            out[key] = {name: structural_to_json_schema(sub) for name, sub in value.items()}
        elif key in ("items", "additionalProperties", "not"):
            out[key] = structural_to_json_schema(value)
        elif key in ("allOf", "anyOf", "oneOf"):
            out[key] = [structural_to_json_schema(sub) for sub in value]
        else:
            out[key] = copy.deepcopy(value)
    if node.get("x-kubernetes-int-or-string"):
        out["type"] = ["integer", "string"]
    preserve = bool(node.get("x-kubernetes-preserve-unknown-fields"))
    if out.get("type") == "object" and not preserve and "additionalProperties" not in out:
        out["additionalProperties"] = False
    if node.get("nullable") and "type" in out:
        types = out["type"] if isinstance(out["type"], list) else [out["type"]]
        out["type"] = [*types, "null"]
    return out


def crd_json_schema(open_api_v3: dict[str, Any]) -> dict[str, Any]:
    schema: dict[str, Any] = structural_to_json_schema(open_api_v3)
    schema["properties"]["metadata"] = {"$ref": OBJECT_META}
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    return schema


@functools.cache
def crd_validators() -> dict[tuple[str, str], jsonschema.protocols.Validator]:
    """(apiVersion, kind) -> validator, for every served version of every CRD in tests/chart/crds."""
    definitions = _k8s_definitions()
    registry: Registry = Resource.from_contents(definitions) @ Registry()
    validators: dict[tuple[str, str], jsonschema.protocols.Validator] = {}
    for path in sorted(CRD_DIR.glob("*/*.yaml")):
        for crd in yaml.safe_load_all(path.read_text()):
            if not crd or crd.get("kind") != "CustomResourceDefinition":
                continue
            group, kind = crd["spec"]["group"], crd["spec"]["names"]["kind"]
            for version in crd["spec"]["versions"]:
                if not version.get("served"):
                    continue
                schema = crd_json_schema(version["schema"]["openAPIV3Schema"])
                jsonschema.Draft202012Validator.check_schema(schema)
                validators[(f"{group}/{version['name']}", kind)] = jsonschema.Draft202012Validator(
                    schema, registry=registry
                )
    return validators


def crd_kinds() -> set[tuple[str, str]]:
    return set(crd_validators())


def validation_errors(obj: dict[str, Any]) -> list[str]:
    """Every schema violation of one object, as readable lines; raises NoSchemaError for unknown kinds."""
    key = (obj.get("apiVersion", ""), obj.get("kind", ""))
    name = f"{key[1]}/{obj.get('metadata', {}).get('name', '?')} ({key[0]})"
    validator = crd_validators().get(key)
    if validator is not None:
        return [
            f"{name}: {'/'.join(map(str, error.absolute_path)) or '<root>'}: {error.message}"
            for error in validator.iter_errors(obj)
        ]
    problems = []
    for version in KUBE_VERSIONS:
        try:
            kubernetes_validate.validate(obj, version, strict=True)
        except kubernetes_validate.SchemaNotFoundError as error:
            raise NoSchemaError(f"{name}: no Kubernetes {version} or CRD schema covers this kind") from error
        except kubernetes_validate.ValidationError as error:
            path = "/".join(map(str, error.absolute_path)) or "<root>"
            problems.append(f"{name} (Kubernetes {version}): {path}: {error.message}")
    return problems
