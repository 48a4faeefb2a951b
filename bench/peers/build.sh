#!/usr/bin/env bash
# bench/peers/build.sh [--force] [controller-runtime|kube-rs|kopf ...]
#
# Builds the peer implementations of `crdkit aws-auth run`, one at a time
# (at most 2 compile jobs: the machine has 2 cores), into build/peers/:
#   build/peers/bin/controller-runtime   go build (GOCACHE build/peers/go-cache)
#   build/peers/bin/kube-rs              cargo build --release --locked
#                                        (target dir build/peers/kube-rs-target)
#   build/peers/kopf-venv                venv with requirements.txt; run with kopf/run.sh
# A peer whose output is newer than all its sources is skipped (--force
# rebuilds). Progress goes to stderr; one line per peer on stdout:
#   PEER: fetch Ns, build Ns      or      PEER: up to date
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
top=$(cd "$here/../.." && pwd)
out="$top/build/peers"
force=0
peers=()
for a in "$@"; do
  case "$a" in
    --force) force=1 ;;
    controller-runtime|kube-rs|kopf) peers+=("$a") ;;
    -h|--help) sed -n '2,12p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "build.sh: unknown argument: $a" >&2; exit 2 ;;
  esac
done
[ ${#peers[@]} -gt 0 ] || peers=(controller-runtime kube-rs kopf)
mkdir -p "$out/bin"

say() { echo "build.sh: $*" >&2; }
now() { date +%s.%N; }
secs() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.1f", b - a }'; }

# up_to_date OUTPUT SOURCE...: OUTPUT exists and no source file is newer.
up_to_date() {
  local target=$1; shift
  [ "$force" = 0 ] && [ -e "$target" ] || return 1
  [ -z "$(find "$@" -type f -newer "$target" -print -quit 2>/dev/null)" ]
}

build_controller_runtime() {
  local src="$here/controller-runtime" bin="$out/bin/controller-runtime"
  if up_to_date "$bin" "$src"; then echo "controller-runtime: up to date"; return; fi
  command -v go >/dev/null || { say "go is not installed"; return 1; }
  local t0 t1 t2
  t0=$(now)
  say "controller-runtime: go mod download"
  (cd "$src" && go mod download) >&2
  t1=$(now)
  say "controller-runtime: go build -p 2 (cold: a few minutes)"
  (cd "$src" && GOCACHE="$out/go-cache" GOFLAGS=-buildvcs=false \
     go build -p 2 -trimpath -o "$bin.tmp" .) >&2
  mv "$bin.tmp" "$bin"
  t2=$(now)
  echo "controller-runtime: fetch $(secs "$t0" "$t1")s, build $(secs "$t1" "$t2")s"
}

build_kube_rs() {
  local src="$here/kube-rs" bin="$out/bin/kube-rs"
  if up_to_date "$bin" "$src/src" "$src/Cargo.toml" "$src/Cargo.lock"; then
    echo "kube-rs: up to date"; return
  fi
  command -v cargo >/dev/null || { say "cargo is not installed"; return 1; }
  local t0 t1 t2
  export CARGO_TARGET_DIR="$out/kube-rs-target"
  t0=$(now)
  say "kube-rs: cargo fetch"
  (cd "$src" && cargo fetch --locked) >&2
  t1=$(now)
  say "kube-rs: cargo build --release -j 2 (cold: about 10 minutes)"
  (cd "$src" && cargo build --release --locked --offline -j 2) >&2
  cp "$CARGO_TARGET_DIR/release/aws-auth-peer" "$bin.tmp"
  mv "$bin.tmp" "$bin"
  t2=$(now)
  echo "kube-rs: fetch $(secs "$t0" "$t1")s, build $(secs "$t1" "$t2")s"
}

build_kopf() {
  local req="$here/kopf/requirements.txt" venv="$out/kopf-venv"
  local stamp="$venv/.requirements.sha256" sum
  sum=$(sha256sum "$req" | cut -d' ' -f1)
  if [ "$force" = 0 ] && [ -x "$venv/bin/kopf" ] && [ "$(cat "$stamp" 2>/dev/null)" = "$sum" ]; then
    echo "kopf: up to date"; return
  fi
  command -v python3 >/dev/null || { say "python3 is not installed"; return 1; }
  local t0 t1
  t0=$(now)
  say "kopf: python3 -m venv + pip install -r requirements.txt"
  rm -rf "$venv"
  python3 -m venv "$venv"
  "$venv/bin/pip" install --quiet --disable-pip-version-check -r "$req" >&2
  echo "$sum" > "$stamp"
  t1=$(now)
  echo "kopf: install (fetch included) $(secs "$t0" "$t1")s"
}

for p in "${peers[@]}"; do
  case "$p" in
    controller-runtime) build_controller_runtime ;;
    kube-rs) build_kube_rs ;;
    kopf) build_kopf ;;
  esac
done
