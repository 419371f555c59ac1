{{/*
Chart name, truncated to the 63 characters a label value allows.
*/}}
{{- define "runtimeguard.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/*
Fully qualified name used for every resource. Names derived from it add at most 11
characters ("-selfsigned"), so it is truncated to 52 to keep them within 63.
*/}}
{{- define "runtimeguard.fullname" -}}
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

{{- define "runtimeguard.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/*
Labels on every resource.
*/}}
{{- define "runtimeguard.labels" -}}
helm.sh/chart: {{ include "runtimeguard.chart" . }}
{{ include "runtimeguard.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: runtimeguard
{{- with .Values.commonLabels }}
{{ toYaml . }}
{{- end }}
{{- end }}

{{/*
Selector labels (immutable in a Deployment: never add to them).
*/}}
{{- define "runtimeguard.selectorLabels" -}}
app.kubernetes.io/name: {{ include "runtimeguard.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{- define "runtimeguard.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "runtimeguard.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{/* The webhook Service; also the --service-name of self-signed mode. */}}
{{- define "runtimeguard.serviceName" -}}
{{- include "runtimeguard.fullname" . }}
{{- end }}

{{/* Both webhook configurations share this name (they are distinct kinds). */}}
{{- define "runtimeguard.webhookConfigurationName" -}}
{{- include "runtimeguard.fullname" . }}
{{- end }}

{{/*
Secret holding tls.crt/tls.key, mounted at /certs. The two certificate modes use different
names: the cert-manager Secret is not owned by Helm, so reusing its name for the
chart-created Secret of self-signed mode would make a mode switch fail with "exists and
cannot be imported into the current release".
*/}}
{{- define "runtimeguard.tlsSecretName" -}}
{{- if .Values.certManager.enabled }}
{{- printf "%s-serving-tls" (include "runtimeguard.fullname" .) }}
{{- else }}
{{- printf "%s-tls" (include "runtimeguard.fullname" .) }}
{{- end }}
{{- end }}

{{/* cert-manager Certificate for the serving certificate (target of inject-ca-from). */}}
{{- define "runtimeguard.servingCertificateName" -}}
{{- printf "%s-serving" (include "runtimeguard.fullname" .) }}
{{- end }}

{{- define "runtimeguard.policyConfigMapName" -}}
{{- if .Values.policies.existingConfigMap }}
{{- .Values.policies.existingConfigMap }}
{{- else }}
{{- printf "%s-policies" (include "runtimeguard.fullname" .) }}
{{- end }}
{{- end }}

{{/* True (non-empty) when a policy directory is mounted. */}}
{{- define "runtimeguard.policiesEnabled" -}}
{{- if or .Values.policies.inline .Values.policies.existingConfigMap }}true{{ end }}
{{- end }}

{{- define "runtimeguard.image" -}}
{{- if .Values.image.digest }}
{{- printf "%s@%s" .Values.image.repository .Values.image.digest }}
{{- else }}
{{- printf "%s:%s" .Values.image.repository (default .Chart.AppVersion .Values.image.tag) }}
{{- end }}
{{- end }}

{{/*
Namespaces that never reach the webhook. Fixed: kube-system (so the control plane and its
add-ons keep working while the webhook is down) and the release namespace (so the webhook's
own Pods can always be created, which also breaks the bootstrap cycle of self-signed mode).
*/}}
{{- define "runtimeguard.exemptNamespaces" -}}
{{- list "kube-system" .Release.Namespace | uniq | toJson }}
{{- end }}

{{/*
namespaceSelector of both webhooks: the fixed exemptions, the runtimeguard.io/ignore opt-out
label, then the user's extra requirements. Requirements are ANDed, so user input can narrow
the selection but never re-include an exempt namespace.
*/}}
{{- define "runtimeguard.namespaceSelector" -}}
matchExpressions:
  - key: kubernetes.io/metadata.name
    operator: NotIn
    values: {{ include "runtimeguard.exemptNamespaces" . }}
  - key: runtimeguard.io/ignore
    operator: NotIn
    values: ["true"]
{{- with .Values.webhook.namespaceSelector.matchExpressions }}
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- with .Values.webhook.namespaceSelector.matchLabels }}
matchLabels:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- end }}

{{/*
matchConditions of both webhooks. Mirror (static) Pods are skipped by the binary anyway (the
API server cannot change them), so they are filtered out before the call.
*/}}
{{- define "runtimeguard.matchConditions" -}}
- name: exclude-mirror-pods
  expression: "!has(object.metadata.annotations) || !('kubernetes.io/config.mirror' in object.metadata.annotations)"
{{- with .Values.webhook.matchConditions }}
{{ toYaml . }}
{{- end }}
{{- end }}

