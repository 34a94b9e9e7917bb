#!/usr/bin/env bash
# Lambda packaging checks for CI: the static musl watchdogs (scripts/build-watchdog.sh, each
# checked by `file` to be statically linked), the release `cargo lambda build` of the deploy
# artifact, cfn-lint (pinned 1.51.0) on both templates and `sam validate --lint` on template.yaml. Installs cargo-lambda
# (which brings zig), cfn-lint 1.51.0 and the SAM CLI into venvs when they are not on PATH.
#
#   scripts/ci-lambda.sh            # build for arm64 when the aarch64 target is available, else x86_64
#   LAMBDA_ARCH=x86_64 scripts/ci-lambda.sh
set -euo pipefail
cd "$(dirname "$0")/.."

# Two venvs: the SAM CLI pins a newer cfn-lint than the 1.51.0 we lint with.
VENVS="${FORGE_SCALER_VENVS:-${TMPDIR:-/tmp}/forge-scaler-venvs}"
if ! command -v cargo-lambda >/dev/null; then
  echo "== installing cargo-lambda (brings zig) into $VENVS/cargo-lambda"
  python3 -m venv "$VENVS/cargo-lambda" && "$VENVS/cargo-lambda/bin/pip" install -q cargo-lambda
  export PATH="$VENVS/cargo-lambda/bin:$PATH"
fi
cfn_lint=cfn-lint
if [ "$(cfn-lint --version 2>/dev/null | awk '{print $2}')" != "1.51.0" ]; then
  echo "== installing cfn-lint 1.51.0 into $VENVS/cfn-lint"
  python3 -m venv "$VENVS/cfn-lint" && "$VENVS/cfn-lint/bin/pip" install -q 'cfn-lint==1.51.0'
  cfn_lint="$VENVS/cfn-lint/bin/cfn-lint"
fi
sam=sam
if ! command -v sam >/dev/null; then
  echo "== installing aws-sam-cli into $VENVS/sam"
  python3 -m venv "$VENVS/sam" && "$VENVS/sam/bin/pip" install -q aws-sam-cli
  sam="$VENVS/sam/bin/sam"
fi

# cfn-lint 1.51 catches a bad runtime and a malformed rate() that newer releases (bundled with
# the SAM CLI) miss: run the pinned one, then SAM's own lint.
echo "== cfn-lint $("$cfn_lint" --version)"
"$cfn_lint" template.yaml infra/agent-fleet.yaml
echo "== sam validate --lint"
AWS_REGION="${AWS_REGION:-us-east-1}" "$sam" validate --lint

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
python3 -c 'import sys, zipfile; [print(f"  {i.filename}: {i.file_size} bytes") for i in zipfile.ZipFile(sys.argv[1]).infolist()]' "$zip"

# The watchdogs: one static musl build per instance architecture (WATCHDOG_ARCHES to narrow).
# shellcheck disable=SC2086
./scripts/build-watchdog.sh ${WATCHDOG_ARCHES:-x86_64 arm64}
