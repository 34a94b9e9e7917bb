#!/bin/bash
# forge-scaler agent fleet user-data: woodpecker
# Woodpecker agent supervised by the watchdog; busy from its /varz (running_count), stopped with
# SIGKILL only while nothing runs (SIGTERM would cancel running workflows).
# @include common.sh

install -d /opt/woodpecker
curl -fsSL --retry 5 '${AgentUrl}' | tar -xz -C /opt/woodpecker
install -m 0755 "$(find /opt/woodpecker -name woodpecker-agent -type f | head -n 1)" /usr/local/bin/woodpecker-agent
cat > /etc/forge-scaler/agent.env <<ENV
WOODPECKER_SERVER=${ForgeUrl}
WOODPECKER_AGENT_SECRET=${AgentToken}
WOODPECKER_HOSTNAME=$INSTANCE_ID
WOODPECKER_AGENT_CONFIG_FILE=
WOODPECKER_BACKEND=docker
WOODPECKER_MAX_WORKFLOWS=${Slots}
WOODPECKER_AGENT_LABELS=${AgentLabels}
WOODPECKER_HEALTHCHECK_ADDR=localhost:3000
ENV

cat > /etc/systemd/system/forge-scaler-agent.service <<'UNIT'
[Unit]
Description=forge-scaler watchdog supervising the Woodpecker agent
Wants=network-online.target docker.service
After=network-online.target docker.service

[Service]
EnvironmentFile=/etc/forge-scaler/agent.env
ExecStartPre=/usr/local/bin/wait-in-service
TimeoutStartSec=infinity
ExecStart=/usr/local/bin/forge-scaler agent --idle-timeout ${IdleTimeoutSeconds}s --boot-timeout ${BootTimeoutSeconds}s --woodpecker-varz http://localhost:3000/varz --wrap -- /usr/local/bin/woodpecker-agent
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
