#!/usr/bin/env bash
# Shadows a candidate module on every kubernetai replica, waits while they compare it with the
# running module on live queries, and promotes it everywhere only when no replica saw a
# difference; otherwise ends every shadow and leaves the running module in place.
#
#   TOKEN=$(kubectl -n kube-system get secret kubernetai-admin-token -o jsonpath='{.data.token}' | base64 -d) \
#     bash deploy/fleet/rollout.sh CANDIDATE.wasm [SECONDS]
#
# CANDIDATE.wasm.minisig is sent beside it when it exists (required when the replicas run with
# -module.pubkey). Needs kubectl (pods/portforward in kube-system), curl and base64.
set -euo pipefail
candidate=${1:?usage: rollout.sh CANDIDATE.wasm [SECONDS]}
watch=${2:-300}
namespace=${NAMESPACE:-kube-system}
selector=${SELECTOR:-k8s-app=kube-dns}
: "${TOKEN:?TOKEN must hold the admin token}"
signature=()
if [ -f "$candidate.minisig" ]; then
    signature=(-H "Kubernetai-Minisig: $(base64 -w0 "$candidate.minisig")")
fi
pods=$(kubectl -n "$namespace" get pods -l "$selector" -o jsonpath='{.items[*].metadata.name}')
port=19155
forwards=()
trap 'kill "${forwards[@]}" 2>/dev/null || true' EXIT
declare -A local_port
for pod in $pods; do
    kubectl -n "$namespace" port-forward "pod/$pod" "$port:9155" >/dev/null &
    forwards+=($!)
    local_port[$pod]=$port
    port=$((port + 1))
done
admin() { # POD METHOD PATH [curl args…]
    local pod=$1 method=$2 path=$3
    shift 3
    curl -sS --fail-with-body --retry 5 --retry-connrefused -X "$method" \
        -H "Authorization: Bearer $TOKEN" "$@" "http://127.0.0.1:${local_port[$pod]}$path"
}
for pod in $pods; do
    echo "$pod: $(admin "$pod" POST /module/shadow --data-binary "@$candidate" "${signature[@]}")"
done
sleep "$watch"
differing=0
for pod in $pods; do
    report=$(admin "$pod" GET /module/shadow)
    echo "$pod: $report"
    if ! grep -q '"state":"shadowing"' <<<"$report" || ! grep -q '"differing_queries":0[,}]' <<<"$report"; then
        differing=1
    fi
done
if [ "$differing" -ne 0 ]; then
    for pod in $pods; do admin "$pod" DELETE /module/shadow >/dev/null || true; done
    echo "a replica saw a difference or a failure: every shadow ended, nothing promoted" >&2
    exit 1
fi
for pod in $pods; do
    echo "$pod: $(admin "$pod" POST /module/promote)"
done
