# Sourced by try.sh and test.sh: installs what heartbeat needs on a fresh machine.
# tmux from the system's packages (it is a real dependency), then a virtualenv in .venv.

ensure_package() {
  # $1: a command; $2: the Debian package that has it
  command -v "$1" >/dev/null 2>&1 && return 0
  local sudo=""
  [ "$(id -u)" -ne 0 ] && command -v sudo >/dev/null 2>&1 && sudo="sudo"
  if command -v apt-get >/dev/null 2>&1; then
    echo "installing $2 (apt-get)..." >&2
    $sudo apt-get update -qq >/dev/null
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "$2" >/dev/null
  elif command -v brew >/dev/null 2>&1 && [ "$1" = tmux ]; then
    brew install tmux
  else
    echo "heartbeat needs $1: install it with your package manager" >&2
    return 1
  fi
}

ensure_tmux() { ensure_package tmux tmux; }

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
