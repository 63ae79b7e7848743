"""Stand-in for Claude Code's `claude` CLI where heartbeat depends on it.

- `-p` runs headless; `--session-id UUID` starts that session (a UUID, else "Error:
  Invalid session ID. Must be a valid UUID."), refused with "Error: Session ID <id> is
  already in use." and exit 1 when its transcript exists (anthropics/claude-code#5524);
  `-r/--resume ID` continues one, or prints "No conversation found with session ID: <id>"
  on stderr and exits 1 (anthropics/claude-code#12730, #40609).
- The transcript is `$CLAUDE_CONFIG_DIR` (else ~/.claude) `/projects/<cwd with every
  character but letters and digits as ->/<session-id>.jsonl`, one JSON record a line, in
  the CLI's envelope (parentUuid, cwd, sessionId, version, type, message, uuid, timestamp).
- Interactive (no `-p`), the prompt `ask-permission` shows the permission dialog for a
  Bash command as anthropics/claude-code#29925 and #64638 quote it ("Do you want to
  proceed?", "> 1. Yes" (U+276F), "2. Yes, and don't ask again ...", "3. No, and tell Claude what
  to do differently (esc)"), waits for a line, then works on.
Then it behaves as the session's first prompt says (see agent_stand_in.py).
"""

import json
import os
import re
import sys
import time
import uuid
from datetime import UTC, datetime

sys.path.insert(0, os.path.dirname(os.path.realpath(__file__)))
from agent_stand_in import behave

WITH_VALUE = {
    "--session-id",
    "--resume",
    "-r",
    "--permission-mode",
    "--model",
    "--output-format",
    "--allowedTools",
    "--add-dir",
    "--max-turns",
}


def main() -> None:
    argv = sys.argv[1:]

    options, prompt = {}, None
    i = 0
    while i < len(argv):
        if argv[i] in WITH_VALUE and i + 1 < len(argv):
            options[argv[i]] = argv[i + 1]
            i += 2
        elif argv[i].startswith("-"):
            options[argv[i]] = ""
            i += 1
        else:
            prompt = argv[i]
            i += 1
    home = os.environ.get("CLAUDE_CONFIG_DIR") or os.path.join(os.environ["HOME"], ".claude")
    # The working folder with its links resolved, as the CLI names its projects
    # (anthropics/claude-code#39594, #44456; plmbr/notebook-intelligence#171).
    cwd = os.path.realpath(os.getcwd())
    project = os.path.join(home, "projects", re.sub(r"[^a-zA-Z0-9]", "-", cwd))
    resume = options.get("--resume") or options.get("-r")
    if resume:
        path = os.path.join(project, f"{resume}.jsonl")
        if not os.path.exists(path):
            print(f"No conversation found with session ID: {resume}", file=sys.stderr)
            sys.exit(1)
        with open(path) as handle:
            task = json.loads(handle.readline())["message"]["content"]
        append(path, cwd, resume, prompt or "")
        behave(task, resumed=True)
    session = options.get("--session-id") or str(uuid.uuid4())
    if not re.fullmatch(r"[0-9a-fA-F-]{36}", session):
        print("Error: Invalid session ID. Must be a valid UUID.", file=sys.stderr)
        sys.exit(1)
    path = os.path.join(project, f"{session}.jsonl")
    if os.path.exists(path):
        print(f"Error: Session ID {session} is already in use.", file=sys.stderr)
        sys.exit(1)
    os.makedirs(project, exist_ok=True)
    append(path, cwd, session, prompt or "")
    if prompt == "limit-quietly":
        # The CLI's record of an API error: a synthetic assistant message (its model
        # "<synthetic>"), isApiErrorMessage, apiErrorStatus and the error kind.
        api_error(path, cwd, session, "You've hit your session limit · resets 4:50am (Europe/Rome)")
        sys.exit(1)
    if prompt == "wait-at-limit" and "-p" not in options and "--print" not in options:
        # Interactive, at a usage limit: the message and the menu stay on the screen
        # (anthropics/claude-code#20719 and #40898 show both), and the session waits.
        print("  ⎿  You've hit your limit · resets 4:50am (Europe/Rome)")
        print("/rate-limit-options")
        print("What do you want to do?")
        print("❯ 1. Stop and wait for limit to reset")
        print("  2. Add funds to continue with extra usage")
        print("  3. Upgrade your plan")
        sys.stdout.flush()
        time.sleep(600)
        sys.exit(0)
    if prompt == "ask-permission" and "-p" not in options and "--print" not in options:
        print("⏺ Bash(npm test)")
        print(" Bash command")
        print()
        print("   npm test")
        print("   Run the test suite")
        print()
        print(" Do you want to proceed?")
        print(" ❯ 1. Yes")
        print(f"   2. Yes, and don't ask again for similar commands in {cwd}")
        print("   3. No, and tell Claude what to do differently (esc)")
        sys.stdout.flush()
        sys.stdin.readline()
        for line in range(8):  # the dialog is gone; the command's output follows
            print(f"  ⎿  PASS src/test_{line}.js")
        sys.stdout.flush()
        behave("work", resumed=False)
    if prompt == "work-quietly":
        # Headless: nothing on the terminal until the end, but every turn in the transcript.
        for _ in range(3000):
            answer(path, cwd, session)
            time.sleep(0.2)
    behave(prompt or "", resumed=False)


def answer(path: str, cwd: str, session: str) -> None:
    record = {
        "parentUuid": None,
        "cwd": cwd,
        "sessionId": session,
        "version": "2.1.38",
        "type": "assistant",
        "message": {"role": "assistant", "content": [{"type": "text", "text": "Working."}]},
        "uuid": str(uuid.uuid4()),
        "timestamp": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z",
    }
    with open(path, "a") as handle:
        handle.write(json.dumps(record) + "\n")


def api_error(path: str, cwd: str, session: str, text: str) -> None:
    record = {
        "parentUuid": None,
        "cwd": cwd,
        "sessionId": session,
        "version": "2.1.38",
        "type": "assistant",
        "message": {
            "model": "<synthetic>",
            "role": "assistant",
            "content": [{"type": "text", "text": text}],
        },
        "error": "rate_limit",
        "isApiErrorMessage": True,
        "apiErrorStatus": 429,
        "uuid": str(uuid.uuid4()),
        "timestamp": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z",
    }
    with open(path, "a") as handle:
        handle.write(json.dumps(record) + "\n")


def append(path: str, cwd: str, session: str, prompt: str) -> None:
    record = {
        "parentUuid": None,
        "isSidechain": False,
        "userType": "external",
        "cwd": cwd,
        "sessionId": session,
        "version": "2.1.38",
        "gitBranch": "",
        "type": "user",
        "message": {"role": "user", "content": prompt},
        "uuid": str(uuid.uuid4()),
        "timestamp": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z",
    }
    with open(path, "a") as handle:
        handle.write(json.dumps(record) + "\n")


main()
