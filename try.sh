#!/usr/bin/env bash
# Installs heartbeat (and tmux when missing), then runs its main job, `heartbeat check`,
# on a copy of the sample notes in memory/, dated so that the newest note is today.
# Everything happens in a temporary HOME with its own tmux socket, and stand-in
# agents are first on PATH, so no real agent runs and the checkout stays clean.
set -euo pipefail
cd "$(dirname "$0")"
. scripts/setup.sh
ensure_tmux
ensure_venv '.'

demo=$(mktemp -d /tmp/heartbeat-sample.XXXXXX)
mkdir -p "$demo/home/src"/{api,search,web,docs,billing}
cp -R tests/bin "$demo/bin"
.venv/bin/python - "$demo/memory" <<'PY'
import datetime, pathlib, shutil, sys
notes = sorted(pathlib.Path("memory").glob("*.md"))
newest = datetime.date.fromisoformat(notes[-1].stem)
shift = datetime.date.today() - newest
target = pathlib.Path(sys.argv[1])
target.mkdir(mode=0o700)
for note in notes:
    day = datetime.date.fromisoformat(note.stem) + shift
    shutil.copyfile(note, target / f"{day.isoformat()}.md")
PY
run() {
  env HOME="$demo/home" PATH="$demo/bin:$PATH" HEARTBEAT_NOTES="$demo/memory" \
    .venv/bin/heartbeat "$@"
}
# Unhooked first: heartbeat's session-closed hook would restart the sessions it closes.
trap 'env HOME="$demo/home" tmux -S "$demo/home/.tmux/sock" set-hook -gu session-closed \; kill-server 2>/dev/null || true' EXIT

echo "\$ heartbeat check      # commands written by hand are not run until you allow them"
run check || true
echo
for name in api-tests search-index web-fix changelog docs-rewrite; do
  echo "\$ heartbeat allow $name"
  run allow "$name"
done
echo
echo "\$ heartbeat check      # every logged session is dead here: at most 3 restarts a check"
run check || true
echo
echo "\$ heartbeat check      # the storm guard left two for this check"
run check || true
echo
echo "\$ heartbeat check      # nothing changed: silent"
run check && echo "(silent, exit 0)"
echo
echo "\$ heartbeat status"
run status
echo
today="$demo/memory/$(date +%F).md"
echo "Today's note, with the carried-over entry and the status lines heartbeat added:"
echo "----- $today"
cat "$today"
echo "-----"
echo "The notes stay in $demo/memory; the sample's tmux server is stopped on exit."
