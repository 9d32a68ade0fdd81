#!/usr/bin/env bash
# Sluice end to end on a real cluster: kind + helm + the example apps, asserting through real
# Services what `npm run demo` shows on one machine. See test/kind/README.md.
#
#   test/kind/e2e.sh                  # create a cluster, run, delete the cluster
#   KEEP_CLUSTER=1 test/kind/e2e.sh   # leave the cluster up afterwards (kubectl --context kind-sluice-e2e)
#
# Environment: CLUSTER_NAME (sluice-e2e), KEEP_CLUSTER (0), KIND_NODE_IMAGE (kind's default),
# SKIP_BUILD=1 (reuse the images already built). An existing cluster of that name is reused and
# never deleted by this script.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
HERE="$ROOT/test/kind"
CLUSTER=${CLUSTER_NAME:-sluice-e2e}
KEEP_CLUSTER=${KEEP_CLUSTER:-0}
CONTEXT="kind-$CLUSTER"
RELEASE_NS=sluice-system
NS=shop
CLIENT_NS=sluice-e2e
# The tags test/kind/values.yaml and the example manifests expect (checked in CI by e2e-script.test.ts).
SIDECAR_IMAGE=sluice-proxy:dev
OPERATOR_IMAGE=sluice-operator:dev
EXAMPLES_IMAGE=sluice-examples:dev
REDIS_IMAGE=$(sed -n 's/^ *image: *\(redis:[^ ]*\) *$/\1/p' "$ROOT/examples/k8s/redis.yaml" | head -n 1)

CREATED_CLUSTER=0
PASSED=0
FAILED=()

log() { printf '\n==> %s\n' "$*"; }
die() {
  printf 'e2e: %s\n' "$*" >&2
  exit 1
}
k() { kubectl --context "$CONTEXT" "$@"; }

# ---------------------------------------------------------------------------------------------
# Prerequisites

require() {
  command -v "$1" >/dev/null 2>&1 || die "$1 is not on PATH. $2"
}

check_prerequisites() {
  require docker 'Install Docker: https://docs.docker.com/engine/install/'
  require kind 'Install kind >= 0.22 (Kubernetes >= 1.29 node images): https://kind.sigs.k8s.io/docs/user/quick-start/#installation'
  require kubectl 'Install kubectl: https://kubernetes.io/docs/tasks/tools/'
  require helm 'Install helm 3: https://helm.sh/docs/intro/install/'
  docker info >/dev/null 2>&1 || die 'docker cannot reach a Docker engine (is the daemon running, and may this user use it?)'
  local helm_version
  helm_version=$(helm version --template '{{.Version}}' 2>/dev/null || true)
  [[ $helm_version == v3.* ]] || die "helm 3 is required, found '${helm_version:-unknown}'"
  [[ -n $REDIS_IMAGE ]] || die "no redis image found in examples/k8s/redis.yaml"
}

# ---------------------------------------------------------------------------------------------
# Cleanup

diagnostics() {
  log 'diagnostics'
  k get pods -A -o wide || true
  k get rlp,cbp,tq,le -n "$NS" -o wide || true
  k get events -n "$NS" --sort-by=.lastTimestamp 2>/dev/null | tail -n 30 || true
  k logs -n "$RELEASE_NS" -l app.kubernetes.io/name=sluice --all-containers --tail=50 --prefix || true
  k logs -n "$NS" -l app.kubernetes.io/part-of=sluice-examples -c sluice-proxy --tail=20 --prefix || true
}

cleanup() {
  local rc=$?
  if [[ $rc -ne 0 ]]; then diagnostics; fi
  if [[ $CREATED_CLUSTER -eq 1 && $KEEP_CLUSTER != 1 ]]; then
    log "deleting cluster $CLUSTER (KEEP_CLUSTER=1 keeps it)"
    kind delete cluster --name "$CLUSTER" || true
  elif kind get clusters 2>/dev/null | grep -qx "$CLUSTER"; then
    log "cluster $CLUSTER left running: kubectl --context $CONTEXT get pods -A; kind delete cluster --name $CLUSTER"
  fi
  exit "$rc"
}