{{/* evalTimeout in milliseconds ("500ms" -> 500, "1s" -> 1000); the schema allows only ms and s. */}}
{{- define "runtimeguard.evalTimeoutMillis" -}}
{{- $t := toString .Values.evalTimeout }}
{{- if hasSuffix "ms" $t }}
{{- trimSuffix "ms" $t | atoi }}
{{- else }}
{{- mul (trimSuffix "s" $t | atoi) 1000 }}
{{- end }}
{{- end }}

{{/*
Rejects value combinations the schema cannot express. Included by deployment.yaml, so every
render runs it.
*/}}
{{- define "runtimeguard.validate" -}}
{{- if and .Values.policies.inline .Values.policies.existingConfigMap }}
{{- fail "policies.inline and policies.existingConfigMap are mutually exclusive: set only one of them" }}
{{- end }}
{{- if .Values.certManager.enabled }}
{{- if and .Values.certManager.createIssuers .Values.certManager.issuerRef }}
{{- fail "certManager.issuerRef and certManager.createIssuers=true are mutually exclusive: set certManager.createIssuers=false to use an existing issuer" }}
{{- end }}
{{- if and (not .Values.certManager.createIssuers) (not (.Values.certManager.issuerRef).name) }}
{{- fail "certManager.createIssuers=false requires certManager.issuerRef.name (an existing Issuer or ClusterIssuer)" }}
{{- end }}
{{- else if .Values.certManager.issuerRef }}
{{- fail "certManager.issuerRef is set but certManager.enabled=false: the issuer would be ignored in self-signed mode" }}
{{- end }}
{{- if and (not .Values.serviceAccount.create) (not .Values.serviceAccount.name) }}
{{- fail "serviceAccount.create=false requires serviceAccount.name (an existing ServiceAccount)" }}
{{- end }}
{{- $timeoutMs := mul (int .Values.webhook.timeoutSeconds) 1000 }}
{{- $evalMs := include "runtimeguard.evalTimeoutMillis" . | atoi }}
{{- if gt (mul $evalMs 2) $timeoutMs }}
{{- fail (printf "evalTimeout (%s) must be at most half of webhook.timeoutSeconds (%ds): the API server gives up on the whole call after timeoutSeconds" (toString .Values.evalTimeout) (int .Values.webhook.timeoutSeconds)) }}
{{- end }}
{{- if not .Values.certManager.enabled }}
{{- $certHours := trimSuffix "h" (toString .Values.selfSignedCerts.certValidity) | atoi }}
{{- $caHours := trimSuffix "h" (toString .Values.selfSignedCerts.caValidity) | atoi }}
{{- if gt $certHours $caHours }}
{{- fail (printf "selfSignedCerts.certValidity (%s) must not exceed selfSignedCerts.caValidity (%s)" .Values.selfSignedCerts.certValidity .Values.selfSignedCerts.caValidity) }}
{{- end }}
{{- end }}
{{- range .Values.extraArgs }}
{{- $flag := regexReplaceAll "=.*$" . "" }}
{{- if has $flag (list "--port" "--metrics-bind-address" "--health-probe-bind-address" "--cert-dir" "--webhook-namespace" "--namespace") }}
{{- fail (printf "extraArgs must not set %s: the chart derives it (set ports.webhook, ports.metrics or ports.health instead)" $flag) }}
{{- end }}
{{- end }}
{{- range .Values.extraEnv }}
{{- if eq .name "POD_NAMESPACE" }}
{{- fail "extraEnv must not set POD_NAMESPACE: the chart sets it from the downward API and passes it as --webhook-namespace" }}
{{- end }}
{{- end }}
{{- $ports := list (int .Values.ports.webhook) (int .Values.ports.metrics) (int .Values.ports.health) }}
{{- if ne (len ($ports | uniq)) 3 }}
{{- fail (printf "ports.webhook (%d), ports.metrics (%d) and ports.health (%d) must differ" (int .Values.ports.webhook) (int .Values.ports.metrics) (int .Values.ports.health)) }}
{{- end }}
{{- if le (int .Values.terminationGracePeriodSeconds) (add .Values.preStopSleepSeconds .Values.webhook.timeoutSeconds | int) }}
{{- fail (printf "terminationGracePeriodSeconds (%d) must exceed preStopSleepSeconds + webhook.timeoutSeconds (%d) so in-flight admission requests can drain after SIGTERM" (int .Values.terminationGracePeriodSeconds) (add .Values.preStopSleepSeconds .Values.webhook.timeoutSeconds | int)) }}
{{- end }}
{{- end }}

