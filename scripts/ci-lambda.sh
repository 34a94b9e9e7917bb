#!/usr/bin/env bash
# Lambda packaging checks for CI: the static musl watchdogs (scripts/build-watchdog.sh, each
# checked by `file` to be statically linked), `sam build` of the deploy artefact (SAM's
# rust-cargolambda build method runs cargo lambda build --release; checked by `file`),
# cfn-lint (pinned 1.51.0) on both templates and `sam validate --lint` on template.yaml.
# Installs cargo-lambda (which brings zig), cfn-lint 1.51.0 and the SAM CLI into venvs when
# they are not on PATH.
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
echo "== sam build (BuildMethod rust-cargolambda: cargo lambda build --release for $arch)"
start=$(date +%s)
# samconfig.toml turns on the beta feature the rust-cargolambda build method needs.
# --no-cached (also samconfig.toml's default): SAM's cache would checksum all of target/.
AWS_REGION="${AWS_REGION:-us-east-1}" "$sam" build --no-cached --parameter-overrides "Architecture=$arch"
end=$(date +%s)
artefact=.aws-sam/build/ScalerFunction/bootstrap
test -x "$artefact" || { echo "sam build left no $artefact" >&2; exit 1; }
want=aarch64; [ "$arch" = x86_64 ] && want=x86-64
# (Not `tee /dev/stderr`: with stderr redirected to a file, reopening it truncates the log.)
description=$(file "$artefact")
echo "$description"
grep -q "ELF 64-bit.*$want" <<<"$description" || { echo "$artefact is not an ELF for $arch" >&2; exit 1; }
# The zip Lambda receives (what `sam deploy` uploads), for its size.
zip=target/lambda/forge-scaler/bootstrap.zip
mkdir -p "$(dirname "$zip")"
python3 -c 'import sys, zipfile; z = zipfile.ZipFile(sys.argv[2], "w", zipfile.ZIP_DEFLATED); z.write(sys.argv[1], "bootstrap"); z.close()' "$artefact" "$zip"
echo "sam build for $arch took $((end - start)) s: $(stat -c %s "$artefact") bytes, $(stat -c %s "$zip") bytes zipped"

# The watchdogs: one static musl build per instance architecture (WATCHDOG_ARCHES to narrow).
# shellcheck disable=SC2086
./scripts/build-watchdog.sh ${WATCHDOG_ARCHES:-x86_64 arm64}
