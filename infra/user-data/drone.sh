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

start_watchdog "the Drone docker runner" \
  "--docker-label io.drone.build.number --stop-cmd 'docker stop drone-runner' --start-cmd 'docker start drone-runner'" \
  "ExecStartPre=/usr/bin/docker start drone-runner"