# ---------------------------------------------------------------------------------------------
# Helpers for checks

# retry SECONDS INTERVAL COMMAND...: runs COMMAND until it succeeds or SECONDS have passed.
retry() {
  local timeout=$1 interval=$2
  shift 2
  local deadline=$((SECONDS + timeout))
  until "$@"; do
    if ((SECONDS >= deadline)); then
      echo "timed out after ${timeout}s: $*" >&2
      return 1
    fi
    sleep "$interval"
  done
}

# check NAME FUNCTION [ARGS...]: runs one assertion in a subshell with errexit on, records the
# result and goes on, so one run reports every behaviour that fails, not only the first.
check() {
  local name=$1
  shift
  log "check: $name"
  local rc=0
  set +e
  (
    set -e
    "$@"
  )
  rc=$?
  set -e
  if [[ $rc -eq 0 ]]; then
    PASSED=$((PASSED + 1))
    echo "PASS $name"
  else
    FAILED+=("$name")
    echo "FAIL $name" >&2
  fi
}

# run_check SCRIPT ARGS...: a TypeScript check from test/kind/checks/, fed on stdin to Node 24 in
# the client pod (the examples image), which calls the apps through their Services.
run_check() {
  local script=$1
  shift
  k exec -i -n "$CLIENT_NS" client -- node --input-type=module-typescript - "$@" <"$HERE/checks/$script"
}

pods_of() { k get pods -n "$NS" -l "app=$1" --field-selector=status.phase=Running -o jsonpath='{range .items[*]}{.metadata.name}{"\n"}{end}'; }
pod_ip() { k get pod -n "$NS" "$1" -o jsonpath='{.status.podIP}'; }
# A sidecar's admin endpoint (port 15000), through the API server's pod proxy.
admin_get() { k get --raw "/api/v1/namespaces/$NS/pods/$1:15000/proxy$2"; }

# ---------------------------------------------------------------------------------------------
# Setup

create_cluster() {
  if kind get clusters 2>/dev/null | grep -qx "$CLUSTER"; then
    log "reusing the existing cluster $CLUSTER"
  else
    log "creating kind cluster $CLUSTER"
    CREATED_CLUSTER=1
    local image_args=()
    if [[ -n ${KIND_NODE_IMAGE:-} ]]; then image_args=(--image "$KIND_NODE_IMAGE"); fi
    kind create cluster --name "$CLUSTER" --config "$HERE/kind-config.yaml" "${image_args[@]}" --wait 180s
  fi
  local version minor
  version=$(k get nodes -o jsonpath='{.items[0].status.nodeInfo.kubeletVersion}')
  minor=$(sed -E 's/^v1\.([0-9]+).*/\1/' <<<"$version")
  [[ $minor =~ ^[0-9]+$ && $minor -ge 29 ]] || die "Kubernetes $version is too old: native sidecars need >= 1.29 (set KIND_NODE_IMAGE=kindest/node:v1.32.2)"
  echo "Kubernetes $version"
}

build_images() {
  if [[ ${SKIP_BUILD:-0} == 1 ]]; then
    log 'SKIP_BUILD=1: using the images already built'
  else
    log 'building images'
    # BuildKit: examples/Dockerfile has its own Dockerfile.dockerignore.
    DOCKER_BUILDKIT=1 docker build -f "$ROOT/sidecar/Dockerfile" -t "$SIDECAR_IMAGE" "$ROOT"
    DOCKER_BUILDKIT=1 docker build -f "$ROOT/operator/Dockerfile" -t "$OPERATOR_IMAGE" "$ROOT"
    DOCKER_BUILDKIT=1 docker build -f "$ROOT/examples/Dockerfile" -t "$EXAMPLES_IMAGE" "$ROOT"
    docker image inspect "$REDIS_IMAGE" >/dev/null 2>&1 || docker pull "$REDIS_IMAGE"
  fi
  log 'loading images into the cluster'
  kind load docker-image --name "$CLUSTER" "$SIDECAR_IMAGE" "$OPERATOR_IMAGE" "$EXAMPLES_IMAGE" "$REDIS_IMAGE"
}

