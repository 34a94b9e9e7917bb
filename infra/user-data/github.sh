#!/bin/bash
# forge-scaler agent fleet user-data: github
# GitHub Actions runner registered --ephemeral: it runs one job and exits, and the instance leaves.
# Until then a Runner.Worker process means a job is running.
# @include common.sh

install -d -o ci -g ci /opt/actions-runner
curl -fsSL --retry 5 '${AgentUrl}' | tar -xz -C /opt/actions-runner
chown -R ci:ci /opt/actions-runner
/opt/actions-runner/bin/installdependencies.sh || true
cd /opt/actions-runner
runuser -u ci -- ./config.sh --unattended --ephemeral --disableupdate \
  --url '${ForgeUrl}' --token '${AgentToken}' --name "$INSTANCE_ID" --labels '${AgentLabels}'
: > /etc/forge-scaler/agent.env

start_watchdog "an ephemeral GitHub Actions runner" \
  "--probe 'pgrep -f Runner.Worker' --wrap -- runuser -u ci -- /opt/actions-runner/run.sh" \
  "WorkingDirectory=/opt/actions-runner"
