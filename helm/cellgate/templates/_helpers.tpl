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
{{- /* config.state from the chart's state values; their Secrets are mounted files (see workload.yaml). */ -}}
{{- $s := .Values.state -}}
{{- $state := dict "store" $s.store -}}
{{- if eq $s.store "redis" -}}
{{- $redis := dict "keyPrefix" $s.redis.keyPrefix "cluster" $s.redis.cluster -}}
{{- with $s.redis.url -}}
{{- $_ := set $redis "url" . -}}
{{- end -}}
{{- if $s.redis.passwordSecret.name -}}
{{- $_ := set $redis "passwordFile" "/etc/cellgate/state/redis/password" -}}
{{- end -}}
{{- $_ := set $state "redis" $redis -}}
{{- $_ := set $state "encryptionKeyFile" "/etc/cellgate/state/key/keyring" -}}
{{- end -}}
{{- $_ := set $owned "state" $state -}}
{{- with .Values.dtlsCertificateSecret -}}
{{- if .name -}}
{{- $dtls := dict "certificate" (dict "certFile" "/etc/cellgate/dtls/tls.crt" "keyFile" "/etc/cellgate/dtls/tls.key") -}}
{{- if .trustAnchorsKey -}}
{{- $_ := set $dtls "trustAnchors" "/etc/cellgate/dtls/ca.pem" -}}
{{- end -}}
{{- $_ := set $owned "dtls" $dtls -}}
{{- end -}}
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

{{/*
Shared state must fit the replica count: with the memory store every pod would keep its own DTLS sessions,
deduplication and downlinks, so a device whose next datagram reaches another pod would handshake again and a
retransmission could be published twice. The chart refuses that rather than install a fleet that misbehaves.
*/}}
{{- define "cellgate.checkState" -}}
{{- $s := .Values.state -}}
{{- $own := dig "state" (dict) .Values.config -}}
{{- if or (hasKey $own "store") (hasKey $own "encryptionKeyFile") (hasKey (dig "redis" (dict) $own) "url") (hasKey (dig "redis" (dict) $own) "passwordFile") (hasKey (dig "redis" (dict) $own) "keyPrefix") (hasKey (dig "redis" (dict) $own) "cluster") -}}
{{- fail "config.state: set the store, the Redis URL, key prefix, cluster mode, password and sealing key with the chart's state values (state.store, state.redis.*, state.encryptionKeySecret), which also mount the Secrets" -}}
{{- end -}}
{{- if and (eq $s.store "memory") (or .Values.autoscaling.enabled (gt (int .Values.replicaCount) 1)) -}}
{{- fail (printf "state.store is memory, which holds DTLS sessions, deduplication and downlinks in one pod only, so it allows one replica (replicaCount %v, autoscaling.enabled %v). For a fleet set state.store: redis, state.redis.url (or state.redis.urlSecret) and state.encryptionKeySecret.name (see values-fleet.yaml and docs/operations.md, \"Running a fleet\"); or set replicaCount: 1 and autoscaling.enabled: false" .Values.replicaCount .Values.autoscaling.enabled) -}}
{{- end -}}
{{- if eq $s.store "redis" -}}
{{- if and $s.redis.url $s.redis.urlSecret.name -}}
{{- fail "state.redis: set url or urlSecret.name, not both" -}}
{{- end -}}
{{- if not (or $s.redis.url $s.redis.urlSecret.name) -}}
{{- fail "state.store is redis: set state.redis.url (redis:// or rediss://) or state.redis.urlSecret.name (a Secret holding the URL)" -}}
{{- end -}}
{{- if not $s.encryptionKeySecret.name -}}
{{- fail "state.store is redis: set state.encryptionKeySecret.name, a Secret holding the keyring that seals session secrets (kubectl create secret generic cellgate-state-key --from-literal=keyring=\"0:$(openssl rand -base64 32)\")" -}}
{{- end -}}
{{- end -}}
{{- end -}}
