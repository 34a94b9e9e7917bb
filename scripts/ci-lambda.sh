#!/usr/bin/env bash
# Lambda packaging checks for CI: the release `cargo lambda build` of the deploy artifact,
# cfn-lint (pinned) and `sam validate --lint` on template.yaml. Installs cargo-lambda (which
# brings zig), cfn-lint and the SAM CLI into a venv when they are not on PATH.
#
#   scripts/ci-lambda.sh            # build for arm64 when the aarch64 target is available, else x86_64
#   LAMBDA_ARCH=x86_64 scripts/ci-lambda.sh
set -euo pipefail
cd "$(dirname "$0")/.."

VENV="${FORGE_SCALER_VENV:-${TMPDIR:-/tmp}/forge-scaler-lambda-venv}"
need_venv=false
command -v cargo-lambda >/dev/null || need_venv=true
command -v sam >/dev/null || need_venv=true
if [ "$(cfn-lint --version 2>/dev/null | awk '{print $2}')" != "1.51.0" ]; then need_venv=true; fi
if $need_venv; then
  echo "== installing cargo-lambda, cfn-lint 1.51.0 and aws-sam-cli into $VENV"
  python3 -m venv "$VENV"
  "$VENV/bin/pip" install -q cargo-lambda 'cfn-lint==1.51.0' aws-sam-cli
  export PATH="$VENV/bin:$PATH"
fi

# cfn-lint 1.51 catches a bad runtime and a malformed rate() that newer releases (bundled with
# the SAM CLI) miss: run the pinned one from PATH first, then SAM's own lint.
echo "== cfn-lint $(cfn-lint --version)"
cfn-lint template.yaml
echo "== sam validate --lint"
AWS_REGION="${AWS_REGION:-us-east-1}" sam validate --lint

arch="${LAMBDA_ARCH:-}"
if [ -z "$arch" ]; then
  if rustup target list --installed 2>/dev/null | grep -q '^aarch64-unknown-linux-gnu$' \
     || rustup target add aarch64-unknown-linux-gnu >/dev/null 2>&1; then
    arch=arm64
  else
    arch=x86_64
  fi
fi
flag="--x86-64"; [ "$arch" = arm64 ] && flag="--arm64"
echo "== cargo lambda build --release $flag (architecture: $arch)"
start=$(date +%s)
cargo lambda build --release "$flag" --bin forge-scaler --output-format zip
end=$(date +%s)
zip=target/lambda/forge-scaler/bootstrap.zip
echo "built $zip for $arch in $((end - start)) s: $(stat -c %s "$zip") bytes zipped"
unzip -l "$zip"
