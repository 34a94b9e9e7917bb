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

start_watchdog "GitLab Runner" \
  "--docker-label com.gitlab.gitlab-runner.job.id --stop-signal quit --wrap -- /usr/local/bin/gitlab-runner run --config /etc/gitlab-runner/config.toml --working-directory /var/lib/ci" ""
