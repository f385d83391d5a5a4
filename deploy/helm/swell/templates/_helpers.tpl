{{/* The base name of every object. */}}
{{- define "swell.fullname" -}}
{{- if .Values.fullnameOverride -}}
{{- .Values.fullnameOverride | trunc 50 | trimSuffix "-" -}}
{{- else if contains "swell" .Release.Name -}}
{{- .Release.Name | trunc 50 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-swell" .Release.Name | trunc 50 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}

{{- define "swell.selectorLabels" -}}
app.kubernetes.io/name: swell
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}

{{- define "swell.labels" -}}
{{ include "swell.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version }}
{{- end -}}

{{/* The Service the APIService points at; its DNS name is in the serving certificate. */}}
{{- define "swell.metricsService" -}}
{{ include "swell.fullname" . }}-metrics
{{- end -}}

{{- define "swell.tlsSecret" -}}
{{ include "swell.fullname" . }}-metrics-tls
{{- end -}}

{{- define "swell.image" -}}
{{ .Values.image.repository }}:{{ .Values.image.tag | default .Chart.AppVersion }}
{{- end -}}

{{/* The environment Swell's containers share: the database and the sealing key. */}}
{{- define "swell.secretEnv" -}}
- name: SWELL_DATABASE_URL
  valueFrom:
    secretKeyRef:
      name: {{ required "database.existingSecret: name the Secret with the database URL" .Values.database.existingSecret }}
      key: {{ .Values.database.key }}
- name: SWELL_SECRET_KEY
  valueFrom:
    secretKeyRef:
      name: {{ required "secretKey.existingSecret: name the Secret with the 64-hex-character key" .Values.secretKey.existingSecret }}
      key: {{ .Values.secretKey.key }}
{{- end -}}

{{- define "swell.containerSecurityContext" -}}
allowPrivilegeEscalation: false
readOnlyRootFilesystem: true
capabilities:
  drop: [ALL]
{{- end -}}
