{{/* Names, labels and shared fragments. Selectors use name + instance + component only (never the version). */}}

{{- define "tipsv2.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{- define "tipsv2.fullname" -}}
{{- if .Values.fullnameOverride -}}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" -}}
{{- else if contains (include "tipsv2.name" .) .Release.Name -}}
{{- .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name (include "tipsv2.name" .) | trunc 63 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}

{{/* A component's resource name: <fullname>-<component>, kept within 63 characters. */}}
{{- define "tipsv2.componentName" -}}
{{- printf "%s-%s" (include "tipsv2.fullname" .root) .component | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{- define "tipsv2.labels" -}}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" }}
{{ include "tipsv2.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: tipsv2
{{- with .Values.commonLabels }}
{{ toYaml . }}
{{- end }}
{{- end -}}

{{- define "tipsv2.selectorLabels" -}}
app.kubernetes.io/name: {{ include "tipsv2.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}

{{/* Labels and selector labels of one component: (dict "root" $ "component" "gateway"). */}}
{{- define "tipsv2.componentLabels" -}}
{{ include "tipsv2.labels" .root }}
app.kubernetes.io/component: {{ .component }}
{{- end -}}

{{- define "tipsv2.componentSelectorLabels" -}}
{{ include "tipsv2.selectorLabels" .root }}
app.kubernetes.io/component: {{ .component }}
{{- end -}}

{{/* image reference: (dict "image" .Values.gateway.image "root" $) — an empty tag means the appVersion. */}}
{{- define "tipsv2.image" -}}
{{- printf "%s:%s" .image.repository (default .root.Chart.AppVersion .image.tag) -}}
{{- end -}}

{{- define "tipsv2.imagePullSecrets" -}}
{{- with .Values.imagePullSecrets -}}
imagePullSecrets:
  {{- toYaml . | nindent 2 }}
{{- end -}}
{{- end -}}

{{- define "tipsv2.apiKeysSecret" -}}
{{- default (include "tipsv2.componentName" (dict "root" . "component" "api-keys")) .Values.gateway.apiKeys.existingSecret -}}
{{- end -}}

{{- define "tipsv2.modelStoreClaim" -}}
{{- default (include "tipsv2.componentName" (dict "root" . "component" "models")) .Values.modelStore.pvc.existingClaim -}}
{{- end -}}

{{- define "tipsv2.adapterStoreClaim" -}}
{{- default (include "tipsv2.componentName" (dict "root" . "component" "adapters")) .Values.adapterStore.pvc.existingClaim -}}
{{- end -}}

{{- define "tipsv2.redisUrl" -}}
{{- if .Values.redis.enabled -}}
{{- printf "redis://%s:6379/0" (include "tipsv2.componentName" (dict "root" . "component" "redis")) -}}
{{- else -}}
{{- .Values.redis.externalUrl -}}
{{- end -}}
{{- end -}}

{{- define "tipsv2.gatewayUrl" -}}
{{- printf "http://%s:%v" (include "tipsv2.componentName" (dict "root" . "component" "gateway")) .Values.gateway.service.port -}}
{{- end -}}

{{/* GPU Jobs and the engine build run where Triton runs unless told otherwise (engines are per GPU model). */}}
{{- define "tipsv2.gpuNodeSelector" -}}
{{- toYaml (default .Values.triton.nodeSelector .Values.jobs.gpuNodeSelector) -}}
{{- end -}}

{{- define "tipsv2.gpuTolerations" -}}
{{- toYaml (default .Values.triton.tolerations .Values.jobs.gpuTolerations) -}}
{{- end -}}

{{/*
The engine build's identity: a digest of everything that changes the engines. Its Job name carries it (Jobs are
immutable, so a changed build is a new Job) and so does the marker file Triton waits for.
*/}}
{{- define "tipsv2.engineBuildId" -}}
{{- $inputs := dict "image" (include "tipsv2.image" (dict "image" .Values.engineBuild.image "root" .)) "precision" .Values.engineBuild.precision "args" .Values.engineBuild.extraArgs "repository" .Values.modelStore.repositoryPath -}}
{{- toJson $inputs | sha256sum | trunc 10 -}}
{{- end -}}

{{- define "tipsv2.engineMarker" -}}
{{- printf "/models/%s/.tipsv2-engines-%s" .Values.modelStore.repositoryPath (include "tipsv2.engineBuildId" .) -}}
{{- end -}}

{{/* Restricted pod-security defaults for our own images. */}}
{{- define "tipsv2.restrictedContainerSecurityContext" -}}
allowPrivilegeEscalation: false
readOnlyRootFilesystem: true
capabilities:
  drop: ["ALL"]
{{- end -}}

{{/* One place for cross-field rules the schema cannot express; fails the render with every problem listed. */}}
{{- define "tipsv2.validateValues" -}}
{{- $errors := list -}}
{{- if and (eq .Values.modelStore.source "objectStorage") (not .Values.modelStore.objectStorage.uri) -}}
{{- $errors = append $errors "modelStore.objectStorage.uri is required when modelStore.source is objectStorage" -}}
{{- end -}}
{{- if and .Values.engineBuild.enabled (ne .Values.modelStore.source "pvc") -}}
{{- $errors = append $errors "engineBuild.enabled needs modelStore.source: pvc (the Job writes engines into the store)" -}}
{{- end -}}
{{- if and .Values.engineBuild.enabled (eq (int .Values.triton.gpus) 0) -}}
{{- $errors = append $errors "engineBuild.enabled builds TensorRT engines for GPUs; triton.gpus is 0" -}}
{{- end -}}
{{- if and (not .Values.redis.enabled) (not .Values.redis.externalUrl) -}}
{{- $errors = append $errors "redis.externalUrl is required when redis.enabled is false" -}}
{{- end -}}
{{- if and (eq .Values.gateway.environment "production") (not .Values.gateway.apiKeys.existingSecret) (not .Values.gateway.apiKeys.hashes) -}}
{{- $errors = append $errors "production needs API keys: set gateway.apiKeys.existingSecret or gateway.apiKeys.hashes (tipsv2 keys new --tenant T)" -}}
{{- end -}}
{{- if and .Values.gateway.autoscaling.enabled (gt (int .Values.gateway.autoscaling.minReplicas) (int .Values.gateway.autoscaling.maxReplicas)) -}}
{{- $errors = append $errors "gateway.autoscaling.minReplicas is above maxReplicas" -}}
{{- end -}}
{{- if and .Values.triton.autoscaling.enabled (gt (int .Values.triton.autoscaling.minReplicas) (int .Values.triton.autoscaling.maxReplicas)) -}}
{{- $errors = append $errors "triton.autoscaling.minReplicas is above maxReplicas" -}}
{{- end -}}
{{- if $errors -}}
{{- fail (printf "\n\nvalues are inconsistent:\n  - %s\n" (join "\n  - " $errors)) -}}
{{- end -}}
{{- end -}}
