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

cat > /etc/systemd/system/forge-scaler-agent.service <<'UNIT'
[Unit]
Description=forge-scaler watchdog supervising a one-job Forgejo runner
Wants=network-online.target docker.service
After=network-online.target docker.service

[Service]
EnvironmentFile=/etc/forge-scaler/agent.env
ExecStartPre=/usr/local/bin/wait-in-service
TimeoutStartSec=infinity
WorkingDirectory=/var/lib/ci
ExecStart=/usr/local/bin/forge-scaler agent --idle-timeout ${IdleTimeoutSeconds}s --boot-timeout ${BootTimeoutSeconds}s --docker-name-prefix FORGEJO-ACTIONS-TASK- --wrap -- runuser -u ci -- /usr/local/bin/forgejo-runner one-job --wait
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
