#!/usr/bin/env bash
# From an empty Minikube to a running Todo Chatbot: the steps of docs/deploy.md in one go.
# Needs minikube, kubectl, helm and the dapr CLI on PATH. Safe to rerun (each step skips what exists).
#   deploy/minikube.sh                     # then open http://127.0.0.1:8080/
# Environment: NAMESPACE (todo), RELEASE (todo), DAPR_VERSION (1.18.3), STRIMZI_VERSION (1.2.0),
#              OPENAI_API_KEY (optional; without it the agent uses its offline model),
#              DAPR_SCHEDULER_IN_MEMORY=1 (one Scheduler replica, no PVC; reminders lost on its restart).
set -euo pipefail
cd "$(dirname "$0")/.."

NAMESPACE=${NAMESPACE:-todo}
RELEASE=${RELEASE:-todo}
DAPR_VERSION=${DAPR_VERSION:-1.18.3}
STRIMZI_VERSION=${STRIMZI_VERSION:-1.2.0}
APP_VERSION=$(sed -n 's/^appVersion: *"\{0,1\}\([^"]*\)"\{0,1\}$/\1/p' chart/Chart.yaml)
FULLNAME="$RELEASE-todo-chatbot"
[[ $RELEASE == *todo-chatbot* ]] && FULLNAME=$RELEASE

step() { printf '\n==> %s\n' "$*"; }

step "Minikube"
minikube status >/dev/null 2>&1 || minikube start --cpus 4 --memory 8g
minikube addons enable ingress >/dev/null

step "Dapr $DAPR_VERSION control plane"
if ! kubectl get namespace dapr-system >/dev/null 2>&1; then
    extra=()
    if [[ ${DAPR_SCHEDULER_IN_MEMORY:-0} == 1 ]]; then
        extra=(--set dapr_scheduler.cluster.inMemoryStorage=true --set dapr_scheduler.replicaCount=1)
    fi
    dapr init -k --runtime-version "$DAPR_VERSION" --wait "${extra[@]}"
fi
dapr status -k

step "Strimzi $STRIMZI_VERSION watching namespace $NAMESPACE"
kubectl create namespace "$NAMESPACE" --dry-run=client -o yaml | kubectl apply -f -
helm upgrade --install strimzi oci://quay.io/strimzi-helm/strimzi-kafka-operator --version "$STRIMZI_VERSION" \
    --namespace kafka --create-namespace --set "watchNamespaces={$NAMESPACE}" --wait

step "Image todo-chatbot:$APP_VERSION inside Minikube"
minikube image build -t "todo-chatbot:$APP_VERSION" .

step "Release $RELEASE"
helm upgrade --install "$RELEASE" ./chart --namespace "$NAMESPACE" -f chart/values-minikube.yaml \
    --set secrets.openaiApiKey="${OPENAI_API_KEY:-}" --timeout 10m

step "Waiting for Kafka and the services"
kubectl -n "$NAMESPACE" wait "kafka/$FULLNAME-kafka" --for=condition=Ready --timeout=10m
kubectl -n "$NAMESPACE" wait deployment -l "app.kubernetes.io/instance=$RELEASE" --for=condition=Available --timeout=10m
kubectl -n "$NAMESPACE" get pods

step "Web UI at http://127.0.0.1:8080/ (Ctrl-C stops the port-forward)"
kubectl -n "$NAMESPACE" port-forward "svc/$FULLNAME-agent" 8080:8000
