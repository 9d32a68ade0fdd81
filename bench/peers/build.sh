#!/usr/bin/env bash
# Builds the Go and Rust peers that the benchmarks compare Sluice with, from the module and crate
# versions pinned in bench/peers/<name>/ (go.mod + go.sum, or Cargo.toml + Cargo.lock). Only the
# small harness programs live in the repository; the peers' code comes from the Go module proxy
# and crates.io at build time. Binaries land in a cache named by peer version:
#
#   ~/.cache/sluice/peers/<name>-<version>/<name>
#
# and are rebuilt only when missing or when the harness's own files changed (a stamp of their
# sha256 sits beside the binary). limitador 0.14.0 is built from its published source with two
# cfg gates widened so that its Redis storage compiles without RocksDB (see build_one; bench/README.md).
#
#   bench/peers/build.sh [name...]        build what is missing (default: all), print each binary path
#   bench/peers/build.sh --print name     print the binary path only (no build; exit 1 if not built)
#   bench/peers/build.sh --versions       print "<name> <version>" for every peer
#
# SLUICE_PEERS_CACHE overrides the cache. Go 1.26 or newer is needed on the PATH; the Rust peer
# needs cargo (rustup's, 1.80 or newer: Debian bookworm's rustc 1.63 is too old for limitador);
# with LIMITADOR_WITH_ROCKSDB=1 also a C++ compiler and libclang (Debian: libclang-dev).
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
cache=${SLUICE_PEERS_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/sluice/peers}
ALL=(goproxy redsync asynq gubernator grpcgo limitador)

log() { printf '[peers build %s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }
die() { log "$*"; exit 1; }

# The required version of module $1 in go.mod $2 (in a require block or on a one-line require).
module_version() {
  awk -v m="$1" '$1 == "require" && $2 == m { print $3; exit } $1 == m { print $2; exit }' "$2"
}

# The version that names a peer's cache folder: the pinned module/crate it wraps.
version_of() {
  local dir="$here/$1"
  case "$1" in
    goproxy) go env GOVERSION ;; # the peer is the standard library's httputil.ReverseProxy
    redsync) module_version github.com/go-redsync/redsync/v4 "$dir/go.mod" ;;
    asynq) module_version github.com/hibiken/asynq "$dir/go.mod" ;;
    gubernator) module_version github.com/gubernator-io/gubernator/v2 "$dir/go.mod" ;;
    grpcgo) module_version google.golang.org/grpc "$dir/go.mod" ;;
    limitador) sed -n 's/^limitador = { version = "=\([^"]*\)".*/\1/p' "$dir/Cargo.toml" ;;
    *) die "unknown peer '$1' (known: ${ALL[*]})" ;;
  esac
}

stamp_of() {
  (cd "$here/$1" && find . -path ./target -prune -o -type f -print | LC_ALL=C sort | xargs sha256sum | sha256sum | cut -c1-16)
}

find_cargo() {
  if command -v cargo >/dev/null 2>&1; then command -v cargo; return; fi
  if [ -x "$HOME/.cargo/bin/cargo" ]; then echo "$HOME/.cargo/bin/cargo"; return; fi
  die "cargo not found: the limitador peer needs a Rust toolchain (1.80+). Install it with rustup, or skip this peer (the benchmarks then say it was not built)."
}

