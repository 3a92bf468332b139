{{/* The name of every object of the release: the release name, with "-ktes" unless it says ktes already. */}}
{{- define "ktes.fullname" -}}
{{- if contains "ktes" .Release.Name -}}
{{- .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-ktes" .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}

{{- define "ktes.taskNamespace" -}}
{{- default .Release.Namespace .Values.taskNamespace -}}
{{- end -}}

{{- define "ktes.image" -}}
{{- printf "%s:%s" .Values.image.repository (default .Chart.AppVersion .Values.image.tag) -}}
{{- end -}}

{{- define "ktes.selectorLabels" -}}
app.kubernetes.io/name: ktes
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}

{{- define "ktes.labels" -}}
{{ include "ktes.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/part-of: ktes
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version }}
{{- end -}}

{{- define "ktes.sqlite" -}}
{{- if not .Values.database.existingSecret -}}true{{- end -}}
{{- end -}}

{{/* The ktes container's environment: the one place both the server and the uninstall hook take it from. */}}
{{- define "ktes.env" -}}
- name: KTES_CONFIG
  value: /etc/ktes/config.yaml
- name: KTES_K8S_NAMESPACE
  value: {{ include "ktes.taskNamespace" . | quote }}
- name: KTES_K8S_IMAGE
  value: {{ default (include "ktes.image" .) .Values.stageImage | quote }}
- name: KTES_K8S_LEASE_NAME
  value: {{ include "ktes.fullname" . | quote }}
- name: POD_NAME
  valueFrom:
    fieldRef:
      fieldPath: metadata.name
{{- if .Values.database.existingSecret }}
- name: KTES_DATABASE_URL
  valueFrom:
    secretKeyRef:
      name: {{ .Values.database.existingSecret }}
      key: {{ .Values.database.secretKey }}
{{- end }}
{{- with .Values.extraEnv }}
{{ toYaml . }}
{{- end }}
{{- end -}}
