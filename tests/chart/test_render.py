"""The chart renders with the real Helm engine, lints clean, and every object it renders is valid for
Kubernetes 1.30+ or for the Dapr 1.18 / Strimzi 1.2 CRDs."""

from __future__ import annotations

import copy
from collections import Counter

import helm_python
import pytest

from tests.chart.rendering import CHART, NAMESPACE, SCENARIOS, render, scenario_values
from tests.chart.validation import KUBE_VERSIONS, NoSchemaError, validation_errors

# Helm severities: 1 info, 2 warning, 3 error. The one info Helm gives this chart is "icon is
# recommended" (Chart.yaml has no icon URL); warnings and errors fail the test.
WARNING = 2


@pytest.mark.parametrize("scenario", SCENARIOS)
@pytest.mark.parametrize("kube_version", KUBE_VERSIONS)
def test_lint_reports_no_warnings_or_errors(scenario: str, kube_version: str) -> None:
    report = helm_python.lint(
        CHART, scenario_values(scenario), namespace=NAMESPACE, strict=True, kube_version=f"v{kube_version}.0"
    )
    problems = [message for message in report["messages"] if message["severity"] >= WARNING]
    assert problems == [] and report["errors"] == []


@pytest.mark.parametrize("scenario", SCENARIOS)
def test_every_rendered_object_is_valid_for_its_schema(scenario: str) -> None:
    rendered = render(scenario)
    problems = [problem for obj in rendered.objects for problem in validation_errors(obj)]
    assert problems == []


@pytest.mark.parametrize("scenario", SCENARIOS)
def test_object_names_are_unique_per_kind(scenario: str) -> None:
    names = Counter((obj["kind"], obj["metadata"]["name"]) for obj in render(scenario).objects)
    assert [key for key, count in names.items() if count > 1] == []


@pytest.mark.parametrize(
    ("scenario", "expected"),
    [
        (
            "default",
            {
                "Deployment": 6, "Service": 7, "Subscription": 4, "Component": 2, "Resiliency": 1,
                "Configuration": 1, "Kafka": 1, "KafkaNodePool": 1, "KafkaTopic": 2, "StatefulSet": 1,
                "Job": 1, "Secret": 3, "ConfigMap": 1, "ServiceAccount": 1,
            },
        ),
        ("minikube", {"Deployment": 6, "Ingress": 1, "StatefulSet": 1, "Kafka": 1, "PodDisruptionBudget": 0}),
        (
            "aks",
            {
                "Deployment": 6, "HorizontalPodAutoscaler": 6, "PodDisruptionBudget": 6, "StatefulSet": 0,
                "Kafka": 1, "Ingress": 1, "Secret": 2,
            },
        ),
        ("external", {"Kafka": 0, "KafkaNodePool": 0, "KafkaTopic": 0, "StatefulSet": 0, "Secret": 1}),
    ],
)  # fmt: skip
def test_each_scenario_renders_the_expected_objects(scenario: str, expected: dict[str, int]) -> None:
    counts = Counter(obj["kind"] for obj in render(scenario).objects)
    assert {kind: counts.get(kind, 0) for kind in expected} == expected


def test_a_disabled_service_leaves_no_trace() -> None:
    from tests.chart.rendering import render_values

    rendered = render_values({"services": {"push": {"enabled": False}}, "ingress": {"enabled": True}})
    text = repr(rendered.objects)
    assert "todo-todo-chatbot-push" not in text
    assert not [c for c in rendered.of_kind("Component") if c["metadata"]["name"] == "taskpubsub-broadcast"]
    assert len(rendered.of_kind("Subscription")) == 3


# The validators themselves: they must fail on what the API server would reject.


def test_validation_rejects_unknown_fields_in_builtin_and_custom_kinds() -> None:
    rendered = render("minikube")
    for kind in ("Deployment", "Kafka", "KafkaNodePool", "Component", "Subscription", "Resiliency"):
        obj = copy.deepcopy(rendered.of_kind(kind)[0])
        obj["spec"]["unknownField"] = True
        assert validation_errors(obj), kind


def test_validation_rejects_zookeeper_and_wrong_types() -> None:
    kafka = copy.deepcopy(render("minikube").of_kind("Kafka")[0])
    kafka["spec"]["zookeeper"] = {"replicas": 1, "storage": {"type": "ephemeral"}}
    assert validation_errors(kafka)
    topic = copy.deepcopy(render("minikube").of_kind("KafkaTopic")[0])
    topic["spec"]["partitions"] = "three"
    assert validation_errors(topic)


def test_validation_fails_on_kinds_no_schema_covers() -> None:
    kafka = copy.deepcopy(render("minikube").of_kind("Kafka")[0])
    kafka["apiVersion"] = "kafka.strimzi.io/v1beta2"  # removed in Strimzi 1.0
    with pytest.raises(NoSchemaError):
        validation_errors(kafka)
    with pytest.raises(NoSchemaError):
        validation_errors({"apiVersion": "example.com/v1", "kind": "Widget", "metadata": {"name": "w"}})
