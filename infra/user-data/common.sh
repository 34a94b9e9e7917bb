# forge-scaler agent fleet user-data: the part every forge shares (IMDSv2 identity, the
# watchdog binary, the warm-pool wait, the ci user, Docker). Each forge's script includes it
# with the line `# @include common.sh`; scripts/gen-agent-fleet.py expands it into the template.
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
