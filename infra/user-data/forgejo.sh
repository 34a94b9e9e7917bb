#!/bin/bash
# forge-scaler agent fleet user-data: forgejo
# Forgejo runner in one-job mode: it runs one job and exits, and the instance leaves. Until a
# job comes, task containers (FORGEJO-ACTIONS-TASK-*) tell busy from idle.
# @include common.sh

curl -fsSL --retry 5 -o /usr/local/bin/forgejo-runner '${AgentUrl}'
chmod 0755 /usr/local/bin/forgejo-runner
cd /var/lib/ci
runuser -u ci -- /usr/local/bin/forgejo-runner register --no-interactive \
  --instance '${ForgeUrl}' --token '${AgentToken}' --name "$INSTANCE_ID" --labels '${AgentLabels}'
: > /etc/forge-scaler/agent.env

start_watchdog "a one-job Forgejo runner" \
  "--docker-name-prefix FORGEJO-ACTIONS-TASK- --wrap -- runuser -u ci -- /usr/local/bin/forgejo-runner one-job --wait" \
  "WorkingDirectory=/var/lib/ci"
