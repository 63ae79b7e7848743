# heartbeat's wrapper: runs one agent command, records how it ended, keeps the pane readable.
# Started as: sh -c "$(this file)" heartbeat COMMAND [HOOK ...]
# COMMAND is the agent's shell command; HOOK is the command that checks the entry once
# the agent has ended. Every value arrives as an argument or in the environment:
# nothing here is pasted together from note text.
command=$1
shift
# The PATH fix: the PATH recorded at launch (set by heartbeat), then the places
# agents are usually installed, for a session restarted under cron's bare PATH.
PATH="${PATH:-/usr/bin:/bin}:/opt/homebrew/bin:/usr/local/bin:$HOME/.local/bin"
export PATH
/bin/sh -c "$command"
code=$?
echo "EXITED: $code"
"$HEARTBEAT_TMUX" -S "$HEARTBEAT_PANE_SOCKET" set-option -p -t "$TMUX_PANE" @heartbeat_exit "$code" 2>/dev/null
if [ -n "$HEARTBEAT_EXIT_FILE" ]; then
  printf '%s\n' "$code" > "$HEARTBEAT_EXIT_FILE.tmp" && mv -f "$HEARTBEAT_EXIT_FILE.tmp" "$HEARTBEAT_EXIT_FILE"
fi
# The completion hook: an immediate check of this entry, so that a person hears how it
# ended, with what git says it did, within seconds instead of at the next cron tick.
if [ $# -gt 0 ]; then
  "$@" </dev/null >/dev/null 2>&1
fi
exec sleep 999999
