{{/* Names. Cluster-scoped objects carry the release name, so two releases never collide. */}}
{{- define "sluice.fullname" -}}
{{- if contains .Chart.Name .Release.Name -}}
{{- .Release.Name | trunc 50 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name .Chart.Name | trunc 50 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}

{{- define "sluice.labels" -}}
app.kubernetes.io/name: {{ .Chart.Name }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" }}
{{- end -}}

{{- define "sluice.selectorLabels" -}}
app.kubernetes.io/name: {{ .Chart.Name }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/component: operator
{{- end -}}

{{- define "sluice.serviceAccountName" -}}
{{- default (include "sluice.fullname" .) .Values.serviceAccount.name -}}
{{- end -}}

{{- define "sluice.webhookServiceName" -}}
{{- printf "%s-webhook" (include "sluice.fullname" .) -}}
{{- end -}}

{{- define "sluice.discoveryServiceName" -}}
{{- printf "%s-discovery" (include "sluice.fullname" .) -}}
{{- end -}}

{{- define "sluice.certSecretName" -}}
{{- default (printf "%s-webhook-tls" (include "sluice.fullname" .)) .Values.webhook.certificate.secretName -}}
{{- end -}}

{{- define "sluice.webhookConfigName" -}}
{{- printf "%s-sidecar-injector" (include "sluice.fullname" .) -}}
{{- end -}}

{{- define "sluice.leaseName" -}}
{{- printf "%s-operator" (include "sluice.fullname" .) -}}
{{- end -}}

{{- define "sluice.operatorImage" -}}
{{- printf "%s:%s" .Values.operator.image.repository (default .Chart.AppVersion .Values.operator.image.tag) -}}
{{- end -}}

{{- define "sluice.sidecarImage" -}}
{{- printf "%s:%s" .Values.sidecar.image.repository (default .Chart.AppVersion .Values.sidecar.image.tag) -}}
{{- end -}}

{{/* Namespaces the webhook never sees: the control plane's and Sluice's own (no injecting the injector). */}}
{{- define "sluice.excludedNamespaces" -}}
{{- $ns := list "kube-system" "kube-public" "kube-node-lease" .Release.Namespace -}}
{{- toJson (uniq (concat $ns .Values.webhook.excludeNamespaces)) -}}
{{- end -}}

{{/* The injection config the operator reads (operator/src/injection/injection-config.ts). */}}
{{- define "sluice.injectionConfig" -}}
{{- $cfg := dict
  "image" (include "sluice.sidecarImage" .)
  "imagePullPolicy" .Values.sidecar.image.pullPolicy
  "operatorAddress" (printf "%s.%s.svc:%v" (include "sluice.discoveryServiceName" .) .Release.Namespace .Values.operator.ports.discovery)
  "resources" .Values.sidecar.resources
  "cpuLimitWhenRequired" (toString (.Values.sidecar.cpuLimitWhenRequired | default ""))
  "lockNodes" .Values.lockNodes
  "tokenAudience" .Values.sidecar.token.audience
  "tokenExpirationSeconds" .Values.sidecar.token.expirationSeconds
  "logLevel" .Values.sidecar.logLevel
-}}
{{- if .Values.lockNodesSecret.name -}}
{{- $_ := set $cfg "lockNodesSecret" (dict "name" .Values.lockNodesSecret.name "key" .Values.lockNodesSecret.key) -}}
{{- end -}}
{{- if .Values.redis.url -}}
{{- $_ := set $cfg "redis" (dict "url" .Values.redis.url) -}}
{{- else if .Values.redis.urlSecret.name -}}
{{- $_ := set $cfg "redis" (dict "urlSecret" (dict "name" .Values.redis.urlSecret.name "key" .Values.redis.urlSecret.key)) -}}
{{- end -}}
{{- if and .Values.redis.sentinelPasswordSecret .Values.redis.sentinelPasswordSecret.name (hasKey $cfg "redis") -}}
{{- $_ := set (get $cfg "redis") "sentinelPasswordSecret" (dict "name" .Values.redis.sentinelPasswordSecret.name "key" .Values.redis.sentinelPasswordSecret.key) -}}
{{- end -}}
{{- toPrettyJson $cfg -}}
{{- end -}}