deploy() {
  log 'Redis (a primary and three lock nodes) and the shop namespace'
  k apply -k "$ROOT/examples/k8s"
  for d in redis redis-lock-0 redis-lock-1 redis-lock-2; do
    k rollout status -n redis "deployment/$d" --timeout=180s
  done

  log 'helm install sluice'
  helm --kube-context "$CONTEXT" upgrade --install sluice "$ROOT/charts/sluice" \
    --namespace "$RELEASE_NS" --create-namespace -f "$HERE/values.yaml" --wait --timeout 5m
  # A reused cluster may run older images under the same tags.
  if [[ $CREATED_CLUSTER -eq 0 ]]; then k rollout restart -n "$RELEASE_NS" deployment; fi
  k rollout status -n "$RELEASE_NS" deployment --timeout=180s

  log 'the examples'
  for app in user-service push-hub order-worker; do
    k apply -k "$ROOT/examples/$app/k8s"
  done
  if [[ $CREATED_CLUSTER -eq 0 ]]; then k rollout restart -n "$NS" deployment; fi
  for app in user-service push-hub order-worker order-api; do
    k rollout status -n "$NS" "deployment/$app" --timeout=300s
  done

  log 'the client pod'
  k delete pod -n "$CLIENT_NS" client --ignore-not-found --wait=true >/dev/null 2>&1 || true
  k apply -f "$HERE/client-pod.yaml"
  k wait -n "$CLIENT_NS" pod/client --for=condition=Ready --timeout=180s
}

# ---------------------------------------------------------------------------------------------
# Checks

# The distinct ports of a Service's endpoints.
endpoint_ports() { k get endpointslices -n "$NS" -l "kubernetes.io/service-name=$1" -o jsonpath='{.items[*].ports[*].port}' | tr ' ' '\n' | sort -u | paste -sd' ' -; }

# Every pod of the examples carries the sidecar, and each Service's endpoints are the sidecar's
# ports (15081 gRPC, 15080 HTTP), not the app's: port-name takeover worked.
check_injection() {
  local app line
  for app in user-service push-hub order-worker order-api; do
    [[ -n $(pods_of "$app") ]] || { echo "no running $app pods" >&2; return 1; }
    while read -r line; do
      [[ -z $line ]] && continue
      echo "$line"
      [[ $line == *" injected sluice-proxy" ]] || { echo "not injected: $line" >&2; return 1; }
    done < <(k get pods -n "$NS" -l "app=$app" -o jsonpath='{range .items[*]}{.metadata.name}{" "}{.metadata.labels.sluice\.dev/proxy}{" "}{.spec.initContainers[*].name}{"\n"}{end}')
  done
  local ports
  ports=$(endpoint_ports user-service)
  echo "user-service endpoints: port $ports"
  [[ $ports == 15081 ]] || { echo "user-service endpoints should be the sidecar's gRPC port 15081, got '$ports'" >&2; return 1; }
  ports=$(endpoint_ports push-hub)
  echo "push-hub endpoints: port $ports"
  [[ $ports == 15080 ]] || { echo "push-hub endpoints should be the sidecar's HTTP port 15080, got '$ports'" >&2; return 1; }
}

# policy_programmed RESOURCE NAME PODS: Accepted=True, Programmed=True, targets PODS/PODS.
policy_programmed() {
  local got
  got=$(k get "$1" "$2" -n "$NS" -o jsonpath='{.status.conditions[?(@.type=="Accepted")].status} {.status.conditions[?(@.type=="Programmed")].status} {.status.targets.selected}/{.status.targets.programmed}')
  echo "$1/$2: Accepted Programmed targets = $got"
  [[ $got == "True True $3/$3" ]]
}

