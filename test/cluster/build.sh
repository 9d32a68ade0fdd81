#!/usr/bin/env bash
# Builds the test control plane from Go modules: kube-apiserver, kube-controller-manager,
# kube-scheduler and kubectl from k8s.io/kubernetes, etcd from go.etcd.io/etcd/server/v3, kwok from
# sigs.k8s.io/kwok and helm from helm.sh/helm/v3. Binaries land in a cache outside the repository,
# named by version, so a second run does nothing. Nothing built here is ever committed.
#
#   test/cluster/build.sh            build what is missing, print the bin directory last
#   test/cluster/build.sh --quiet    the same, silent when everything is built already (npm test)
#   test/cluster/build.sh --print    print the bin directory only (no build)
#
# SLUICE_CLUSTER_CACHE overrides the cache (default ~/.cache/sluice/cluster).
set -euo pipefail

K8S_VERSION=v1.36.3
ETCD_VERSION=v3.6.16
KWOK_VERSION=v0.8.0
HELM_VERSION=v3.22.0

cache=${SLUICE_CLUSTER_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/sluice/cluster}
bin="$cache/bin"
if [ "${1:-}" = "--print" ]; then echo "$bin"; exit 0; fi
quiet=false; [ "${1:-}" = "--quiet" ] && quiet=true
built_any=false
mkdir -p "$bin" "$cache/src"

command -v go >/dev/null 2>&1 || { echo "build.sh: go is not on the PATH (Go 1.26 or newer builds the control plane)" >&2; exit 1; }
export GOFLAGS="${GOFLAGS:--buildvcs=false} -mod=mod"
export CGO_ENABLED=0

