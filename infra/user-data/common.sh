# forge-scaler agent fleet user-data: the part every forge shares (IMDSv2 identity, the
# watchdog binary, the warm-pool wait, the ci user, Docker, and the watchdog's systemd unit).
# Each forge's script includes it with the line `# @include common.sh` and ends with
# `start_watchdog`; scripts/gen-agent-fleet.py expands it into the template.
set -euo pipefail
exec > >(tee -a /var/log/forge-scaler-user-data.log) 2>&1
imds_token() { curl -fsS -X PUT http://169.254.169.254/latest/api/token -H 'X-aws-ec2-metadata-token-ttl-seconds: 300'; }
INSTANCE_ID=$(curl -fsS -H "X-aws-ec2-metadata-token: $(imds_token)" http://169.254.169.254/latest/meta-data/instance-id)

# An instance that cannot run the watchdog would never leave: it leaves now instead. First
# through its group, lowering the desired capacity (no replacement is launched); where the group
# refuses (at MinSize) the shutdown terminates it (InstanceInitiatedShutdownBehavior: terminate)
# and the group launches a replacement, which tries again.
leave_without_watchdog() {
  echo "forge-scaler: $1; this instance leaves"
  aws autoscaling terminate-instance-in-auto-scaling-group --region '${AWS::Region}' \
    --instance-id "$INSTANCE_ID" --should-decrement-desired-capacity || true
  shutdown -h now
  exit 1
}

# The watchdog: forge-scaler, one static (musl) binary from S3 (scripts/build-watchdog.sh),
# installed only when its SHA-256 is the one the stack was given.
watchdog_download=$(mktemp)
for attempt in 1 2 3 4 5; do
  aws s3 cp --only-show-errors --region '${AWS::Region}' 's3://${WatchdogBucket}/${WatchdogKey}' "$watchdog_download" && break
  [ "$attempt" = 5 ] && leave_without_watchdog "cannot download s3://${WatchdogBucket}/${WatchdogKey}"
  sleep $((attempt * 5))
done
echo '${WatchdogSha256}  '"$watchdog_download" | sha256sum --check --status \
  || leave_without_watchdog "s3://${WatchdogBucket}/${WatchdogKey} does not have the SHA-256 ${WatchdogSha256}"
install -m 0755 "$watchdog_download" /usr/local/bin/forge-scaler
rm -f "$watchdog_download"
/usr/local/bin/forge-scaler --help >/dev/null \
  || leave_without_watchdog "the watchdog does not run here (wrong architecture for this AMI?)"

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

# The watchdog's systemd unit, written and started last by each forge's script:
#   start_watchdog WHAT PROBE_AND_AGENT SERVICE_LINES
# WHAT completes "forge-scaler watchdog supervising ...", PROBE_AND_AGENT follows the stack's
# common watchdog flags on ExecStart (systemd quoting), SERVICE_LINES (or "") go into [Service].
start_watchdog() {
  cat > /etc/systemd/system/forge-scaler-agent.service <<UNIT
[Unit]
Description=forge-scaler watchdog supervising $1
Wants=network-online.target docker.service
After=network-online.target docker.service

[Service]
EnvironmentFile=/etc/forge-scaler/agent.env
ExecStartPre=/usr/local/bin/wait-in-service
TimeoutStartSec=infinity
$3
ExecStart=/usr/local/bin/forge-scaler agent --idle-timeout ${IdleTimeoutSeconds}s --boot-timeout ${BootTimeoutSeconds}s --max-jobs ${MaxJobs} --on-rebalance ${OnRebalance} --unknown-grace ${UnknownGrace} --max-busy ${MaxBusy} $2
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
}
