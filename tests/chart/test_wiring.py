"""Cross-checks between rendered objects: the misconfigurations that validate fine but break at runtime
(a sidecar calling the wrong port, a handler subscribed to a route it does not serve, a component its
app may not use, a secret leaked into a ConfigMap)."""

from __future__ import annotations

import base64
import json
import uuid
from pathlib import Path
from typing import Any

import pytest

from event_handlers.subscriptions import SUBSCRIPTIONS, pubsub_for
from tests.chart.rendering import NAMESPACE, SCENARIOS, SECRETS, Rendered, render

SERVICES = ("agent", "mcp-server", "audit", "reminders", "recurring", "push")
PUBLISHER = "mcp-server"
SECRET_ENV = (
    "DATABASE_URL",
    "AUTH_SECRET",
    "OPENAI_API_KEY",
    "DAPR_API_TOKEN",
    "APP_API_TOKEN",
    "POSTGRES_PASSWORD",
)


def pod_spec(workload: dict[str, Any]) -> dict[str, Any]:
    spec: dict[str, Any] = workload["spec"]["template"]["spec"]
    return spec


def annotations(workload: dict[str, Any]) -> dict[str, str]:
    found: dict[str, str] = workload["spec"]["template"]["metadata"].get("annotations", {})
    return found


def component_of(obj: dict[str, Any]) -> str:
    return str(obj["metadata"]["labels"]["app.kubernetes.io/component"])


def dapr_deployments(rendered: Rendered) -> dict[str, dict[str, Any]]:
    """app id -> Deployment, for every Deployment with a Dapr sidecar."""
    return {
        annotations(d)["dapr.io/app-id"]: d
        for d in rendered.of_kind("Deployment")
        if annotations(d).get("dapr.io/enabled") == "true"
    }


def app_id_of(rendered: Rendered, service: str) -> str:
    [app_id] = [app_id for app_id, d in dapr_deployments(rendered).items() if component_of(d) == service]
    return app_id


