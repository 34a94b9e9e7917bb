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

start_watchdog "the Woodpecker agent" \
  "--woodpecker-varz http://localhost:3000/varz --wrap -- /usr/local/bin/woodpecker-agent" ""
