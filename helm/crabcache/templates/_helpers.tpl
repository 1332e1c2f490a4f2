{{/*
Names. The full name is cut at 52 characters: StatefulSet pods are named <fullname>-<ordinal>
and the controller adds a controller-revision-hash label <fullname>-<10 chars>, which must fit
Kubernetes' 63-character label limit.
*/}}
{{- define "crabcache.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 52 | trimSuffix "-" }}
{{- end }}

{{- define "crabcache.fullname" -}}
{{- if .Values.fullnameOverride }}
{{- .Values.fullnameOverride | trunc 52 | trimSuffix "-" }}
{{- else }}
{{- $name := default .Chart.Name .Values.nameOverride }}
{{- if contains $name .Release.Name }}
{{- .Release.Name | trunc 52 | trimSuffix "-" }}
{{- else }}
{{- printf "%s-%s" .Release.Name $name | trunc 52 | trimSuffix "-" }}
{{- end }}
{{- end }}
{{- end }}

{{/* The headless Service: governs the StatefulSet and gives each pod its DNS name. */}}
{{- define "crabcache.headlessName" -}}
{{- printf "%s-headless" (include "crabcache.fullname" .) }}
{{- end }}

{{- define "crabcache.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/*
Standard labels (https://kubernetes.io/docs/concepts/overview/working-with-objects/common-labels/).
The component is part of the selector so that the helm test pod (component "test") is never
an endpoint of the Services nor counted by the PodDisruptionBudget.
*/}}
{{- define "crabcache.commonLabels" -}}
helm.sh/chart: {{ include "crabcache.chart" . }}
app.kubernetes.io/name: {{ include "crabcache.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ include "crabcache.imageTag" . | trunc 63 | quote }}
app.kubernetes.io/part-of: crabcache
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- end }}

{{- define "crabcache.labels" -}}
{{ include "crabcache.commonLabels" . }}
app.kubernetes.io/component: cache
{{- end }}

{{/* Selector labels: immutable on a StatefulSet. */}}
{{- define "crabcache.selectorLabels" -}}
app.kubernetes.io/name: {{ include "crabcache.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/component: cache
{{- end }}

{{/* Label that the NetworkPolicy admits on the client ports. */}}
{{- define "crabcache.clientLabel" -}}
{{- printf "%s-client" (include "crabcache.fullname" .) }}
{{- end }}

{{- define "crabcache.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "crabcache.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- default "default" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{- define "crabcache.imageTag" -}}
{{- default .Chart.AppVersion .Values.image.tag }}
{{- end }}

{{- define "crabcache.image" -}}
{{- if .Values.image.digest }}
{{- printf "%s@%s" .Values.image.repository .Values.image.digest }}
{{- else }}
{{- printf "%s:%s" .Values.image.repository (include "crabcache.imageTag" .) }}
{{- end }}
{{- end }}

{{/*
crabcache.quantityBytes: a Kubernetes memory quantity ("1Gi", "1.5G", "512Mi", 1073741824) as a
byte count. Decimal suffixes are powers of 1000 and binary ones powers of 1024, as in
Kubernetes; the result is always rendered as plain bytes so that crabcached's own suffix
convention (K = 1024) never comes into play.
*/}}
{{- define "crabcache.quantityBytes" -}}
{{- if or (kindIs "float64" .) (kindIs "int64" .) (kindIs "int" .) }}
{{- printf "%d" (int64 .) }}
{{- else }}
{{- $q := toString . | trim }}
{{- if not (regexMatch "^[0-9]+(\\.[0-9]+)?(Ki|Mi|Gi|Ti|Pi|Ei|k|M|G|T|P|E)?$" $q) }}
{{- fail (printf "cannot read %q as a memory quantity: use bytes or a suffix Ki, Mi, Gi, Ti, k, M, G, T" $q) }}
{{- end }}
{{- $num := regexFind "^[0-9]+(\\.[0-9]+)?" $q }}
{{- $suffix := trimPrefix $num $q }}
{{- $mult := dict "" 1.0 "k" 1e3 "M" 1e6 "G" 1e9 "T" 1e12 "P" 1e15 "E" 1e18 "Ki" 1024.0 "Mi" 1048576.0 "Gi" 1073741824.0 "Ti" 1099511627776.0 "Pi" 1125899906842624.0 "Ei" 1152921504606846976.0 }}
{{- printf "%d" (mulf (float64 $num) (get $mult $suffix) | floor | int64) }}
{{- end }}
{{- end }}

{{/* crabcache.cpuCores: a CPU quantity ("500m", "2", 1.5) rounded up to whole cores. */}}
{{- define "crabcache.cpuCores" -}}
{{- $q := toString . | trim }}
{{- if not (regexMatch "^[0-9]+(\\.[0-9]+)?m?$" $q) }}
{{- fail (printf "cannot read %q as a CPU quantity: use cores (2, 1.5) or millicores (500m)" $q) }}
{{- end }}
{{- $cores := 0.0 }}
{{- if hasSuffix "m" $q }}
{{- $cores = divf (float64 (trimSuffix "m" $q)) 1000 }}
{{- else }}
{{- $cores = float64 $q }}
{{- end }}
{{- max 1 (ceil $cores | int64) }}
{{- end }}

{{/*
crabcache.maxMemory: the --max_memory byte count. memory.maxMemory when set, else
memory.limitPercent of resources.limits.memory. Fails when no memory limit is set: a cache
without a limit grows until the node evicts it.
*/}}
{{- define "crabcache.maxMemory" -}}
{{- $limit := dig "limits" "memory" "" .Values.resources }}
{{- $limitBytes := 0 }}
{{- if $limit }}
{{- $limitBytes = include "crabcache.quantityBytes" $limit | int64 }}
{{- end }}
{{- if .Values.memory.maxMemory }}
{{- $bytes := include "crabcache.quantityBytes" .Values.memory.maxMemory | int64 }}
{{- if and $limitBytes (ge $bytes $limitBytes) }}
{{- fail (printf "memory.maxMemory (%d bytes) must stay below resources.limits.memory (%d bytes): the container needs headroom beyond the stored data" $bytes $limitBytes) }}
{{- end }}
{{- $bytes }}
{{- else if $limitBytes }}
{{- div (mul $limitBytes (int64 .Values.memory.limitPercent)) 100 }}
{{- else }}
{{- fail "set resources.limits.memory (it sizes --max_memory) or memory.maxMemory" }}
{{- end }}
{{- end }}

{{/* crabcache.threads: config.threads, else derived from the CPU limit or request with the server's
own rule (1 loop for up to 2 CPUs, else CPUs - 1); "" = server default (it sees a CPU limit, not a
request). */}}
{{- define "crabcache.threads" -}}
{{- if .Values.config.threads }}
{{- .Values.config.threads }}
{{- else }}
{{- $cpu := dig "limits" "cpu" (dig "requests" "cpu" "" .Values.resources) .Values.resources }}
{{- if $cpu }}
{{- $cores := include "crabcache.cpuCores" $cpu | int }}
{{- if le $cores 2 }}1{{ else }}{{ sub $cores 1 }}{{ end }}
{{- end }}
{{- end }}
{{- end }}

{{/*
crabcache.metricsAddress: --metrics_address, host:port. The host is metrics.address, else
config.address (so that an IPv6 cluster's "::" reaches /metrics too), an IPv6 literal in brackets.
crabcached serves /metrics with prometheus-cpp over civetweb, and Debian's civetweb 1.15 (the one
in the image) is built without IPv6: it cannot bind "[::]:9090", and crabcached would exit at
start-up. So an IPv6 host taken from config.address is refused here; metrics.address set to an
IPv6 address is the explicit choice of an image whose civetweb has IPv6.
*/}}
{{- define "crabcache.metricsAddress" -}}
{{- $host := default .Values.config.address .Values.metrics.address }}
{{- if and (contains ":" $host) (not .Values.metrics.address) }}
{{- fail (printf "config.address %q is IPv6, but the image's metrics server (Debian's civetweb, built without IPv6) cannot bind [%s]:%v, and crabcached would not start. Set metrics.address (\"0.0.0.0\" serves /metrics over IPv4, e.g. on dual-stack clusters; an IPv6 address needs an image whose civetweb has IPv6) or metrics.enabled=false" $host $host .Values.ports.metrics) }}
{{- end }}
{{- if contains ":" $host }}[{{ $host }}]{{ else }}{{ $host }}{{ end }}:{{ .Values.ports.metrics }}
{{- end }}

{{/* The port the kubelet probes: the plaintext health port when the gRPC port speaks TLS. */}}
{{- define "crabcache.probePort" -}}
{{- if .Values.tls.enabled }}{{ .Values.ports.health }}{{ else }}{{ .Values.ports.grpc }}{{ end }}
{{- end }}

{{/* Seconds the pod may take to stop: preStop sleep + shutdown delay + drain grace + 5 s margin. */}}
{{- define "crabcache.terminationGracePeriod" -}}
{{- $s := .Values.shutdown }}
{{- $needed := add $s.preStopSleepSeconds $s.delaySeconds $s.graceSeconds }}
{{- if $s.terminationGracePeriodSeconds }}
{{- if le (int64 $s.terminationGracePeriodSeconds) (int64 $needed) }}
{{- fail (printf "shutdown.terminationGracePeriodSeconds (%d) must exceed preStopSleepSeconds + delaySeconds + graceSeconds (%d), or the kubelet kills crabcached mid-drain" (int64 $s.terminationGracePeriodSeconds) (int64 $needed)) }}
{{- end }}
{{- $s.terminationGracePeriodSeconds }}
{{- else }}
{{- add $needed 5 }}
{{- end }}
{{- end }}

{{- define "crabcache.authSecretName" -}}
{{- default (printf "%s-auth" (include "crabcache.fullname" .)) .Values.auth.existingSecret }}
{{- end }}

{{/* Mount points of the Secrets inside the container. */}}
{{- define "crabcache.authDir" -}}/etc/crabcache/auth{{- end }}
{{- define "crabcache.tlsDir" -}}/etc/crabcache/tls{{- end }}
{{- define "crabcache.clientCADir" -}}/etc/crabcache/client-ca{{- end }}

{{/* crabcached's command line, one flag per list item. Flags carrying an address are quoted:
unquoted, YAML reads "- --address=::" as a mapping, not a string. */}}
{{- define "crabcache.args" -}}
{{- $c := .Values.config -}}
- {{ printf "--address=%s" $c.address | quote }}
- --port={{ .Values.ports.fastpath }}
- --grpc_port={{ .Values.ports.grpc }}
{{- if .Values.metrics.enabled }}
- {{ printf "--metrics_address=%s" (include "crabcache.metricsAddress" .) | quote }}
{{- else }}
- --metrics_address=
{{- end }}
- --max_memory={{ include "crabcache.maxMemory" . }}
- --eviction={{ $c.eviction }}
{{- with include "crabcache.threads" . }}
- --threads={{ . }}
{{- end }}
{{- if $c.shards }}
- --shards={{ $c.shards }}
{{- end }}
- --max_key_bytes={{ int64 $c.maxKeyBytes }}
- --max_value_bytes={{ int64 $c.maxValueBytes }}
- --max_connections={{ int64 $c.maxConnections }}
- --output_soft_limit={{ int64 $c.outputSoftLimit }}
- --output_hard_limit={{ int64 $c.outputHardLimit }}
- --idle_timeout={{ $c.idleTimeout }}
- --max_batch_commands={{ int64 $c.maxBatchCommands }}
- --grpc_max_message_bytes={{ int64 $c.grpcMaxMessageBytes }}
- --grpc_max_concurrent_streams={{ int64 $c.grpcMaxConcurrentStreams }}
- --shutdown_delay={{ .Values.shutdown.delaySeconds }}s
- --shutdown_grace={{ .Values.shutdown.graceSeconds }}s
- --log_level={{ $c.logLevel }}
- --log_format={{ $c.logFormat }}
{{- if .Values.auth.enabled }}
- --auth_token_file={{ include "crabcache.authDir" . }}/tokens
{{- end }}
{{- if .Values.tls.enabled }}
- --health_port={{ .Values.ports.health }}
- --tls_cert={{ include "crabcache.tlsDir" . }}/tls.crt
- --tls_key={{ include "crabcache.tlsDir" . }}/tls.key
{{- if .Values.tls.clientAuth }}
- --tls_client_ca={{ include "crabcache.clientCADir" . }}/ca.crt
{{- end }}
{{- end }}
{{- range $c.extraArgs }}
- {{ . | quote }}
{{- end }}
{{- end }}
