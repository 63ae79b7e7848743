# Sourced by try.sh and test.sh: installs what heartbeat needs on a fresh machine.
# tmux from the system's packages (it is a real dependency), then a virtualenv in .venv.

ensure_tmux() {
  command -v tmux >/dev/null 2>&1 && return 0
  local sudo=""
  [ "$(id -u)" -ne 0 ] && command -v sudo >/dev/null 2>&1 && sudo="sudo"
  if command -v apt-get >/dev/null 2>&1; then
    echo "installing tmux (apt-get)..." >&2
    $sudo apt-get update -qq >/dev/null
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq tmux >/dev/null
  elif command -v brew >/dev/null 2>&1; then
    brew install tmux
  else
    echo "heartbeat needs tmux: install it with your package manager" >&2
    return 1
  fi
}

ensure_venv() {
  # $1: what to install, e.g. '.' or '.[test]'
  local python="${PYTHON:-python3}"
  "$python" -c 'import sys; sys.exit(sys.version_info < (3, 11))' || {
    echo "heartbeat needs Python 3.11 or newer ($python is older)" >&2
    return 1
  }
  [ -x .venv/bin/python ] || "$python" -m venv .venv
  .venv/bin/python -m pip install -q --disable-pip-version-check -e "$1"
}