build_one() {
  local name=$1 version out bin stamp
  version=$(version_of "$name")
  [ -n "$version" ] || die "$name: no pinned version found in bench/peers/$name"
  out="$cache/$name-$version"
  bin="$out/$name"
  stamp=$(stamp_of "$name")
  if [ -x "$bin" ] && [ "$(cat "$out/harness.sha" 2>/dev/null)" = "$stamp" ]; then echo "$bin"; return; fi
  mkdir -p "$out"
  log "building $name $version into $out"
  if [ "$name" = limitador ]; then
    local cargo
    cargo=$(find_cargo)
    if [ "${LIMITADOR_WITH_ROCKSDB:-}" = 1 ]; then
      # The manifest as committed plus disk_storage: RocksDB is compiled (C++, needs libclang).
      compgen -G '/usr/lib/llvm-*/lib/libclang.so*' >/dev/null || compgen -G '/usr/lib/*/libclang*.so*' >/dev/null || [ -n "${LIBCLANG_PATH:-}" ] \
        || die "$name: libclang not found (RocksDB's bindings need it): apt-get install libclang-dev, or set LIBCLANG_PATH"
      rm -rf "$out/harness" && cp -r "$here/$name" "$out/harness"
      sed -i 's/features = \["redis_storage"\]/features = ["redis_storage", "disk_storage"]/' "$out/harness/Cargo.toml"
    else
      # The published crate, unpacked from cargo's download of it, with the two cfgs that keep its
      # Redis storage from compiling without disk_storage widened to redis_storage.
      # Nothing else changes; the harness builds against it through a [patch] in a copy of its manifest.
      (cd "$here/$name" && "$cargo" fetch --locked >&2) || die "$name: cargo fetch failed"
      local crate
      crate=$(ls "${CARGO_HOME:-$HOME/.cargo}"/registry/cache/*/"limitador-$version.crate" 2>/dev/null | head -1)
      [ -n "$crate" ] || die "$name: limitador-$version.crate not in cargo's cache after cargo fetch"
      rm -rf "$out/crate" "$out/harness" && mkdir -p "$out/crate"
      tar -xzf "$crate" -C "$out/crate"
      local src="$out/crate/limitador-$version/src" f
      for f in storage/keys.rs counter.rs; do # `mod bin` and the `Counter::variables_for_key` it calls
        grep -q '^ *#\[cfg(feature = "disk_storage")\]$' "$src/$f" || die "$name: $src/$f no longer has the cfg this script widens; try LIMITADOR_WITH_ROCKSDB=1"
        sed -i 's/^\( *\)#\[cfg(feature = "disk_storage")\]$/\1#[cfg(any(feature = "disk_storage", feature = "redis_storage"))]/' "$src/$f"
      done
      cp -r "$here/$name" "$out/harness"
      printf '\n[patch.crates-io]\nlimitador = { path = "%s" }\n' "$out/crate/limitador-$version" >> "$out/harness/Cargo.toml"
    fi
    # Rust builds are heavy on 2 cores: nice it; the target dir lives in the cache, not the repo.
    (cd "$out/harness" && CARGO_TARGET_DIR="$out/target" nice -n 10 "$cargo" build --release -j 2 >&2) \
      || die "$name: cargo build failed (see above)"
    cp "$out/target/release/limitador-peer" "$bin.tmp"
  else
    command -v go >/dev/null 2>&1 || die "go is not on the PATH (Go 1.26 or newer builds the Go peers)"
    # A module that needs a newer Go than the installed one names it in go.mod's toolchain line;
    # the go command fetches that toolchain from the module proxy (GOTOOLCHAIN may be local here).
    local toolchain
    toolchain=$(awk '$1 == "toolchain" { print $2 }' "$here/$name/go.mod")
    (cd "$here/$name" && CGO_ENABLED=0 GOFLAGS=-buildvcs=false GOTOOLCHAIN="${toolchain:-${GOTOOLCHAIN:-auto}}" \
      nice -n 10 go build -trimpath -mod=readonly -o "$bin.tmp" . >&2) \
      || die "$name: go build failed (see above)"
  fi
  mv "$bin.tmp" "$bin"
  echo "$stamp" > "$out/harness.sha"
  echo "$name $version" > "$out/VERSION"
  echo "$bin"
}

case "${1:-}" in
  --print)
    name=${2:?usage: build.sh --print <name>}
    bin="$cache/$name-$(version_of "$name")/$name"
    [ -x "$bin" ] || exit 1
    echo "$bin" ;;
  --versions)
    for n in "${ALL[@]}"; do echo "$n $(version_of "$n")"; done ;;
  *)
    names=("$@")
    [ ${#names[@]} -gt 0 ] || names=("${ALL[@]}")
    for n in "${names[@]}"; do build_one "$n"; done ;;
esac
