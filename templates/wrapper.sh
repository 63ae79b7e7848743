# heartbeat's wrapper: runs one agent command, records how it ended, keeps the pane readable.
# Started as: sh -c "$(this file)" heartbeat COMMAND [NOTIFY ...]
# COMMAND is the agent's shell command; NOTIFY is the notify command, in which the word
# {text} stands for the message. Every value arrives as an argument or in the
# environment: nothing here is pasted together from note text.
command=$1
shift
# The PATH fix: the PATH recorded at launch (set by heartbeat), then the places
# agents are usually installed, for a session restarted under cron's bare PATH.
PATH="${PATH:-/usr/bin:/bin}:/opt/homebrew/bin:/usr/local/bin:$HOME/.local/bin"
export PATH
/bin/sh -c "$command"
code=$?
echo "EXITED: $code"
"$HEARTBEAT_TMUX" -S "$HEARTBEAT_SOCKET" set-option -p -t "$TMUX_PANE" @heartbeat_exit "$code" 2>/dev/null
if [ -n "$HEARTBEAT_EXIT_FILE" ]; then
  printf '%s\n' "$code" > "$HEARTBEAT_EXIT_FILE.tmp" && mv -f "$HEARTBEAT_EXIT_FILE.tmp" "$HEARTBEAT_EXIT_FILE"
fi
if [ $# -gt 0 ]; then
  text="$HEARTBEAT_NAME finished (exit $code) in $HEARTBEAT_DIR"
  for word in "$@"; do
    shift
    if [ "$word" = "{text}" ]; then word=$text; fi
    set -- "$@" "$word"
  done
  "$@" </dev/null >/dev/null 2>&1 || echo "heartbeat: the notify command failed"
fi
exec sleep 999999