check_policies_programmed() {
  local hub_pods user_pods worker_pods
  user_pods=$(k get deployment user-service -n "$NS" -o jsonpath='{.spec.replicas}')
  hub_pods=$(k get deployment push-hub -n "$NS" -o jsonpath='{.spec.replicas}')
  worker_pods=$(k get deployment order-worker -n "$NS" -o jsonpath='{.spec.replicas}')
  retry 90 2 policy_programmed rlp user-api "$user_pods"
  retry 30 2 policy_programmed rlp push-hub "$hub_pods"
  retry 30 2 policy_programmed cbp user-api "$user_pods"
  retry 30 2 policy_programmed tq orders "$worker_pods"
  retry 30 2 policy_programmed le push-broadcaster "$hub_pods"
  k get rlp,cbp,tq,le -n "$NS" -o wide
}

# 6000 GetUser calls through the Service: the Global limit (5000 per sliding minute, shared in
# Redis) answers the rest RESOURCE_EXHAUSTED. The bound allows the documented lease over-admission
# (2 sidecars × 1.5 × 0.5 % of 5000 = 75).
check_grpc_rate_limit() {
  run_check grpc-calls.ts user-service.$NS.svc.cluster.local:50051 GetUser 6000 50 \
    'RESOURCE_EXHAUSTED>=900' 'OK<=5075' 'only:OK,RESOURCE_EXHAUSTED'
}

set_fail_code() {
  local pod
  for pod in $(pods_of user-service); do
    # UserAdmin, straight to the app inside its pod: not guarded (or counted) by the breaker.
    k exec -n "$NS" "$pod" -c app -- node examples/user-service/client.ts --target 127.0.0.1:50051 --set-fail-code "$1"
  done
}

circuit_state() { admin_get "$1" /metrics | sed -n 's/^sluice_circuit_state{rule="[^"]*user-api\/backend"} \([0-9]\)$/\1/p'; }

circuit_closed_on() {
  local ip=$1 pod=$2
  run_check grpc-calls.ts "$ip:15081" ListUsers 5 1 'OK=5' && [[ $(circuit_state "$pod") == 0 ]]
}

