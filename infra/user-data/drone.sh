#!/bin/bash
# forge-scaler agent fleet user-data: drone
# Drone docker runner as a container; busy while job containers (label io.drone.build.number)
# run; drained with docker stop, undrained with docker start.
# @include common.sh

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
