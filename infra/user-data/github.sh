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

cat > /etc/systemd/system/forge-scaler-agent.service <<'UNIT'
[Unit]
Description=forge-scaler watchdog supervising an ephemeral GitHub Actions runner
Wants=network-online.target docker.service
After=network-online.target docker.service

[Service]
EnvironmentFile=/etc/forge-scaler/agent.env
ExecStartPre=/usr/local/bin/wait-in-service
TimeoutStartSec=infinity
WorkingDirectory=/opt/actions-runner
ExecStart=/usr/local/bin/forge-scaler agent --idle-timeout ${IdleTimeoutSeconds}s --boot-timeout ${BootTimeoutSeconds}s --probe 'pgrep -f Runner.Worker' --wrap -- runuser -u ci -- /opt/actions-runner/run.sh
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
