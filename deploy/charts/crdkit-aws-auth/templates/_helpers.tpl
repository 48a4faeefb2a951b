{{/* The name of every object of the release (one per cluster: aws-auth is a singleton). */}}
{{- define "crdkit-aws-auth.name" -}}
crdkit-aws-auth
{{- end -}}

{{- define "crdkit-aws-auth.selectorLabels" -}}
app.kubernetes.io/name: {{ include "crdkit-aws-auth.name" . }}
{{- end -}}

{{- define "crdkit-aws-auth.labels" -}}
{{ include "crdkit-aws-auth.selectorLabels" . }}
app.kubernetes.io/part-of: crdkit
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version }}
{{- end -}}

{{/* The subject every binding grants to. */}}
{{- define "crdkit-aws-auth.subject" -}}
- kind: ServiceAccount
  name: {{ include "crdkit-aws-auth.name" . }}
  namespace: {{ .Release.Namespace }}
{{- end -}}

{{/* Checks of values that would render a broken install. */}}
{{- define "crdkit-aws-auth.validate" -}}
{{- if and .Values.allNamespaces .Values.rbac.namespaced -}}
{{- fail "rbac.namespaced needs a list of namespaces: it cannot be used with allNamespaces" -}}
{{- end -}}
{{- if and (not .Values.allNamespaces) (empty .Values.watchNamespaces) -}}
{{- fail "watchNamespaces is empty: name at least one namespace, or set allNamespaces" -}}
{{- end -}}
{{- if not (has .Values.drift (list "repair" "report")) -}}
{{- fail (printf "drift: %q is not repair or report" .Values.drift) -}}
{{- end -}}
{{- if and (gt (int .Values.replicas) 1) (not .Values.leaderElect) -}}
{{- fail "replicas > 1 needs leaderElect: true (two operators would both write aws-auth)" -}}
{{- end -}}
{{- end -}}