log() { printf '[cluster build %s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }

# go build -v names each package as it is compiled: print every 100th, so a cold build shows it moves.
progress() {
  awk -v what="$1" '{ n++; if (n % 100 == 0) { printf "[cluster build] %s: %d packages compiled\n", what, n > "/dev/stderr" } }
                    END { printf "[cluster build] %s: %d packages compiled\n", what, n > "/dev/stderr" }'
}

# k8s.io/kubernetes replaces its staging modules with ./staging/src/..., which a module that
# requires it cannot see: replace each with its published v0.<minor>.<patch> instead, the list read
# from that version's own go.mod.
kube_module() {
  local dir="$cache/src/kubernetes-$K8S_VERSION"
  [ -f "$dir/go.sum" ] && { echo "$dir"; return; }
  mkdir -p "$dir"
  local staging="v0.${K8S_VERSION#v1.}"
  local gomod
  gomod=$(cd "$dir" && go mod download -json "k8s.io/kubernetes@$K8S_VERSION" | sed -n 's/.*"GoMod": "\(.*\)".*/\1/p')
  [ -n "$gomod" ] || { log "could not download k8s.io/kubernetes@$K8S_VERSION"; exit 1; }
  {
    echo "module sluice.test/kubernetes"
    echo
    echo "go 1.26.0"
    echo
    echo "require k8s.io/kubernetes $K8S_VERSION"
    echo
    grep -E '^\s*k8s\.io/[a-z0-9-]+ => \./staging/' "$gomod" | awk -v v="$staging" '{ print "replace " $1 " => " $1 " " v }'
  } > "$dir/go.mod.tmp"
  mv "$dir/go.mod.tmp" "$dir/go.mod"
  # No go mod tidy: with no Go file importing it, tidy would drop the requirement.
  echo 'package tools' > "$dir/tools.go"
  touch "$dir/go.sum"
  echo "$dir"
}

kube_ldflags() {
  local minor=${K8S_VERSION#v1.}; minor=${minor%%.*}
  local date; date=$(date -u +%Y-%m-%dT%H:%M:%SZ)
  local flags=""
  for pkg in k8s.io/component-base/version k8s.io/client-go/pkg/version; do
    flags+=" -X $pkg.gitVersion=$K8S_VERSION -X $pkg.gitMajor=1 -X $pkg.gitMinor=$minor"
    flags+=" -X $pkg.gitTreeState=clean -X $pkg.buildDate=$date -X $pkg.gitCommit=module-$K8S_VERSION"
  done
  echo "-s -w$flags"
}

build() {  # build NAME VERSION DIR PACKAGE [LDFLAGS]
  local name=$1 version=$2 dir=$3 pkg=$4 ldflags=${5:--s -w}
  local out="$bin/$name-$version"
  if [ -x "$out" ]; then ln -sf "$name-$version" "$bin/$name"; return; fi
  built_any=true
  log "building $name $version from $pkg (cold: minutes; see test/cluster/README.md)"
  local start=$SECONDS
  (cd "$dir" && go mod download all >/dev/null 2>&1 || true)
  if ! (cd "$dir" && go build -v -trimpath -ldflags "$ldflags" -o "$out.tmp" "$pkg" 2>&1 | tee "$cache/$name.build.log" | progress "$name"; exit "${PIPESTATUS[0]}"); then
    log "building $name failed; the log is $cache/$name.build.log"
    tail -20 "$cache/$name.build.log" >&2
    exit 1
  fi
  mv "$out.tmp" "$out"
  ln -sf "$name-$version" "$bin/$name"
  log "built $name in $((SECONDS - start)) s"
}

small_module() {  # small_module NAME MODULE VERSION [MAIN_GO]
  local name=$1 module=$2 version=$3 main=${4:-}
  local dir="$cache/src/$name-$version"
  mkdir -p "$dir"
  if [ ! -f "$dir/go.mod" ]; then
    printf 'module sluice.test/%s\n\ngo 1.26.0\n' "$name" > "$dir/go.mod"
    if [ -n "$main" ]; then printf '%s\n' "$main" > "$dir/main.go"; else echo 'package tools' > "$dir/tools.go"; fi
    (cd "$dir" && go get "$module@$version" >>"$cache/$name.get.log" 2>&1) || { log "go get $module@$version failed; see $cache/$name.get.log"; exit 1; }
    if [ -n "$main" ]; then (cd "$dir" && go mod tidy >>"$cache/$name.get.log" 2>&1); fi
  fi
  echo "$dir"
}

total=$SECONDS
kdir=$(kube_module)
kflags=$(kube_ldflags)
for b in kube-apiserver kube-controller-manager kube-scheduler kubectl; do
  build "$b" "$K8S_VERSION" "$kdir" "k8s.io/kubernetes/cmd/$b" "$kflags"
done

etcd_main='// etcd built from its server module: the same entry point as the release binary.
package main

import (
	"os"

	"go.etcd.io/etcd/server/v3/etcdmain"
)

func main() { etcdmain.Main(os.Args) }'
edir=$(small_module etcd go.etcd.io/etcd/server/v3 "$ETCD_VERSION" "$etcd_main")
build etcd "$ETCD_VERSION" "$edir" . "-s -w -X go.etcd.io/etcd/api/v3/version.GitSHA=module"

wdir=$(small_module kwok sigs.k8s.io/kwok "$KWOK_VERSION")
build kwok "$KWOK_VERSION" "$wdir" sigs.k8s.io/kwok/cmd/kwok "-s -w -X sigs.k8s.io/kwok/pkg/consts.Version=$KWOK_VERSION"
# kwok does nothing without stages: take the "fast" set its module ships (nodes Ready with Lease
# heartbeats; pods Running and Ready at once; deleted pods gone at once).
stages="$bin/kwok-stages-$KWOK_VERSION.yaml"
if [ ! -s "$stages" ]; then
  kdir=$(cd "$wdir" && go list -m -f '{{.Dir}}' sigs.k8s.io/kwok)
  for f in node/fast/node-initialize.yaml node/heartbeat-with-lease/node-heartbeat-with-lease.yaml \
           pod/fast/pod-ready.yaml pod/fast/pod-complete.yaml pod/fast/pod-delete.yaml; do
    echo '---'; cat "$kdir/kustomize/stage/$f"
  done > "$stages.tmp"
  mv "$stages.tmp" "$stages"
fi
ln -sf "kwok-stages-$KWOK_VERSION.yaml" "$bin/kwok-stages.yaml"

hdir=$(small_module helm helm.sh/helm/v3 "$HELM_VERSION")
# As helm's own Makefile does: the Kubernetes version helm assumes without a cluster (`helm
# template`, `helm lint`) is the one of the client-go it was built with, not its 1.20 fallback.
client_go=$(cd "$hdir" && go list -m -f '{{.Version}}' k8s.io/client-go)
k8s_minor=$(echo "$client_go" | cut -d. -f2)
hflags="-s -w -X helm.sh/helm/v3/internal/version.version=$HELM_VERSION"
for pkg in helm.sh/helm/v3/pkg/lint/rules helm.sh/helm/v3/pkg/chartutil; do
  hflags+=" -X $pkg.k8sVersionMajor=1 -X $pkg.k8sVersionMinor=$k8s_minor"
done
build helm "$HELM_VERSION" "$hdir" helm.sh/helm/v3/cmd/helm "$hflags"

if $quiet && ! $built_any; then exit 0; fi
log "control plane binaries ready in $bin ($((SECONDS - total)) s this run)"
$quiet || echo "$bin"