# The app fails every call with UNAVAILABLE: after 5 in a row the sidecar opens the circuit and
# answers UNAVAILABLE itself (sluice_circuit_state 1). Healed, the circuit closes again after the
# 30 s open duration and 3 successful half-open probes.
check_circuit_breaker() {
  trap 'set_fail_code 0 >/dev/null || true' EXIT
  set_fail_code 14
  run_check grpc-calls.ts user-service.$NS.svc.cluster.local:50051 ListUsers 100 1 'UNAVAILABLE=100'
  local pod tripped=()
  for pod in $(pods_of user-service); do
    local state
    state=$(circuit_state "$pod")
    echo "$pod: sluice_circuit_state ${state:-absent}"
    if [[ $state == 1 ]]; then tripped+=("$pod"); fi
  done
  [[ ${#tripped[@]} -ge 1 ]] || { echo 'no user-service sidecar opened its circuit' >&2; return 1; }
  set_fail_code 0
  for pod in "${tripped[@]}"; do
    echo "waiting for $pod's circuit to close (open 30 s, then 3 probes)"
    retry 120 5 circuit_closed_on "$(pod_ip "$pod")" "$pod"
  done
}

check_websocket() {
  run_check websocket.ts "ws://push-hub.$NS.svc.cluster.local/ws"
}

leader_pods() { k get pods -n "$NS" -l app=push-hub,sluice.dev/leader=push-broadcaster --field-selector=status.phase=Running -o jsonpath='{.items[*].metadata.name}'; }

# one_leader [NOT_THIS_POD] [ABOVE_TOKEN]: exactly one pod carries the leader label, it is the
# LeaderElection's status.holder, its sidecar says it leads, and the token is above ABOVE_TOKEN.
one_leader() {
  local not=${1:-} above=${2:-0} leaders holder token
  leaders=$(leader_pods)
  [[ -n $leaders && $leaders != *" "* && $leaders != "$not" ]] || { echo "leader pods: '${leaders}'"; return 1; }
  holder=$(k get le push-broadcaster -n "$NS" -o jsonpath='{.status.holder}')
  token=$(k get le push-broadcaster -n "$NS" -o jsonpath='{.status.fencingToken}')
  echo "leader pod $leaders; status.holder '$holder', status.fencingToken '$token'"
  [[ $holder == "$leaders" && $token =~ ^[0-9]+$ && $token -gt $above ]] || return 1
  admin_get "$leaders" /v1/leadership | grep -q '"leader":true' || { echo "the sidecar of $leaders does not say it leads"; return 1; }
}

# The operator labels the leader pod sluice.dev/leader=push-broadcaster and reports it in the
# LeaderElection's status; deleting that pod moves the label to another pod, with a higher
# fencing token.
check_leader_failover() {
  retry 60 2 one_leader
  local first token
  first=$(leader_pods)
  token=$(k get le push-broadcaster -n "$NS" -o jsonpath='{.status.fencingToken}')
  echo "deleting the leader $first (token $token)"
  k delete pod -n "$NS" "$first" --wait=false
  retry 90 2 one_leader "$first" "$token"
  k get le push-broadcaster -n "$NS" -o wide
  k rollout status -n "$NS" deployment/push-hub --timeout=180s
}

taskqueue_status() {
  local got dead consumers lag
  got=$(k get tq orders -n "$NS" -o jsonpath='{.status.deadLetters} {.status.consumers} {.status.lag}')
  echo "TaskQueue orders status: deadLetters consumers lag = $got"
  read -r dead consumers lag <<<"$got"
  [[ ${dead:-} =~ ^[0-9]+$ && $dead -ge $1 && ${consumers:-0} -ge 1 && ${lag:-} == 0 ]]
}

# Orders posted through the producer pod (order-api, not selected by the TaskQueue: its order API
# posts to its own sidecar's local API): the valid ones processed by the workers (some after a
# retry), the invalid ones dead-lettered; then the TaskQueue's status reports the dead letters.
check_orders() {
  local workers ips pod
  workers=$(pods_of order-worker)
  [[ -n $workers ]] || { echo 'no running order-worker pod' >&2; return 1; }
  pod=$(pods_of order-api | head -n 1)
  [[ -n $pod ]] || { echo 'no running order-api pod' >&2; return 1; }
  ips=$(for p in $workers; do pod_ip "$p"; done | paste -sd, -)
  k exec -i -n "$NS" "$pod" -c app -- node --input-type=module-typescript - 40 2 "e2e-$(date +%s)" "$ips" <"$HERE/checks/orders.ts"
  retry 60 3 taskqueue_status 2
}

# ---------------------------------------------------------------------------------------------

main() {
  check_prerequisites
  trap cleanup EXIT
  create_cluster
  build_images
  deploy

  check 'every example pod is injected; Services reach the sidecar by port name' check_injection
  check 'policies Accepted and Programmed on every selected pod (targets n/n)' check_policies_programmed
  check 'GetUser past the Global limit: RESOURCE_EXHAUSTED' check_grpc_rate_limit
  check 'circuit opens on UNAVAILABLE and closes after recovery' check_circuit_breaker
  check 'WebSocket through the push-hub Service: fan-out, leader feed, 1008 on abuse' check_websocket
  check 'leader label and fencing token move to another pod when the leader dies' check_leader_failover
  check 'orders processed, retried and dead-lettered; TaskQueue status reports them' check_orders

  log "summary: ${PASSED} passed, ${#FAILED[@]} failed"
  if ((${#FAILED[@]} > 0)); then
    printf '  FAILED: %s\n' "${FAILED[@]}" >&2
    exit 1
  fi
}

main "$@"