{{/* privateKey block of a cert-manager Certificate; the argument is certManager.privateKey. */}}
{{- define "runtimeguard.privateKey" -}}
algorithm: {{ .algorithm }}
{{- if and .size (ne .algorithm "Ed25519") }}
size: {{ .size }}
{{- end }}
rotationPolicy: Always
{{- end }}

{{/*
clientConfig.caBundle line for self-signed mode, from a Secret object (as returned by lookup):
the Secret's ca-bundle.crt, already base64 in .data. Empty when the Secret has no bundle yet
(first install, or `helm template`, where lookup returns nothing). Rendering it keeps the
caBundle right even where an upgrade replaces the object (--force, rollback); the binary
restores it within moments anyway.
*/}}
{{- define "runtimeguard.caBundleFromSecret" -}}
{{- $bundle := index ((.secret).data | default dict) "ca-bundle.crt" }}
{{- if $bundle }}
caBundle: {{ $bundle }}
{{- end }}
{{- end }}

{{- define "runtimeguard.caBundle" -}}
{{- if not .Values.certManager.enabled }}
{{- $secret := lookup "v1" "Secret" .Release.Namespace (include "runtimeguard.tlsSecretName" .) }}
{{- include "runtimeguard.caBundleFromSecret" (dict "secret" $secret) }}
{{- end }}
{{- end }}

{{/*
failurePolicy of the webhooks of one configuration (dict "root" . "kind" <Kind>). With
webhook.failurePolicy=Fail, a configuration that fails closed before a replica can answer
(no caBundle injected yet, no replica ready) rejects every Pod CREATE outside the exempt
namespaces. So against a cluster (helm install/upgrade), a configuration is created with
Ignore and a ready replica whose certificate its caBundle trusts sets Fail (serve
--failure-policy); an upgrade keeps Fail once the configuration has it, so it never reopens.
Without a cluster to ask (helm template, --dry-run=client, and so GitOps tools that render
with helm template), lookup finds nothing, not even kube-system: webhook.failurePolicy is
rendered as is, because such tools would otherwise revert the replica's change at each sync.
*/}}
{{- define "runtimeguard.failurePolicy" -}}
{{- $root := .root }}
{{- $want := include "runtimeguard.wantedFailurePolicy" $root }}
{{- if or (eq $want "Ignore") (not (lookup "v1" "Namespace" "" "kube-system")) }}
{{- $want }}
{{- else }}
{{- $live := lookup "admissionregistration.k8s.io/v1" .kind "" (include "runtimeguard.webhookConfigurationName" $root) }}
{{- $policy := "Ignore" }}
{{- with $live.webhooks }}
{{- $policy = "Fail" }}
{{- range . }}
{{- /* The policy ConfigMap check keeps its own failurePolicy (policies.check). */}}
{{- if and (ne .name "policy.runtimeguard.io") (ne (toString .failurePolicy) "Fail") }}
{{- $policy = "Ignore" }}
{{- end }}
{{- end }}
{{- end }}
{{- $policy }}
{{- end }}
{{- end }}

{{/*
The failurePolicy the Pod webhooks are meant to have: webhook.failurePolicy, except with
native.mode both or native, where the native admission policies are the floor and the webhook only adds
to them (Ignore: an outage loses the extras, never the guarantee).
*/}}
{{- define "runtimeguard.wantedFailurePolicy" -}}
{{- if ne .Values.native.mode "webhook" }}Ignore{{ else }}{{ .Values.webhook.failurePolicy }}{{ end }}
{{- end }}

{{/* Whether the chart installs the native admission policies (native.mode native or both). */}}
{{- define "runtimeguard.nativeEnabled" -}}
{{- if ne .Values.native.mode "webhook" }}true{{ end }}
{{- end }}

