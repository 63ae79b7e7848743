#!/usr/bin/env bash
# Installs heartbeat with its test tools (and tmux when missing), then runs the tests.
set -euo pipefail
cd "$(dirname "$0")"
. scripts/setup.sh
ensure_tmux
ensure_package crontab cron  # the scheduling tests use the real crontab command
ensure_venv '.[test]'
exec .venv/bin/python -m pytest "$@"
