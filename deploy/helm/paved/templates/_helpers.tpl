{{- define "paved.labels" -}}
app.kubernetes.io/component: webhook
app.kubernetes.io/name: paved
{{- end -}}

{{- define "paved.excluded" -}}
- kube-system
- kube-node-lease
- {{ .Release.Namespace }}
{{- end -}}

{{/* CEL: escape a string for a single-quoted CEL literal (cel_escape in crates/paved/src/install.rs). */}}
{{- define "paved.celEscape" -}}
{{- . | replace "\\" "\\\\" | replace "'" "\\'" -}}
{{- end -}}

{{/* The locks webhook's match condition; the same text as lock_condition in
     crates/paved/src/install.rs, which explains it (a test compares them). */}}
{{- define "paved.lockCondition" -}}
{{- $config := fromYaml .Values.config -}}
{{- $terms := list -}}
{{- range (($config.locks | default dict).protect | default list) -}}
{{- $rule := list "oldObject != null" "(request.operation == 'DELETE' || (has(object.metadata.labels) ? object.metadata.labels : {}) != (has(oldObject.metadata.labels) ? oldObject.metadata.labels : {}))" -}}
{{- if .kinds -}}
{{- $kinds := list -}}
{{- range .kinds -}}
{{- $kinds = append $kinds (printf "'%s'" (include "paved.celEscape" .)) -}}
{{- end -}}
{{- $rule = append $rule (printf "request.kind.kind in [%s]" (join ", " $kinds)) -}}
{{- end -}}
{{- if .namespaces -}}
{{- $globs := list -}}
{{- range .namespaces -}}
{{- $globs = append $globs (. | replace "." "[.]" | replace "*" ".*" | replace "?" ".") -}}
{{- end -}}
{{- $rule = append $rule (printf "request.namespace.matches('^(?:%s)$')" (join "|" $globs)) -}}
{{- end -}}
{{- range $k, $v := (.labelSelector | default dict) -}}
{{- $k := include "paved.celEscape" $k -}}
{{- $rule = append $rule (printf "oldObject != null && has(oldObject.metadata) && has(oldObject.metadata.labels) && '%s' in oldObject.metadata.labels && oldObject.metadata.labels['%s'] == '%s'" $k $k (include "paved.celEscape" $v)) -}}
{{- end -}}
{{- $terms = append $terms (printf "(%s)" (join " && " $rule)) -}}
{{- end -}}
{{- printf "%s" `!(request.kind.kind == 'ReplicaSet' && request.userInfo.username in ['system:serviceaccount:kube-system:deployment-controller', 'system:serviceaccount:kube-system:generic-garbage-collector'] && oldObject != null && has(oldObject.metadata.ownerReferences) && size(oldObject.metadata.ownerReferences) > 0 && oldObject.metadata.ownerReferences[0].kind == 'Deployment' && oldObject.metadata.ownerReferences[0].apiVersion.startsWith('apps/') && has(oldObject.metadata.ownerReferences[0].controller) && oldObject.metadata.ownerReferences[0].controller == true) && ((request.operation == 'CREATE' && object != null && has(object.metadata) && has(object.metadata.annotations) && 'paved.dev/lock' in object.metadata.annotations && (object.metadata.annotations['paved.dev/lock'] != 'delete' || (has(request.namespace) && request.namespace != '' && request.kind.kind != 'Namespace' && !((request.kind.group + '/' + request.kind.kind) in ['/Pod', '/PersistentVolumeClaim', '/Service', '/ConfigMap', '/ServiceAccount', '/PodTemplate', '/ReplicationController', '/ResourceQuota', '/LimitRange', 'apps/Deployment', 'apps/ReplicaSet', 'apps/StatefulSet', 'apps/DaemonSet', 'apps/ControllerRevision', 'batch/CronJob', 'batch/Job', 'autoscaling/HorizontalPodAutoscaler', 'networking.k8s.io/Ingress', 'networking.k8s.io/NetworkPolicy', 'policy/PodDisruptionBudget', 'rbac.authorization.k8s.io/Role', 'rbac.authorization.k8s.io/RoleBinding', 'storage.k8s.io/CSIStorageCapacity'])))) || (request.operation != 'CREATE' && ((oldObject != null && has(oldObject.metadata) && has(oldObject.metadata.annotations) && 'paved.dev/lock' in oldObject.metadata.annotations) != (object != null && has(object.metadata) && has(object.metadata.annotations) && 'paved.dev/lock' in object.metadata.annotations) || (oldObject != null && has(oldObject.metadata) && has(oldObject.metadata.annotations) && 'paved.dev/lock' in oldObject.metadata.annotations && object != null && has(object.metadata) && has(object.metadata.annotations) && 'paved.dev/lock' in object.metadata.annotations && oldObject.metadata.annotations['paved.dev/lock'] != object.metadata.annotations['paved.dev/lock']))) || (request.operation == 'DELETE' && request.kind.kind == 'Namespace' && oldObject != null && has(oldObject.metadata) && has(oldObject.metadata.annotations) && 'paved.dev/holds-locks' in oldObject.metadata.annotations) || (request.kind.kind == 'Namespace' && request.operation != 'DELETE' && ((oldObject != null && has(oldObject.metadata) && has(oldObject.metadata.annotations) && 'paved.dev/holds-locks' in oldObject.metadata.annotations) != (object != null && has(object.metadata) && has(object.metadata.annotations) && 'paved.dev/holds-locks' in object.metadata.annotations) || (oldObject != null && has(oldObject.metadata) && has(oldObject.metadata.annotations) && 'paved.dev/holds-locks' in oldObject.metadata.annotations && object != null && has(object.metadata) && has(object.metadata.annotations) && 'paved.dev/holds-locks' in object.metadata.annotations && oldObject.metadata.annotations['paved.dev/holds-locks'] != object.metadata.annotations['paved.dev/holds-locks'])))` -}}
{{- range $terms }} || {{ . }}{{ end -}}
)
{{- end -}}

