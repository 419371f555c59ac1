{{/*
Policy layering and the policy ConfigMap check (values policies.layer and policies.check).
Kept in this file, away from the templates it is included in, so that those change little.
*/}}

{{/* The layer ConfigMap mounted at /policy-layer (--policy-modules). */}}
{{- define "runtimeguard.policyLayerConfigMapName" -}}
{{- if .Values.policies.layer.existingConfigMap }}
{{- .Values.policies.layer.existingConfigMap }}
{{- else }}
{{- printf "%s-policy-layer" (include "runtimeguard.fullname" .) }}
{{- end }}
{{- end }}

{{/* True (non-empty) when a policy layer is mounted. */}}
{{- define "runtimeguard.policyLayerEnabled" -}}
{{- $l := .Values.policies.layer }}
{{- if or $l.data $l.modules $l.existingConfigMap }}true{{ end }}
{{- end }}

{{/* The ConfigMap key policies.layer.data is rendered into. */}}
{{- define "runtimeguard.policyLayerDataKey" -}}policy-data.yaml{{- end }}

{{/* Value combinations the schema cannot express. */}}
{{- define "runtimeguard.validatePolicyLayer" -}}
{{- $l := .Values.policies.layer }}
{{- if and $l.existingConfigMap (or $l.data $l.modules) }}
{{- fail "policies.layer.existingConfigMap and policies.layer.data/modules are mutually exclusive: put the data and modules into that ConfigMap, or let the chart render it" }}
{{- end }}
{{- if and $l.data (hasKey ($l.modules | default dict) (include "runtimeguard.policyLayerDataKey" .)) }}
{{- fail (printf "policies.layer.modules must not hold %s: the chart renders policies.layer.data under that key" (include "runtimeguard.policyLayerDataKey" .)) }}
{{- end }}
{{- end }}

{{/*
The ValidatingWebhookConfiguration entry that checks policy ConfigMaps (labelled
runtimeguard.io/policy) in the release namespace before the API server stores them. Included by
webhooks.yaml.
*/}}
{{- define "runtimeguard.policyCheckWebhook" -}}
{{- if .Values.policies.check.enabled }}
- name: policy.runtimeguard.io
  clientConfig:
    service:
      name: {{ include "runtimeguard.serviceName" . }}
      namespace: {{ .Release.Namespace }}
      path: /validate-policy-configmap
      port: 443
    {{- with include "runtimeguard.caBundle" . | trim }}
    {{- . | nindent 4 }}
    {{- end }}
  admissionReviewVersions: ["v1"]
  sideEffects: None
  timeoutSeconds: {{ .Values.policies.check.timeoutSeconds }}
  failurePolicy: {{ .Values.policies.check.failurePolicy }}
  matchPolicy: Equivalent
  rules:
    - apiGroups: [""]
      apiVersions: ["v1"]
      operations: ["CREATE", "UPDATE"]
      resources: ["configmaps"]
      scope: Namespaced
  namespaceSelector:
    matchExpressions:
      - key: kubernetes.io/metadata.name
        operator: In
        values: [{{ .Release.Namespace | quote }}]
  objectSelector:
    matchExpressions:
      - key: runtimeguard.io/policy
        operator: Exists
{{- end }}
{{- end }}
