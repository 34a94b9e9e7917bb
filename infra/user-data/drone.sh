#!/bin/bash
# forge-scaler agent fleet user-data: drone
# Drone docker runner as a container; busy while job containers (label io.drone.build.number)
# run; drained with docker stop, undrained with docker start.
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

docker create --name drone-runner --restart no \
  -v /var/run/docker.sock:/var/run/docker.sock \
  -e DRONE_RPC_PROTO="$(echo '${ForgeUrl}' | cut -d: -f1)" \
  -e DRONE_RPC_HOST="$(echo '${ForgeUrl}' | cut -d/ -f3)" \
  -e DRONE_RPC_SECRET='${AgentToken}' \
  -e DRONE_RUNNER_NAME="$INSTANCE_ID" \
  -e DRONE_RUNNER_CAPACITY='${Slots}' \
  -e DRONE_RUNNER_LABELS='${AgentLabels}' \
  '${AgentUrl}'
: > /etc/forge-scaler/agent.env

cat > /etc/systemd/system/forge-scaler-agent.service <<'UNIT'
[Unit]
Description=forge-scaler watchdog for the Drone docker runner
Wants=network-online.target docker.service
After=network-online.target docker.service

[Service]
EnvironmentFile=/etc/forge-scaler/agent.env
ExecStartPre=/usr/local/bin/wait-in-service
TimeoutStartSec=infinity
ExecStartPre=/usr/bin/docker start drone-runner
ExecStart=/usr/local/bin/forge-scaler agent --idle-timeout ${IdleTimeoutSeconds}s --boot-timeout ${BootTimeoutSeconds}s --docker-label io.drone.build.number --stop-cmd 'docker stop drone-runner' --start-cmd 'docker start drone-runner'
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
