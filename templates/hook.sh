#!/bin/sh
# heartbeat's tmux hook: a session closed on a server heartbeat manages, so check at
# once (written by heartbeat; every value is quoted for the shell).
HEARTBEAT_NOTES=$notes
HEARTBEAT_STATE_DIR=$state
HEARTBEAT_SOCKET=$socket
HEARTBEAT_CONFIG=$config
PATH=$path
export HEARTBEAT_NOTES HEARTBEAT_STATE_DIR HEARTBEAT_SOCKET HEARTBEAT_CONFIG PATH
exec $python -m heartbeat check --quiet --hook >/dev/null 2>&1
