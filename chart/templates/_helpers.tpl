{{/* Chart name, truncated to a DNS label. */}}
{{- define "todo-chatbot.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* `<release>-<chart>` (or the release name alone when it already contains the chart name). */}}
{{- define "todo-chatbot.fullname" -}}
{{- if .Values.fullnameOverride }}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- $name := default .Chart.Name .Values.nameOverride }}
{{- if contains $name .Release.Name }}
{{- .Release.Name | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- printf "%s-%s" .Release.Name $name | trunc 63 | trimSuffix "-" }}
{{- end }}
{{- end }}
{{- end }}

{{/* `<chart>-<version>` for the helm.sh/chart label. */}}
{{- define "todo-chatbot.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* Labels on every object. */}}
{{- define "todo-chatbot.labels" -}}
helm.sh/chart: {{ include "todo-chatbot.chart" . }}
{{ include "todo-chatbot.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: todo-chatbot
{{- end }}

{{/* Labels that select the release's pods. */}}
{{- define "todo-chatbot.selectorLabels" -}}
app.kubernetes.io/name: {{ include "todo-chatbot.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{/* Labels of one component; call with (dict "root" $ "name" "agent"). */}}
{{- define "todo-chatbot.componentLabels" -}}
{{ include "todo-chatbot.labels" .root }}
app.kubernetes.io/component: {{ .name }}
{{- end }}

{{/* Selector labels of one component; call with (dict "root" $ "name" "agent"). */}}
{{- define "todo-chatbot.componentSelectorLabels" -}}
{{ include "todo-chatbot.selectorLabels" .root }}
app.kubernetes.io/component: {{ .name }}
{{- end }}

{{/* `<fullname>-<component>`: Deployment, Service, HPA and PDB names; call with (dict "root" $ "name" "agent"). */}}
{{- define "todo-chatbot.componentName" -}}
{{- printf "%s-%s" (include "todo-chatbot.fullname" .root) .name | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* Dapr app id of a service; call with (dict "root" $ "name" "agent"). */}}
{{- define "todo-chatbot.appId" -}}
{{- printf "%s%s" .root.Values.dapr.appIdPrefix .name }}
{{- end }}

{{/* The ServiceAccount application pods use. */}}
{{- define "todo-chatbot.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "todo-chatbot.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- default "default" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{/* The application image reference. */}}
{{- define "todo-chatbot.image" -}}
{{- printf "%s:%s" .Values.image.repository (default .Chart.AppVersion .Values.image.tag) }}
{{- end }}

{{/* The Secret holding DATABASE_URL, AUTH_SECRET, OPENAI_API_KEY (and POSTGRES_PASSWORD). */}}
{{- define "todo-chatbot.secretName" -}}
{{- default (include "todo-chatbot.fullname" .) .Values.secrets.existingSecret }}
{{- end }}

{{/* The Secret (key `token`) with the app -> sidecar token (dapr.io/api-token-secret, DAPR_API_TOKEN). */}}
{{- define "todo-chatbot.apiTokenSecretName" -}}
{{- default (printf "%s-dapr-api-token" (include "todo-chatbot.fullname" .)) .Values.dapr.apiToken.existingSecret }}
{{- end }}

{{/* The Secret (key `token`) with the sidecar -> app token (dapr.io/app-token-secret, APP_API_TOKEN). */}}
{{- define "todo-chatbot.appTokenSecretName" -}}
{{- default (printf "%s-dapr-app-token" (include "todo-chatbot.fullname" .)) .Values.dapr.appToken.existingSecret }}
{{- end }}

{{/* ConfigMap with the non-secret environment. */}}
{{- define "todo-chatbot.envConfigMapName" -}}
{{- printf "%s-env" (include "todo-chatbot.fullname" .) }}
{{- end }}

{{/* Dapr Configuration every sidecar uses (dapr.io/config). */}}
{{- define "todo-chatbot.daprConfigName" -}}
{{- printf "%s-dapr" (include "todo-chatbot.fullname" .) }}
{{- end }}

{{/* Name of the push service's broadcast pub/sub component (`pubsub_for()` in event_handlers.subscriptions). */}}
{{- define "todo-chatbot.broadcastPubsubName" -}}
{{- printf "%s-broadcast" .Values.dapr.pubsub.name }}
{{- end }}

{{/* Strimzi Kafka cluster name. */}}
{{- define "todo-chatbot.kafkaClusterName" -}}
{{- default (printf "%s-kafka" (include "todo-chatbot.fullname" .)) .Values.kafka.clusterName | trunc 40 | trimSuffix "-" }}
{{- end }}

{{/* Kafka bootstrap servers: the in-chart Strimzi cluster, or dapr.pubsub.brokers. */}}
{{- define "todo-chatbot.kafkaBrokers" -}}
{{- if .Values.kafka.enabled }}
{{- printf "%s-kafka-bootstrap.%s.svc:9092" (include "todo-chatbot.kafkaClusterName" .) .Release.Namespace }}
{{- else }}
{{- required "dapr.pubsub.brokers is required when kafka.enabled is false" .Values.dapr.pubsub.brokers }}
{{- end }}
{{- end }}

{{/* In-chart PostgreSQL: name of its StatefulSet and Service. */}}
{{- define "todo-chatbot.postgresqlName" -}}
{{- printf "%s-postgresql" (include "todo-chatbot.fullname" .) }}
{{- end }}

{{/*
A secret value: the given one, else the value already stored in the cluster (so upgrades keep it),
else a new random one. Call with (dict "root" $ "secret" <Secret name> "key" <key> "value" <given> "length" <n>).
Offline renders (helm template, tests) have no cluster to look in, so they generate.
*/}}
{{- define "todo-chatbot.secretValue" -}}
{{- if .value }}
{{- .value }}
{{- else }}
{{- $existing := lookup "v1" "Secret" .root.Release.Namespace .secret }}
{{- $data := (get $existing "data") | default dict }}
{{- if hasKey $data .key }}
{{- index $data .key | b64dec }}
{{- else }}
{{- randAlphaNum (int .length) }}
{{- end }}
{{- end }}
{{- end }}

{{/*
Who subscribes to what: the declarative twin of event_handlers/subscriptions.py (`SUBSCRIPTIONS`).
match / path / default must stay byte-for-byte equal to `Subscription.match`, `.path` and
`.default_path` there (tests/chart compares them). `broadcast` handlers read through
`<pubsub>-broadcast` (every replica gets every event).
*/}}
{{- define "todo-chatbot.subscriptionTable" -}}
audit:
  match: 'event.type in ["task.created", "task.updated", "task.completed", "task.reopened", "task.deleted", "reminder.due"]'
  path: /events/audit
  default: /events/audit/other
  broadcast: false
reminders:
  match: 'event.type in ["task.created", "task.updated", "task.completed", "task.reopened", "task.deleted"]'
  path: /events/reminders
  default: /events/reminders/other
  broadcast: false
recurring:
  match: 'event.type in ["task.completed", "task.reopened"]'
  path: /events/recurring
  default: /events/recurring/other
  broadcast: false
push:
  match: 'event.type in ["task.created", "task.updated", "task.completed", "task.reopened", "task.deleted", "reminder.due"]'
  path: /events/push
  default: /events/push/other
  broadcast: true
{{- end }}

{{/* The publisher of task events (its outbox relay publishes through the shared component). */}}
{{- define "todo-chatbot.publishers" -}}
- mcp-server
{{- end }}

{{/* App ids scoped to the shared pub/sub component: enabled publishers and non-broadcast handlers, as a YAML list. */}}
{{- define "todo-chatbot.sharedPubsubApps" -}}
{{- $root := . }}
{{- $apps := list }}
{{- range (include "todo-chatbot.publishers" . | fromYamlArray) }}
{{- if (get $root.Values.services .).enabled }}
{{- $apps = append $apps (include "todo-chatbot.appId" (dict "root" $root "name" .)) }}
{{- end }}
{{- end }}
{{- range $handler, $sub := (include "todo-chatbot.subscriptionTable" . | fromYaml) }}
{{- if and (not $sub.broadcast) (get $root.Values.services $handler).enabled }}
{{- $apps = append $apps (include "todo-chatbot.appId" (dict "root" $root "name" $handler)) }}
{{- end }}
{{- end }}
{{- toYaml $apps }}
{{- end }}

{{/* App ids scoped to the broadcast component: enabled broadcast handlers, as a YAML list. */}}
{{- define "todo-chatbot.broadcastPubsubApps" -}}
{{- $root := . }}
{{- $apps := list }}
{{- range $handler, $sub := (include "todo-chatbot.subscriptionTable" . | fromYaml) }}
{{- if and $sub.broadcast (get $root.Values.services $handler).enabled }}
{{- $apps = append $apps (include "todo-chatbot.appId" (dict "root" $root "name" $handler)) }}
{{- end }}
{{- end }}
{{- toYaml $apps }}
{{- end }}

{{/* Pod-level security context of the application pods (image user 10001). */}}
{{- define "todo-chatbot.podSecurityContext" -}}
runAsNonRoot: true
runAsUser: 10001
runAsGroup: 10001
fsGroup: 10001
seccompProfile:
  type: RuntimeDefault
{{- end }}

{{/* Container security context of the application containers. */}}
{{- define "todo-chatbot.containerSecurityContext" -}}
runAsNonRoot: true
runAsUser: 10001
runAsGroup: 10001
readOnlyRootFilesystem: true
allowPrivilegeEscalation: false
capabilities:
  drop: ["ALL"]
seccompProfile:
  type: RuntimeDefault
{{- end }}

{{/* nodeSelector and tolerations shared by every pod. */}}
{{- define "todo-chatbot.scheduling" -}}
{{- with .Values.nodeSelector }}
nodeSelector:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- with .Values.tolerations }}
tolerations:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- end }}

{{/* Connection metadata shared by both pubsub.kafka components. */}}
{{- define "todo-chatbot.kafkaConnection" -}}
- name: brokers
  value: {{ include "todo-chatbot.kafkaBrokers" . | quote }}
- name: authType
  value: {{ .Values.dapr.pubsub.authType | quote }}
- name: version
  value: {{ .Values.dapr.pubsub.version | quote }}
- name: disableTls
  value: {{ .Values.dapr.pubsub.disableTls | quote }}
{{- if eq .Values.dapr.pubsub.authType "password" }}
- name: saslMechanism
  value: {{ .Values.dapr.pubsub.saslMechanism | quote }}
- name: saslUsername
  value: {{ required "dapr.pubsub.saslUsername is required with authType password" .Values.dapr.pubsub.saslUsername | quote }}
- name: saslPassword
  secretKeyRef:
    name: {{ required "dapr.pubsub.saslPasswordSecret.name is required with authType password" .Values.dapr.pubsub.saslPasswordSecret.name | quote }}
    key: {{ .Values.dapr.pubsub.saslPasswordSecret.key | quote }}
{{- end }}
{{- end }}
