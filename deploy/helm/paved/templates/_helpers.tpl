{{- define "paved.labels" -}}
app.kubernetes.io/component: webhook
app.kubernetes.io/name: paved
{{- end -}}

{{- define "paved.excluded" -}}
- kube-system
- kube-node-lease
- {{ .Release.Namespace }}
{{- end -}}

{{/* The locks webhook's match condition; the same as lock_condition in crates/paved/src/install.rs. */}}
{{- define "paved.lockCondition" -}}
{{- $config := fromYaml .Values.config -}}
{{- $kinds := list "Namespace" -}}
{{- $anyKind := false -}}
{{- $byLabels := list -}}
{{- range (($config.locks | default dict).protect | default list) -}}
{{- if .kinds -}}
{{- $kinds = concat $kinds .kinds -}}
{{- else if not .labelSelector -}}
{{- $anyKind = true -}}
{{- else -}}
{{- $terms := list -}}
{{- range $k, $v := .labelSelector -}}
{{- $terms = append $terms (printf "'%s' in oldObject.metadata.labels && oldObject.metadata.labels['%s'] == '%s'" $k $k $v) -}}
{{- end -}}
{{- $byLabels = append $byLabels (printf "(oldObject != null && has(oldObject.metadata.labels) && %s)" (join " && " $terms)) -}}
{{- end -}}
{{- end -}}
{{- if $anyKind -}}
true
{{- else -}}
{{- $quoted := list -}}
{{- range (sortAlpha (uniq $kinds)) -}}
{{- $quoted = append $quoted (printf "'%s'" .) -}}
{{- end -}}
{{- $terms := list "(object != null && has(object.metadata.annotations) && 'paved.dev/lock' in object.metadata.annotations)" "(oldObject != null && has(oldObject.metadata.annotations) && 'paved.dev/lock' in oldObject.metadata.annotations)" (printf "request.kind.kind in [%s]" (join ", " $quoted)) -}}
{{- join " || " (concat $terms $byLabels) -}}
{{- end -}}
{{- end -}}
