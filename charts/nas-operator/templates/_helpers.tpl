{{/* Name of the chart, cut to a DNS label. */}}
{{- define "nas-operator.name" -}}
{{- .Chart.Name | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* Full name: the release name, or release-chart when the release name lacks the chart's. */}}
{{- define "nas-operator.fullname" -}}
{{- if contains .Chart.Name .Release.Name }}
{{- .Release.Name | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- printf "%s-%s" .Release.Name .Chart.Name | trunc 63 | trimSuffix "-" }}
{{- end }}
{{- end }}

{{- define "nas-operator.selectorLabels" -}}
app.kubernetes.io/name: {{ include "nas-operator.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{- define "nas-operator.labels" -}}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{ include "nas-operator.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- end }}

{{- define "nas-operator.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "nas-operator.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- default "default" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{/* The operator's permissions on searches and their Jobs: no access to Secrets. */}}
{{- define "nas-operator.rules" -}}
- apiGroups: ["nas.example.dev"]
  resources: ["nassearches"]
  verbs: ["get", "list", "watch", "patch"]
- apiGroups: ["nas.example.dev"]
  resources: ["nassearches/status"]
  verbs: ["get", "patch", "update"]
- apiGroups: ["nas.example.dev"]
  resources: ["nassearches/finalizers"]
  verbs: ["update"]
- apiGroups: ["batch"]
  resources: ["jobs"]
  verbs: ["get", "list", "watch", "create", "patch", "delete"]
- apiGroups: [""]
  resources: ["pods"]
  verbs: ["get", "list"]
- apiGroups: [""]
  resources: ["configmaps"]
  verbs: ["get", "create", "patch"]
- apiGroups: ["events.k8s.io"]
  resources: ["events"]
  verbs: ["create", "patch"]
{{- end }}
