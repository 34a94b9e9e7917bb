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

start_watchdog "the Buildkite agent" \
  "--wrap -- runuser -u ci -- /usr/local/bin/buildkite-agent start" ""
