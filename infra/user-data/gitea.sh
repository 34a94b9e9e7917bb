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

cat > /etc/systemd/system/forge-scaler-agent.service <<'UNIT'
[Unit]
Description=forge-scaler watchdog supervising an ephemeral Gitea act_runner
Wants=network-online.target docker.service
After=network-online.target docker.service

[Service]
EnvironmentFile=/etc/forge-scaler/agent.env
ExecStartPre=/usr/local/bin/wait-in-service
TimeoutStartSec=infinity
WorkingDirectory=/var/lib/ci
ExecStart=/usr/local/bin/forge-scaler agent --idle-timeout ${IdleTimeoutSeconds}s --boot-timeout ${BootTimeoutSeconds}s --docker-name-prefix GITEA-ACTIONS-TASK- --wrap -- runuser -u ci -- /usr/local/bin/act_runner daemon
# The watchdog signals the agent itself; systemd only signals the watchdog.
KillMode=process
TimeoutStopSec=infinity
Restart=on-failure
RestartSec=5

[Install]
WantedBy=multi-user.target
UNIT
systemctl daemon-reload
systemctl enable forge-scaler-agent.service
# --no-block: in a warm pool the unit waits (wait-in-service) and user-data must finish.
systemctl start --no-block forge-scaler-agent.service