{{/* The grants webhook's match condition; the same text as grant_condition in
     crates/paved/src/install.rs, which explains it (a test compares them). */}}
{{- define "paved.grantCondition" -}}
{{- $config := fromYaml .Values.config -}}
{{- $trusted := list -}}
{{- $exceptions := $config.exceptions | default dict -}}
{{- if hasKey $exceptions "trusted-controllers" -}}
{{- $trusted = index $exceptions "trusted-controllers" | default list -}}
{{- else -}}
{{- range list "replicaset" "deployment" "daemon-set" "statefulset" "job" "cronjob" "replication" -}}
{{- $trusted = append $trusted (printf "system:serviceaccount:kube-system:%s-controller" .) -}}
{{- end -}}
{{- $trusted = append $trusted "system:kube-controller-manager" -}}
{{- end -}}
{{- $quoted := list -}}
{{- range $trusted -}}
{{- $quoted = append $quoted (printf "'%s'" (include "paved.celEscape" .)) -}}
{{- end -}}
{{- printf "%s%s%s" `(request.kind.kind == 'Namespace' && ['paved.dev/profile', 'paved.dev/profile-version', 'paved.dev/mode'].exists(k, (oldObject != null && has(oldObject.metadata) && has(oldObject.metadata.labels) && k in oldObject.metadata.labels) != (object != null && has(object.metadata) && has(object.metadata.labels) && k in object.metadata.labels) || (oldObject != null && has(oldObject.metadata) && has(oldObject.metadata.labels) && k in oldObject.metadata.labels && object != null && has(object.metadata) && has(object.metadata.labels) && k in object.metadata.labels && oldObject.metadata.labels[k] != object.metadata.labels[k]))) || (!(request.userInfo.username in [` (join ", " $quoted) `]) && (['paved.dev/exempt', 'paved.dev/exempt-reason', 'paved.dev/exempt-until'].exists(k, (oldObject != null && has(oldObject.metadata) && has(oldObject.metadata.annotations) && k in oldObject.metadata.annotations) != (object != null && has(object.metadata) && has(object.metadata.annotations) && k in object.metadata.annotations) || (oldObject != null && has(oldObject.metadata) && has(oldObject.metadata.annotations) && k in oldObject.metadata.annotations && object != null && has(object.metadata) && has(object.metadata.annotations) && k in object.metadata.annotations && oldObject.metadata.annotations[k] != object.metadata.annotations[k])) || ['paved.dev/exempt', 'paved.dev/exempt-reason', 'paved.dev/exempt-until'].exists(k, (oldObject != null && has(oldObject.spec) && has(oldObject.spec.template) && has(oldObject.spec.template.metadata) && has(oldObject.spec.template.metadata.annotations) && k in oldObject.spec.template.metadata.annotations) != (object != null && has(object.spec) && has(object.spec.template) && has(object.spec.template.metadata) && has(object.spec.template.metadata.annotations) && k in object.spec.template.metadata.annotations) || (oldObject != null && has(oldObject.spec) && has(oldObject.spec.template) && has(oldObject.spec.template.metadata) && has(oldObject.spec.template.metadata.annotations) && k in oldObject.spec.template.metadata.annotations && object != null && has(object.spec) && has(object.spec.template) && has(object.spec.template.metadata) && has(object.spec.template.metadata.annotations) && k in object.spec.template.metadata.annotations && oldObject.spec.template.metadata.annotations[k] != object.spec.template.metadata.annotations[k])) || ['paved.dev/exempt', 'paved.dev/exempt-reason', 'paved.dev/exempt-until'].exists(k, (oldObject != null && has(oldObject.spec) && has(oldObject.spec.jobTemplate) && has(oldObject.spec.jobTemplate.spec) && has(oldObject.spec.jobTemplate.spec.template) && has(oldObject.spec.jobTemplate.spec.template.metadata) && has(oldObject.spec.jobTemplate.spec.template.metadata.annotations) && k in oldObject.spec.jobTemplate.spec.template.metadata.annotations) != (object != null && has(object.spec) && has(object.spec.jobTemplate) && has(object.spec.jobTemplate.spec) && has(object.spec.jobTemplate.spec.template) && has(object.spec.jobTemplate.spec.template.metadata) && has(object.spec.jobTemplate.spec.template.metadata.annotations) && k in object.spec.jobTemplate.spec.template.metadata.annotations) || (oldObject != null && has(oldObject.spec) && has(oldObject.spec.jobTemplate) && has(oldObject.spec.jobTemplate.spec) && has(oldObject.spec.jobTemplate.spec.template) && has(oldObject.spec.jobTemplate.spec.template.metadata) && has(oldObject.spec.jobTemplate.spec.template.metadata.annotations) && k in oldObject.spec.jobTemplate.spec.template.metadata.annotations && object != null && has(object.spec) && has(object.spec.jobTemplate) && has(object.spec.jobTemplate.spec) && has(object.spec.jobTemplate.spec.template) && has(object.spec.jobTemplate.spec.template.metadata) && has(object.spec.jobTemplate.spec.template.metadata.annotations) && k in object.spec.jobTemplate.spec.template.metadata.annotations && oldObject.spec.jobTemplate.spec.template.metadata.annotations[k] != object.spec.jobTemplate.spec.template.metadata.annotations[k])) || ['paved.dev/exempt', 'paved.dev/exempt-reason', 'paved.dev/exempt-until'].exists(k, (oldObject != null && has(oldObject.template) && has(oldObject.template.metadata) && has(oldObject.template.metadata.annotations) && k in oldObject.template.metadata.annotations) != (object != null && has(object.template) && has(object.template.metadata) && has(object.template.metadata.annotations) && k in object.template.metadata.annotations) || (oldObject != null && has(oldObject.template) && has(oldObject.template.metadata) && has(oldObject.template.metadata.annotations) && k in oldObject.template.metadata.annotations && object != null && has(object.template) && has(object.template.metadata) && has(object.template.metadata.annotations) && k in object.template.metadata.annotations && oldObject.template.metadata.annotations[k] != object.template.metadata.annotations[k])))) || (request.kind.kind == 'PolicyException' && request.kind.group in ['kyverno.io', 'policies.kyverno.io'] && request.operation != 'DELETE')` -}}
{{- end -}}
