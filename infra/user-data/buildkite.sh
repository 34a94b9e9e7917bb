#!/bin/bash
# forge-scaler agent fleet user-data: buildkite
# Buildkite agent with --disconnect-after-idle-timeout: it exits by itself when idle, and the
# watchdog then terminates the instance; a stop is a graceful SIGTERM (the job finishes).
set -euo pipefail
exec > >(tee -a /var/log/forge-scaler-user-data.log) 2>&1
imds_token() { curl -fsS -X PUT http://169.254.169.254/latest/api/token -H 'X-aws-ec2-metadata-token-ttl-seconds: 300'; }
INSTANCE_ID=$(curl -fsS -H "X-aws-ec2-metadata-token: $(imds_token)" http://169.254.169.254/latest/meta-data/instance-id)

# The watchdog: forge-scaler, one static binary.
curl -fsSL --retry 5 -o /usr/local/bin/forge-scaler '${WatchdogUrl}'
chmod 0755 /usr/local/bin/forge-scaler

# Units wait here while the instance sits in a warm pool (target state Warmed:*), so an agent
# only registers once the instance serves the group.
cat > /usr/local/bin/wait-in-service <<'SCRIPT'
#!/bin/bash
while true; do
  t=$(curl -fsS -X PUT http://169.254.169.254/latest/api/token -H 'X-aws-ec2-metadata-token-ttl-seconds: 60') || { sleep 5; continue; }
  state=$(curl -sS -H "X-aws-ec2-metadata-token: $t" http://169.254.169.254/latest/meta-data/autoscaling/target-lifecycle-state || true)
  case "$state" in Warmed:*) sleep 5 ;; *) exit 0 ;; esac
done
SCRIPT
chmod 0755 /usr/local/bin/wait-in-service

# Jobs run as the unprivileged user ci; the watchdog runs as root.
id ci >/dev/null 2>&1 || useradd --system --create-home --home-dir /var/lib/ci --shell /bin/bash ci
install -d -m 0700 /etc/forge-scaler
umask 077

# Docker for the jobs (Amazon Linux 2023 package).
dnf install -y docker
systemctl enable --now docker
usermod -aG docker ci

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
