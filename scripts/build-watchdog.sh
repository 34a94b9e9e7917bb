#!/usr/bin/env bash
# Builds the instance-side watchdog (`forge-scaler agent`, the same binary as the CLI) as a static
# musl executable for each instance architecture, with cargo-lambda's zig as the cross linker:
#
#   scripts/build-watchdog.sh                 # both: dist/forge-scaler-x86_64 and dist/forge-scaler-arm64
#   scripts/build-watchdog.sh arm64           # one architecture (x86_64 | arm64)
#
# Each binary gets dist/forge-scaler-<arch>.sha256 (`sha256sum` format) for the fleet stack's
# WatchdogSha256 parameter. Needs cargo-lambda (`pip install cargo-lambda`, which brings zig)
# and the Rust std of the musl targets (`rustup target add x86_64-unknown-linux-musl
# aarch64-unknown-linux-musl`; this script runs that when a target is missing). Fails, never
# skips, when a target cannot be installed or a result is not statically linked.
set -euo pipefail
cd "$(dirname "$0")/.."

arches=("$@")
[ ${#arches[@]} -gt 0 ] || arches=(x86_64 arm64)

triple_of() {
  case "$1" in
    x86_64) echo x86_64-unknown-linux-musl ;;
    arm64) echo aarch64-unknown-linux-musl ;;
    *) echo "unknown architecture '$1' (x86_64 or arm64)" >&2; return 2 ;;
  esac
}

command -v cargo-lambda >/dev/null || {
  echo "cargo-lambda is not on PATH: pip install cargo-lambda (it brings zig)" >&2; exit 1; }

mkdir -p dist
for arch in "${arches[@]}"; do
  triple=$(triple_of "$arch")
  if ! rustup target list --installed | grep -qx "$triple"; then
    echo "== rustup target add $triple"
    rustup target add "$triple" || {
      echo "cannot install the Rust std for $triple (rustup target add failed); no $arch watchdog" >&2; exit 1; }
  fi
  echo "== cargo lambda build --release --target $triple --bin forge-scaler"
  start=$(date +%s)
  # --lambda-dir keeps this build's copy apart from the Lambda artefact in target/lambda.
  cargo lambda build --release --target "$triple" --bin forge-scaler --lambda-dir "target/watchdog-$arch"
  end=$(date +%s)
  out="dist/forge-scaler-$arch"
  cp "target/watchdog-$arch/forge-scaler/bootstrap" "$out"
  description=$(file -b "$out")
  case "$description" in
    *"statically linked"* | *"static-pie linked"*) ;;
    *) echo "$out is not statically linked: $description" >&2; exit 1 ;;
  esac
  (cd dist && sha256sum "forge-scaler-$arch" > "forge-scaler-$arch.sha256")
  echo "built $out in $((end - start)) s: $(stat -c %s "$out") bytes; $description"
  echo "sha256: $(cut -d' ' -f1 "$out.sha256")"
done