{{/* Fields shared by the mutating and the validating webhook. */}}
{{- define "runtimeguard.webhookCommon" -}}
{{- $root := .root -}}
admissionReviewVersions: ["v1"]
sideEffects: None
timeoutSeconds: {{ $root.Values.webhook.timeoutSeconds }}
matchPolicy: Equivalent
rules:
  - apiGroups: [""]
    apiVersions: ["v1"]
    operations: ["CREATE"]
    resources: ["pods"]
    scope: Namespaced
{{- if and .workloads (ne $root.Values.workloads.review "off") }}
  # Workloads are reviewed by their Pod template (workloads.review), never mutated.
  - apiGroups: ["apps"]
    apiVersions: ["v1"]
    operations: ["CREATE", "UPDATE"]
    resources: ["deployments", "statefulsets", "daemonsets", "replicasets"]
    scope: Namespaced
  - apiGroups: [""]
    apiVersions: ["v1"]
    operations: ["CREATE", "UPDATE"]
    resources: ["replicationcontrollers"]
    scope: Namespaced
  - apiGroups: ["batch"]
    apiVersions: ["v1"]
    operations: ["CREATE", "UPDATE"]
    resources: ["jobs", "cronjobs"]
    scope: Namespaced
{{- end }}
namespaceSelector:
  {{- include "runtimeguard.namespaceSelector" $root | nindent 2 }}
{{- if $root.Values.webhook.objectSelector }}
objectSelector:
  {{- toYaml $root.Values.webhook.objectSelector | nindent 2 }}
{{- else }}
objectSelector: {}
{{- end }}
matchConditions:
  {{- include "runtimeguard.matchConditions" $root | nindent 2 }}
{{- end }}

{{/* Annotations of both webhook configurations. */}}
{{- define "runtimeguard.webhookAnnotations" -}}
{{- $a := dict }}
{{- if .Values.certManager.enabled }}
{{- $_ := set $a "cert-manager.io/inject-ca-from" (printf "%s/%s" .Release.Namespace (include "runtimeguard.servingCertificateName" .)) }}
{{- end }}
{{- $a = merge $a .Values.webhook.annotations }}
{{- if $a }}
{{- toYaml $a }}
{{- end }}
{{- end }}

{{/*
GOMEMLIMIT for the container, or "" when none is set: goMemLimit.value as written, else
goMemLimit.limitPercent of resources.limits.memory rounded down to whole MiB (128Mi at 38% ->
48MiB). A GOMEMLIMIT in extraEnv wins (none is derived then). Fails when it cannot be
derived, so a removed memory limit does not silently drop the soft limit.
*/}}
{{- define "runtimeguard.goMemLimit" -}}
{{- $g := .Values.goMemLimit }}
{{- $userSet := false }}
{{- range .Values.extraEnv }}{{ if eq .name "GOMEMLIMIT" }}{{ $userSet = true }}{{ end }}{{ end }}
{{- if and $g.enabled (not $userSet) }}
{{- if $g.value }}
{{- $g.value }}
{{- else }}
{{- $limit := (.Values.resources.limits | default dict).memory }}
{{- if not $limit }}
{{- fail "goMemLimit.enabled derives GOMEMLIMIT from resources.limits.memory, which is not set: set a memory limit, goMemLimit.value, or goMemLimit.enabled=false" }}
{{- end }}
{{- $bytes := include "runtimeguard.quantityBytes" $limit }}
{{- if not $bytes }}
{{- fail (printf "cannot derive GOMEMLIMIT from resources.limits.memory=%v (supported: <n>, <n>k/M/G/T, <n>Ki/Mi/Gi/Ti): set goMemLimit.value" $limit) }}
{{- end }}
{{- $mib := div (mulf (float64 $bytes) (float64 $g.limitPercent) | int64) (mul 100 1048576) }}
{{- if lt $mib 1 }}
{{- fail (printf "resources.limits.memory=%v is too small to derive GOMEMLIMIT from: set goMemLimit.value" $limit) }}
{{- end }}
{{- printf "%dMiB" $mib }}
{{- end }}
{{- end }}
{{- end }}

{{/*
Bytes of a Kubernetes memory quantity (a string such as 128Mi, 1.5Gi, 500M, or a plain number),
as a decimal integer string; "" for forms it does not handle (exponents, milli).
*/}}
{{- define "runtimeguard.quantityBytes" -}}
{{- $units := dict "" 1.0 "k" 1e3 "M" 1e6 "G" 1e9 "T" 1e12 "P" 1e15 "Ki" 1024.0 "Mi" 1048576.0 "Gi" 1073741824.0 "Ti" 1099511627776.0 "Pi" 1125899906842624.0 }}
{{- if or (kindIs "float64" .) (kindIs "int64" .) (kindIs "int" .) }}
{{- printf "%.0f" (float64 .) }}
{{- else }}
{{- $q := toString . }}
{{- if regexMatch "^[0-9]+(\\.[0-9]+)?(k|M|G|T|P|Ki|Mi|Gi|Ti|Pi)?$" $q }}
{{- $num := regexFind "^[0-9]+(\\.[0-9]+)?" $q }}
{{- $unit := trimPrefix $num $q }}
{{- printf "%.0f" (mulf (float64 $num) (get $units $unit)) }}
{{- end }}
{{- end }}
{{- end }}
