{{/* Volumes shared by several pods: the adapter store, the model store, the object-storage copy step. */}}

{{/* The adapter store: the same files for the gateway (writes uploads) and Triton (reads on first use). */}}
{{- define "tipsv2.adapterStoreVolume" -}}
- name: adapters
{{- if eq .Values.adapterStore.type "hostPath" }}
  hostPath:
    path: {{ .Values.adapterStore.hostPath.path }}
    type: DirectoryOrCreate
{{- else }}
  persistentVolumeClaim:
    claimName: {{ include "tipsv2.adapterStoreClaim" . }}
{{- end }}
{{- end -}}

{{/*
An init container copying from the object store with rclone:
(dict "root" $ "from" <path in the store> "to" <local path> "volume" <volume> "mountPath" <its mount> "verb" copy|copyto)
*/}}
{{- define "tipsv2.rcloneCopy" -}}
{{- $store := .root.Values.modelStore.objectStorage -}}
- name: fetch-{{ .volume }}
  image: {{ include "tipsv2.image" (dict "image" $store.image "root" .root) | quote }}
  imagePullPolicy: {{ $store.image.pullPolicy }}
  args: [{{ .verb | quote }}, "--checksum", "--transfers=8", {{ printf "%s/%s" (trimSuffix "/" $store.uri) .from | quote }}, {{ .to | quote }}]
  {{- with $store.credentialsSecret }}
  envFrom:
    - secretRef:
        name: {{ . }}
  {{- end }}
  env:
    - {name: RCLONE_CONFIG, value: /tmp/rclone.conf}
  securityContext:
    {{- include "tipsv2.restrictedContainerSecurityContext" .root | nindent 4 }}
    runAsNonRoot: true
  resources:
    requests: {cpu: 100m, memory: 128Mi}
    limits: {memory: 512Mi}
  volumeMounts:
    - {name: {{ .volume }}, mountPath: {{ .mountPath | quote }}}
    - {name: rclone-tmp, mountPath: /tmp}
{{- end -}}
