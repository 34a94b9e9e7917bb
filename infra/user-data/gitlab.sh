#!/bin/bash
# forge-scaler agent fleet user-data: gitlab
# GitLab Runner (docker executor); busy while job containers (label com.gitlab.gitlab-runner.job.id)
# run; drained with SIGQUIT, its graceful shutdown (it finishes running jobs and takes no new one).
# @include common.sh

curl -fsSL --retry 5 -o /usr/local/bin/gitlab-runner '${AgentUrl}'
chmod 0755 /usr/local/bin/gitlab-runner
install -d -m 0700 /etc/gitlab-runner
/usr/local/bin/gitlab-runner register --non-interactive --config /etc/gitlab-runner/config.toml \
  --url '${ForgeUrl}' --token '${AgentToken}' --name "$INSTANCE_ID" \
  --executor docker --docker-image alpine:latest
sed -i 's/^concurrent = .*/concurrent = ${Slots}/' /etc/gitlab-runner/config.toml
: > /etc/forge-scaler/agent.env

cat > /etc/systemd/system/forge-scaler-agent.service <<'UNIT'
[Unit]
Description=forge-scaler watchdog supervising GitLab Runner
Wants=network-online.target docker.service
After=network-online.target docker.service

[Service]
EnvironmentFile=/etc/forge-scaler/agent.env
ExecStartPre=/usr/local/bin/wait-in-service
TimeoutStartSec=infinity
ExecStart=/usr/local/bin/forge-scaler agent --idle-timeout ${IdleTimeoutSeconds}s --boot-timeout ${BootTimeoutSeconds}s --docker-label com.gitlab.gitlab-runner.job.id --stop-signal quit --wrap -- /usr/local/bin/gitlab-runner run --config /etc/gitlab-runner/config.toml --working-directory /var/lib/ci
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