def env_map(container: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {item["name"]: item for item in container.get("env", [])}


def config_env(rendered: Rendered) -> dict[str, str]:
    [config_map] = rendered.of_kind("ConfigMap")
    data: dict[str, str] = config_map["data"]
    return data


def resolve_port(container: dict[str, Any], port: int | str) -> int:
    if isinstance(port, int):
        return port
    [number] = [p["containerPort"] for p in container["ports"] if p.get("name") == port]
    return int(number)


def probes(container: dict[str, Any]) -> list[dict[str, Any]]:
    return [
        container[kind] for kind in ("startupProbe", "livenessProbe", "readinessProbe") if kind in container
    ]


# --- Dapr sidecars and the app containers -------------------------------------------------------


@pytest.mark.parametrize("scenario", SCENARIOS)
def test_every_service_has_a_dapr_sidecar_whose_app_port_is_the_container_and_probe_port(
    scenario: str,
) -> None:
    rendered = render(scenario)
    deployments = dapr_deployments(rendered)
    assert sorted(component_of(d) for d in deployments.values()) == sorted(SERVICES)
    for app_id, deployment in deployments.items():
        app_port = int(annotations(deployment)["dapr.io/app-port"])
        [container] = pod_spec(deployment)["containers"]
        assert [p["containerPort"] for p in container["ports"]] == [app_port], app_id
        assert len(probes(container)) == 3, app_id
        for probe in probes(container):
            assert resolve_port(container, probe["httpGet"]["port"]) == app_port, app_id
        args = container["args"]
        assert args[args.index("--port") + 1] == str(app_port), app_id
        assert args[args.index("--host") + 1] == "0.0.0.0", app_id
        paths = {kind: container[kind]["httpGet"]["path"] for kind in ("livenessProbe", "readinessProbe")}
        assert paths == {"livenessProbe": "/healthz", "readinessProbe": "/readyz"}, app_id


@pytest.mark.parametrize("scenario", SCENARIOS)
def test_each_service_runs_its_own_command(scenario: str) -> None:
    expected = {name: [name] for name in ("agent", "mcp-server")} | {
        name: ["handler", name] for name in ("audit", "reminders", "recurring", "push")
    }
    for deployment in render(scenario).of_kind("Deployment"):
        [container] = pod_spec(deployment)["containers"]
        assert container["args"][: container["args"].index("--host")] == expected[component_of(deployment)]
        assert "command" not in container  # the image's ENTRYPOINT is `todo-chatbot`


@pytest.mark.parametrize("scenario", SCENARIOS)
def test_sidecar_and_app_read_the_same_token_secrets(scenario: str) -> None:
    rendered = render(scenario)
    chart_secrets = {s["metadata"]["name"]: s for s in rendered.of_kind("Secret")}
    values = rendered.values
    [configuration] = rendered.of_kind("Configuration")
    for app_id, deployment in dapr_deployments(rendered).items():
        notes = annotations(deployment)
        assert notes["dapr.io/config"] == configuration["metadata"]["name"], app_id
        env = env_map(pod_spec(deployment)["containers"][0])
        for annotation, variable, existing in (
            ("dapr.io/api-token-secret", "DAPR_API_TOKEN", values["dapr"]["apiToken"]["existingSecret"]),
            ("dapr.io/app-token-secret", "APP_API_TOKEN", values["dapr"]["appToken"]["existingSecret"]),
        ):
            secret_name = notes[annotation]
            # Dapr reads key `token` of the named Secret; the app container must read the very same.
            assert env[variable]["valueFrom"]["secretKeyRef"] == {"name": secret_name, "key": "token"}, app_id
            if existing:
                assert secret_name == existing and secret_name not in chart_secrets
            else:
                assert "token" in chart_secrets[secret_name]["data"], app_id


@pytest.mark.parametrize("scenario", SCENARIOS)
def test_secrets_reach_containers_only_through_secret_refs(scenario: str) -> None:
    rendered = render(scenario)
    for deployment in rendered.of_kind("Deployment"):
        [container] = pod_spec(deployment)["containers"]
        env = env_map(container)
        assert {"DATABASE_URL", "AUTH_SECRET", "DAPR_API_TOKEN", "APP_API_TOKEN"} <= env.keys()
        assert ("OPENAI_API_KEY" in env) == (component_of(deployment) == "agent")
        for name in SECRET_ENV:
            if name in env:
                assert "secretKeyRef" in env[name].get("valueFrom", {}), (
                    deployment["metadata"]["name"],
                    name,
                )
        for source in container.get("envFrom", []):
            assert "secretRef" not in source  # every secret variable is named explicitly
    assert not set(SECRET_ENV) & config_env(rendered).keys()


@pytest.mark.parametrize("scenario", SCENARIOS)
def test_app_environment_matches_the_dapr_resources(scenario: str) -> None:
    rendered = render(scenario)
    env = config_env(rendered)
    assert env["ENVIRONMENT"] == "production"
    assert env["SUBSCRIPTIONS"] == "declarative"
    assert env["LOG_FORMAT"] in ("json", "text")
    components = {c["metadata"]["name"] for c in rendered.of_kind("Component")}
    assert env["PUBSUB_NAME"] in components
    topics = {s["spec"]["topic"] for s in rendered.of_kind("Subscription")}
    dead_letters = {s["spec"]["deadLetterTopic"] for s in rendered.of_kind("Subscription")}
    assert topics == {env["TOPIC"]} and dead_letters == {env["DEAD_LETTER_TOPIC"]}
    # MCP_URL names the mcp-server's Service and port.
    [mcp_service] = [s for s in rendered.of_kind("Service") if component_of(s) == "mcp-server"]
    port = mcp_service["spec"]["ports"][0]["port"]
    assert env["MCP_URL"] == f"http://{mcp_service['metadata']['name']}:{port}/mcp"


@pytest.mark.parametrize("scenario", SCENARIOS)
def test_services_select_their_deployments_pods_on_the_http_port(scenario: str) -> None:
    rendered = render(scenario)
    deployments = {component_of(d): d for d in rendered.of_kind("Deployment")}
    for service in rendered.of_kind("Service"):
        component = component_of(service)
        if component not in deployments:
            continue
        labels = deployments[component]["spec"]["template"]["metadata"]["labels"]
        assert service["spec"]["selector"].items() <= labels.items()
        [container] = pod_spec(deployments[component])["containers"]
        [port] = service["spec"]["ports"]
        assert resolve_port(container, port["targetPort"]) == int(
            annotations(deployments[component])["dapr.io/app-port"]
        )


# --- Subscriptions, components, resiliency --------------------------------------------------------


@pytest.mark.parametrize("scenario", SCENARIOS)
def test_subscriptions_equal_event_handlers_subscriptions(scenario: str) -> None:
    rendered = render(scenario)
    env = config_env(rendered)
    by_scope = {tuple(s["scopes"]): s for s in rendered.of_kind("Subscription")}
    assert len(by_scope) == len(SUBSCRIPTIONS)
    for handler, subscription in SUBSCRIPTIONS.items():
        rendered_subscription = by_scope[(app_id_of(rendered, handler),)]
        assert rendered_subscription["apiVersion"] == "dapr.io/v2alpha1"
        assert rendered_subscription["spec"] == {
            "pubsubname": pubsub_for(subscription, env["PUBSUB_NAME"]),
            "topic": env["TOPIC"],
            "routes": {
                "rules": [{"match": subscription.match, "path": subscription.path}],
                "default": subscription.default_path,
            },
            "deadLetterTopic": env["DEAD_LETTER_TOPIC"],
        }


def test_subscription_routes_are_post_routes_of_the_handler_apps(tmp_path: Path) -> None:
    """Each rendered route (and the reminders' job trigger) is served by that handler's real app."""
    handler_app = pytest.importorskip("event_handlers.app", reason="event_handlers.app is not written yet")
    from starlette.routing import Match

    from todo_chatbot.settings import Settings

    rendered = render("default")
    settings = Settings(_env_file=None, database_url=f"sqlite:///{tmp_path}/handlers.db")
    for subscription in rendered.of_kind("Subscription"):
        [app_id] = subscription["scopes"]
        handler = component_of(dapr_deployments(rendered)[app_id])
        app = handler_app.create_handler_app(handler, settings)
        paths = [rule["path"] for rule in subscription["spec"]["routes"]["rules"]]
        paths.append(subscription["spec"]["routes"]["default"])
        if handler == "reminders":
            paths.append(f"/job/reminder-{uuid.uuid4()}")
        for path in paths:
            scope = {"type": "http", "method": "POST", "path": path, "root_path": "", "headers": []}
            matches = [route.matches(scope)[0] for route in app.router.routes]
            assert Match.FULL in matches, f"{handler} serves no POST {path}"


@pytest.mark.parametrize("scenario", SCENARIOS)
def test_only_push_reads_the_broadcast_component(scenario: str) -> None:
    rendered = render(scenario)
    env = config_env(rendered)
    components = {c["metadata"]["name"]: c for c in rendered.of_kind("Component")}
    broadcast = components[f"{env['PUBSUB_NAME']}-broadcast"]
    shared = components[env["PUBSUB_NAME"]]
    push = app_id_of(rendered, "push")
    assert broadcast["scopes"] == [push]
    assert push not in shared["scopes"]
    metadata = {item["name"]: item.get("value") for item in broadcast["spec"]["metadata"]}
    assert metadata["consumerID"] == "{podName}" and "consumerGroup" not in metadata
    broadcast_name = broadcast["metadata"]["name"]
    readers = {
        tuple(s["scopes"])
        for s in rendered.of_kind("Subscription")
        if s["spec"]["pubsubname"] == broadcast_name
    }
    assert readers == {(push,)}


@pytest.mark.parametrize("scenario", SCENARIOS)
def test_component_scopes_equal_the_app_ids_that_use_them(scenario: str) -> None:
    rendered = render(scenario)
    env = config_env(rendered)
    deployments = dapr_deployments(rendered)
    publisher = app_id_of(rendered, PUBLISHER)
    for component in rendered.of_kind("Component"):
        name = component["metadata"]["name"]
        users = {
            app_id
            for subscription in rendered.of_kind("Subscription")
            if subscription["spec"]["pubsubname"] == name
            for app_id in subscription["scopes"]
        }
        if name == env["PUBSUB_NAME"]:
            users.add(publisher)
        assert sorted(component["scopes"]) == sorted(users), name
        assert set(component["scopes"]) <= deployments.keys(), name


@pytest.mark.parametrize("scenario", SCENARIOS)
def test_kafka_components_carry_auth_type_version_and_consumer_groups(scenario: str) -> None:
    rendered = render(scenario)
    for component in rendered.of_kind("Component"):
        assert component["spec"]["type"] == "pubsub.kafka"
        metadata = {item["name"]: item for item in component["spec"]["metadata"]}
        assert metadata["authType"]["value"] in ("none", "password")
        assert "version" in metadata and metadata["brokers"]["value"]
        if metadata["authType"]["value"] == "password":
            assert "secretKeyRef" in metadata["saslPassword"] and "value" not in metadata["saslPassword"]
            assert component["auth"] == {"secretStore": "kubernetes"}
        if "consumerGroup" in metadata:
            # One group per app (the runtime fills in {appID}); a fixed name would make the handlers
            # share one group, and each event would reach only one of them.
            assert "{appID}" in metadata["consumerGroup"]["value"]


@pytest.mark.parametrize("scenario", SCENARIOS)
def test_dead_lettering_happens_only_after_inbound_retries(scenario: str) -> None:
    rendered = render(scenario)
    [resiliency] = rendered.of_kind("Resiliency")
    targets = resiliency["spec"]["targets"]["components"]
    retries = resiliency["spec"]["policies"]["retries"]
    for subscription in rendered.of_kind("Subscription"):
        pubsub = subscription["spec"]["pubsubname"]
        assert subscription["spec"]["deadLetterTopic"]
        policy = retries[targets[pubsub]["inbound"]["retry"]]
        assert policy["maxRetries"] != 0
    # The publisher's component retries publishing behind a circuit breaker.
    outbound = targets[config_env(rendered)["PUBSUB_NAME"]]["outbound"]
    assert outbound["retry"] in retries
    assert outbound["circuitBreaker"] in resiliency["spec"]["policies"]["circuitBreakers"]
    assert outbound["timeout"] in resiliency["spec"]["policies"]["timeouts"]
    scoped = set(resiliency["scopes"])
    assert {app for c in rendered.of_kind("Component") for app in c["scopes"]} == scoped


# --- Strimzi -------------------------------------------------------------------------------------


@pytest.mark.parametrize("scenario", ["default", "minikube", "aks"])
def test_strimzi_kraft_cluster_with_a_node_pool_and_the_topics(scenario: str) -> None:
    rendered = render(scenario)
    strimzi = [obj for obj in rendered.objects if obj["apiVersion"].startswith("kafka.strimzi.io/")]
    assert {obj["apiVersion"] for obj in strimzi} == {"kafka.strimzi.io/v1"}
    [kafka] = rendered.of_kind("Kafka")
    cluster = kafka["metadata"]["name"]
    assert "zookeeper" not in kafka["spec"]
    assert kafka["spec"]["kafka"]["version"] == "4.3.1"
    assert kafka["spec"]["kafka"]["metadataVersion"] == "4.3-IV0"
    assert "topicOperator" in kafka["spec"]["entityOperator"]
    pools = [
        p
        for p in rendered.of_kind("KafkaNodePool")
        if p["metadata"]["labels"]["strimzi.io/cluster"] == cluster
    ]
    assert pools, "a KRaft cluster needs a KafkaNodePool labelled with its name"
    assert {"controller", "broker"} <= {role for pool in pools for role in pool["spec"]["roles"]}
    brokers = sum(pool["spec"]["replicas"] for pool in pools if "broker" in pool["spec"]["roles"])
    for pool in pools:
        volumes = pool["spec"]["storage"]["volumes"]
        assert pool["spec"]["storage"]["type"] == "jbod"
        assert [v.get("kraftMetadata") for v in volumes].count("shared") == 1
    storage_type = {"aks": "persistent-claim"}.get(scenario, "ephemeral")
    assert {v["type"] for p in pools for v in p["spec"]["storage"]["volumes"]} == {storage_type}
    config = kafka["spec"]["kafka"]["config"]
    assert config["default.replication.factor"] <= brokers
    assert config["min.insync.replicas"] <= config["default.replication.factor"]
    topics = {t["spec"]["topicName"]: t for t in rendered.of_kind("KafkaTopic")}
    env = config_env(rendered)
    assert topics.keys() == {env["TOPIC"], env["DEAD_LETTER_TOPIC"]}
    events = topics[env["TOPIC"]]["spec"]
    assert events["partitions"] == 3 and events["config"]["retention.ms"] == 7 * 24 * 3600 * 1000
    for topic in topics.values():
        assert topic["metadata"]["labels"]["strimzi.io/cluster"] == cluster
        assert topic["spec"]["replicas"] <= brokers
    if scenario == "minikube":
        assert brokers == 1 and config["default.replication.factor"] == 1


@pytest.mark.parametrize("scenario", ["default", "minikube", "aks"])
def test_pubsub_components_reach_the_strimzi_bootstrap_listener(scenario: str) -> None:
    rendered = render(scenario)
    [kafka] = rendered.of_kind("Kafka")
    [listener] = [x for x in kafka["spec"]["kafka"]["listeners"] if x["port"] == 9092]
    assert listener["type"] == "internal" and listener["tls"] is False
    bootstrap = f"{kafka['metadata']['name']}-kafka-bootstrap.{NAMESPACE}.svc:9092"
    for component in rendered.of_kind("Component"):
        metadata = {item["name"]: item["value"] for item in component["spec"]["metadata"] if "value" in item}
        assert metadata["brokers"] == bootstrap
        assert metadata["disableTls"] == "true"
        # Kafka 4 brokers accept protocol versions from 2.1 on (KIP-896).
        assert tuple(int(part) for part in metadata["version"].split(".")[:2]) >= (2, 1)


# --- Ingress, autoscaling, disruption budgets ----------------------------------------------------


@pytest.mark.parametrize("scenario", ["minikube", "aks"])
def test_ingress_routes_each_path_to_its_service(scenario: str) -> None:
    rendered = render(scenario)
    [ingress] = rendered.of_kind("Ingress")
    services = {s["metadata"]["name"]: component_of(s) for s in rendered.of_kind("Service")}
    [rule] = ingress["spec"]["rules"]
    routes = {p["path"]: services[p["backend"]["service"]["name"]] for p in rule["http"]["paths"]}
    assert routes == {
        "/": "agent",
        "/api/chat": "agent",
        "/api/conversations": "agent",
        "/mcp": "mcp-server",
        "/api/tasks": "mcp-server",
        "/ws": "push",
    }
    assert ingress["spec"]["ingressClassName"] == rendered.values["ingress"]["className"]
    notes = ingress["metadata"]["annotations"]
    assert notes["nginx.ingress.kubernetes.io/proxy-read-timeout"] == "3600"
    assert notes["nginx.ingress.kubernetes.io/proxy-send-timeout"] == "3600"


def test_autoscalers_and_budgets_target_the_deployments() -> None:
    rendered = render("aks")
    deployments = {d["metadata"]["name"]: d for d in rendered.of_kind("Deployment")}
    for hpa in rendered.of_kind("HorizontalPodAutoscaler"):
        target = deployments[hpa["spec"]["scaleTargetRef"]["name"]]
        assert "replicas" not in target["spec"]  # the HPA owns the replica count
        assert 1 <= hpa["spec"]["minReplicas"] <= hpa["spec"]["maxReplicas"]
    for pdb in rendered.of_kind("PodDisruptionBudget"):
        wanted = pdb["spec"]["selector"]["matchLabels"].items()
        selected = [
            d for d in deployments.values() if wanted <= d["spec"]["template"]["metadata"]["labels"].items()
        ]
        assert len(selected) == 1
    assert {d["spec"].get("replicas") for d in render("minikube").of_kind("Deployment")} == {1}


# --- Pods: security, migration -------------------------------------------------------------------


def workloads(rendered: Rendered) -> list[dict[str, Any]]:
    return [obj for obj in rendered.objects if obj["kind"] in ("Deployment", "StatefulSet", "Job")]


@pytest.mark.parametrize("scenario", SCENARIOS)
def test_every_container_runs_locked_down(scenario: str) -> None:
    for workload in workloads(render(scenario)):
        spec = pod_spec(workload)
        name = workload["metadata"]["name"]
        assert spec["automountServiceAccountToken"] is False, name
        assert spec["securityContext"]["runAsNonRoot"] is True, name
        assert spec["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}, name
        for container in spec["containers"] + spec.get("initContainers", []):
            context = container["securityContext"]
            assert context["runAsNonRoot"] is True, name
            assert context["readOnlyRootFilesystem"] is True, name
            assert context["allowPrivilegeEscalation"] is False, name
            assert context["capabilities"] == {"drop": ["ALL"]}, name
            assert context["seccompProfile"] == {"type": "RuntimeDefault"}, name
            assert not container["image"].endswith(":latest") and ":" in container["image"], name
            assert "resources" in container, name
        if workload["kind"] != "StatefulSet":  # the application image
            assert spec["securityContext"]["runAsUser"] == 10001, name
            tmp = [m for c in spec["containers"] for m in c["volumeMounts"] if m["mountPath"] == "/tmp"]
            volumes = {v["name"]: v for v in spec["volumes"]}
            assert tmp and all("emptyDir" in volumes[m["name"]] for m in tmp), name


@pytest.mark.parametrize("scenario", SCENARIOS)
def test_migration_hook_runs_before_pods_need_the_schema(scenario: str) -> None:
    rendered = render(scenario)
    [job] = rendered.of_kind("Job")
    hooks = set(job["metadata"]["annotations"]["helm.sh/hook"].split(","))
    assert "pre-upgrade" in hooks
    assert "hook-succeeded" in job["metadata"]["annotations"]["helm.sh/hook-delete-policy"]
    spec = pod_spec(job)
    [container] = spec["containers"]
    assert container["args"] == ["migrate"]
    assert annotations(job).get("dapr.io/enabled") != "true"  # a sidecar would keep the Job from completing
    assert [c["name"] for c in spec["initContainers"]] == ["wait-for-database"]
    referenced = {
        item["valueFrom"]["secretKeyRef"]["name"]
        for c in spec["containers"] + spec["initContainers"]
        for item in c.get("env", [])
        if "secretKeyRef" in item.get("valueFrom", {})
    }
    chart_made = {s["metadata"]["name"] for s in rendered.of_kind("Secret")}
    if rendered.values["postgresql"]["enabled"] or referenced & chart_made:
        # The database (or the Secret) is created by the release itself: it exists only after install.
        assert hooks == {"post-install", "pre-upgrade"}
    else:
        assert hooks == {"pre-install", "pre-upgrade"}
        assert "serviceAccountName" not in spec  # the chart's ServiceAccount does not exist yet


# --- Secrets stay in Secrets ---------------------------------------------------------------------


def secret_strings(rendered: Rendered) -> set[str]:
    """Every secret value of a render: the distinctive test values plus whatever the Secrets hold."""
    found = set(SECRETS.values())
    for secret in rendered.of_kind("Secret"):
        for encoded in secret.get("data", {}).values():
            found.add(base64.b64decode(encoded).decode())
        found.update(secret.get("stringData", {}).values())
    return {value for value in found if len(value) >= 8}


@pytest.mark.parametrize("scenario", SCENARIOS)
def test_no_secret_value_appears_outside_secrets(scenario: str) -> None:
    rendered = render(scenario)
    secrets = secret_strings(rendered)
    forms = secrets | {base64.b64encode(value.encode()).decode() for value in secrets}
    outside = [json.dumps(obj) for obj in rendered.objects if obj["kind"] != "Secret"] + [rendered.notes]
    leaks = sorted({form[:12] + "..." for form in forms for text in outside if form in text})
    assert leaks == []


@pytest.mark.parametrize("scenario", ["minikube", "external"])
def test_given_secret_values_land_in_the_secrets(scenario: str) -> None:
    rendered = render(scenario)
    decoded = {
        (s["metadata"]["name"], key): base64.b64decode(value).decode()
        for s in rendered.of_kind("Secret")
        for key, value in s["data"].items()
    }
    values = set(decoded.values())
    assert {SECRETS["auth"], SECRETS["openai"]} <= values
    if scenario == "minikube":
        assert {SECRETS["api_token"], SECRETS["app_token"], SECRETS["pg_password"]} <= values
        [url] = [v for (_, key), v in decoded.items() if key == "DATABASE_URL"]
        assert SECRETS["pg_password"] in url and url.startswith("postgresql://")
    else:
        assert SECRETS["database_url"] in values


def test_generated_secrets_are_long_and_distinct() -> None:
    rendered = render("default")
    generated = [
        base64.b64decode(value).decode()
        for s in rendered.of_kind("Secret")
        for key, value in s["data"].items()
        if key in ("token", "AUTH_SECRET", "POSTGRES_PASSWORD")
    ]
    assert len(generated) == 4
    assert len(set(generated)) == 4 and min(map(len, generated)) >= 32


# --- The application accepts what the chart hands it ---------------------------------------------


@pytest.mark.parametrize("service", SERVICES)
def test_the_cli_accepts_each_deployments_arguments(service: str) -> None:
    from todo_chatbot.cli import build_parser

    parser = build_parser()
    [deployment] = [d for d in render("default").of_kind("Deployment") if component_of(d) == service]
    [container] = pod_spec(deployment)["containers"]
    subcommands = next(a for a in parser._actions if a.dest == "command").choices
    if container["args"][0] not in subcommands:
        pytest.skip(f"`todo-chatbot {container['args'][0]}` is not in the CLI yet")
    parsed = parser.parse_args(container["args"])
    assert (parsed.host, parsed.port) == ("0.0.0.0", int(annotations(deployment)["dapr.io/app-port"]))
    [job] = render("default").of_kind("Job")
    assert parser.parse_args(pod_spec(job)["containers"][0]["args"]).command == "migrate"


@pytest.mark.parametrize("scenario", SCENARIOS)
def test_settings_accept_the_configmap(scenario: str) -> None:
    from todo_chatbot.settings import Settings

    env = config_env(render(scenario))
    fields = {name.upper() for name in Settings.model_fields}
    assert set(env) <= fields, "a ConfigMap key no setting reads (typo?)"
    settings = Settings(_env_file=None, **{key.lower(): value for key, value in env.items()})
    assert settings.environment == "production"
    assert settings.subscriptions == "declarative"
    assert settings.chat_history_items == 40
