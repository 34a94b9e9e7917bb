#!/bin/bash
# forge-scaler agent fleet user-data: buildkite
# Buildkite agent with --disconnect-after-idle-timeout: it exits by itself when idle, and the
# watchdog then terminates the instance; a stop is a graceful SIGTERM (the job finishes).
# @include common.sh

install -d /opt/buildkite
curl -fsSL --retry 5 '${AgentUrl}' | tar -xz -C /opt/buildkite
install -m 0755 "$(find /opt/buildkite -name buildkite-agent -type f | head -n 1)" /usr/local/bin/buildkite-agent
install -d -o ci -g ci /var/lib/ci/builds
cat > /etc/forge-scaler/agent.env <<ENV
BUILDKITE_AGENT_TOKEN=${AgentToken}
BUILDKITE_AGENT_NAME=$INSTANCE_ID
BUILDKITE_AGENT_TAGS=queue=${AgentLabels}
BUILDKITE_AGENT_SPAWN=${Slots}
BUILDKITE_AGENT_DISCONNECT_AFTER_IDLE_TIMEOUT=${IdleTimeoutSeconds}
BUILDKITE_BUILD_PATH=/var/lib/ci/builds
ENV

cat > /etc/systemd/system/forge-scaler-agent.service <<'UNIT'
[Unit]
Description=forge-scaler watchdog supervising the Buildkite agent
Wants=network-online.target docker.service
After=network-online.target docker.service

[Service]
EnvironmentFile=/etc/forge-scaler/agent.env
ExecStartPre=/usr/local/bin/wait-in-service
TimeoutStartSec=infinity
ExecStart=/usr/local/bin/forge-scaler agent --idle-timeout ${IdleTimeoutSeconds}s --boot-timeout ${BootTimeoutSeconds}s --wrap -- runuser -u ci -- /usr/local/bin/buildkite-agent start
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
