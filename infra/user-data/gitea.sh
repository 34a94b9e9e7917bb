#!/bin/bash
# forge-scaler agent fleet user-data: gitea
# Gitea act_runner registered as ephemeral: it runs one job and exits, and the instance leaves.
# Until then task containers (GITEA-ACTIONS-TASK-*) tell busy from idle.
# @include common.sh

curl -fsSL --retry 5 -o /usr/local/bin/act_runner '${AgentUrl}'
chmod 0755 /usr/local/bin/act_runner
cd /var/lib/ci
runuser -u ci -- /usr/local/bin/act_runner register --no-interactive --ephemeral \
  --instance '${ForgeUrl}' --token '${AgentToken}' --name "$INSTANCE_ID" --labels '${AgentLabels}'
: > /etc/forge-scaler/agent.env

start_watchdog "an ephemeral Gitea act_runner" \
  "--docker-name-prefix GITEA-ACTIONS-TASK- --wrap -- runuser -u ci -- /usr/local/bin/act_runner daemon" \
  "WorkingDirectory=/var/lib/ci"
