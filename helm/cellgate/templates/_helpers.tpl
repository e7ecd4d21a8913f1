{{/* The chart name, at most 63 characters (Kubernetes names). */}}
{{- define "cellgate.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{/* The release's full name: <release>-<chart> unless the release name already holds the chart name. */}}
{{- define "cellgate.fullname" -}}
{{- if .Values.fullnameOverride -}}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- $name := default .Chart.Name .Values.nameOverride -}}
{{- if contains $name .Release.Name -}}
{{- .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name $name | trunc 63 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}
{{- end -}}

{{- define "cellgate.selectorLabels" -}}
app.kubernetes.io/name: {{ include "cellgate.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}

{{- define "cellgate.labels" -}}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{ include "cellgate.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- end -}}

{{- define "cellgate.serviceAccountName" -}}
{{- if .Values.serviceAccount.create -}}
{{- default (include "cellgate.fullname" .) .Values.serviceAccount.name -}}
{{- else -}}
{{- default "default" .Values.serviceAccount.name -}}
{{- end -}}
{{- end -}}

{{/* The device file's source must be exactly one of existingSecret, existingConfigMap or list. */}}
{{- define "cellgate.checkDevices" -}}
{{- if and .Values.devices.existingSecret .Values.devices.existingConfigMap -}}
{{- fail "devices: set existingSecret or existingConfigMap, not both" -}}
{{- end -}}
{{- if and (or .Values.devices.existingSecret .Values.devices.existingConfigMap) .Values.devices.list -}}
{{- fail "devices: list cannot be combined with existingSecret or existingConfigMap" -}}
{{- end -}}
{{- end -}}

{{/* The gateway configuration: config from values, with the settings the chart owns laid over it. */}}
{{- define "cellgate.config" -}}
{{- $owned := dict "coap" (dict "bind" "0.0.0.0" "port" 5683 "dtlsPort" 5684) "http" (dict "bind" "0.0.0.0" "port" 8080) "devices" (dict "file" "/etc/cellgate/devices/devices.yaml") -}}
{{- if .Values.adminSecret.name -}}
{{- $_ := set $owned "admin" (dict "tokenFile" "/etc/cellgate/admin/token") -}}
{{- end -}}
{{- toYaml (mustMergeOverwrite (deepCopy .Values.config) $owned) -}}
{{- end -}}

{{/* Whether the gateway serves NoSec CoAP and CoAP over DTLS (config coap.nosec, dtls.enabled; both on by default). */}}
{{- define "cellgate.nosec" -}}
{{- if dig "coap" "nosec" true .Values.config -}}true{{- end -}}
{{- end -}}
{{- define "cellgate.dtls" -}}
{{- if dig "dtls" "enabled" true .Values.config -}}true{{- end -}}
{{- end -}}
