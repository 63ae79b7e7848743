"""Stand-in for OpenAI's `codex` CLI where heartbeat depends on it (openai/codex, codex-rs).

- `codex exec [OPTIONS] PROMPT` starts a session and writes its rollout file,
  `$CODEX_HOME` (else ~/.codex) `/sessions/YYYY/MM/DD/rollout-YYYY-MM-DDThh-mm-ss-<uuid>.jsonl`
  in local time (core/src/rollout/recorder.rs), whose first line is
  `{"timestamp":...,"type":"session_meta","payload":{"id","timestamp","cwd","originator",
  "cli_version","source","base_instructions"}}` (protocol/src/protocol.rs: SessionMeta),
  a line that runs past 64 KiB with the base instructions, then the user's turn.
- `codex exec [OPTIONS] resume SESSION_ID [PROMPT]` continues it, or fails with
  "Error: thread/resume: thread/resume failed: no rollout found for thread id <id>" and
  exit 1; `-C`, `-s`, `-p` after `resume` are refused as clap does ("error: unexpected
  argument '-C' found", exit 2).
- `codex PROMPT` (the interactive TUI) with the prompt `ask-approval` shows the approval
  overlay for a command, as codex-rs/tui/src/bottom_pane/approval_overlay.rs draws it
  (title, reason, `$ command`, the choices, U+203A marking the selected one, the footer),
  waits for a line, then says it was approved and works on.
Then it behaves as the session's first prompt says (see agent_stand_in.py).
"""

import glob
import json
import os
import sys
import uuid
from datetime import UTC, datetime

sys.path.insert(0, os.path.dirname(os.path.realpath(__file__)))
from agent_stand_in import behave

WITH_VALUE = {
    "-m",
    "--model",
    "-s",
    "--sandbox",
    "-p",
    "--profile",
    "-C",
    "--cd",
    "-c",
    "--config",
    "-i",
    "--image",
    "--add-dir",
    "-o",
    "--output-last-message",
}
NOT_AFTER_RESUME = {"-C", "--cd", "-s", "--sandbox", "-p", "--profile", "--add-dir"}


def main() -> None:
    argv = sys.argv[1:]

    if not argv or argv[0] not in ("exec", "e"):
        if argv and argv[-1] == "ask-approval":
            ask_approval()
        behave(argv[-1] if argv else "", resumed=False)
    positional, i, resuming = [], 1, False
    while i < len(argv):
        word = argv[i]
        if resuming and word in NOT_AFTER_RESUME:
            print(f"error: unexpected argument '{word}' found", file=sys.stderr)
            sys.exit(2)
        if word in WITH_VALUE:
            i += 2
            continue
        if not word.startswith("-"):
            positional.append(word)
            resuming = resuming or positional == ["resume"]
        i += 1
    home = os.environ.get("CODEX_HOME") or os.path.join(os.environ["HOME"], ".codex")
    cwd = os.getcwd()  # std::env::current_dir: the folder with its links resolved
    if positional[:1] == ["resume"]:
        session = positional[1] if len(positional) > 1 else ""
        found = glob.glob(
            os.path.join(home, "sessions", "*", "*", "*", f"rollout-*-{session}.jsonl")
        )
        if not session or not found:
            print(
                "Error: thread/resume: thread/resume failed: no rollout found for thread id "
                f"{session} (code -32600)",
                file=sys.stderr,
            )
            sys.exit(1)
        with open(found[0]) as handle:
            handle.readline()
            task = json.loads(handle.readline())["payload"]["content"][0]["text"]
        write(found[0], "response_item", user_turn(positional[2] if len(positional) > 2 else ""))
        behave(task, resumed=True)
    prompt = positional[-1] if positional else ""
    session = str(uuid.uuid4())
    now = datetime.now()
    folder = os.path.join(home, "sessions", f"{now:%Y}", f"{now:%m}", f"{now:%d}")
    os.makedirs(folder, exist_ok=True)
    path = os.path.join(folder, f"rollout-{now:%Y-%m-%dT%H-%M-%S}-{session}.jsonl")
    meta = {
        "id": session,
        "timestamp": stamp(),
        "cwd": cwd,
        "originator": "codex_exec",
        "cli_version": "0.46.0",
        "instructions": None,
        "source": "exec",
        # Newer versions keep the whole system prompt here: a first line of tens of KiB.
        "base_instructions": {"text": "You are Codex, a coding agent. " * 2500},
    }
    # Its first records land whole (written aside, then renamed) so that a test that
    # sees the file can read them; heartbeat itself reads a torn first line too.
    write(path + ".part", "session_meta", meta)
    write(path + ".part", "response_item", user_turn(prompt))
    os.replace(path + ".part", path)
    behave(prompt, resumed=False)


def ask_approval() -> None:
    print("  Would you like to run the following command?")
    print()
    print("  Reason: run the test suite outside the sandbox")
    print()
    print("  $ pytest -q")
    print()
    print("\u203a 1. Yes, proceed (y)")
    print("  2. Yes, and don't ask again for commands that start with `pytest` (p)")
    print("  3. No, and tell Codex what to do differently (esc)")
    print()
    print("  Press enter to confirm or esc to cancel")
    sys.stdout.flush()
    sys.stdin.readline()
    # The overlay is gone; the history shows the decision, then the command's output.
    print("\u2714 You approved codex to run pytest -q this time")
    for line in range(8):
        print(f"tests/test_{line}.py ....")
    sys.stdout.flush()


def user_turn(text: str) -> dict:
    return {"type": "message", "role": "user", "content": [{"type": "input_text", "text": text}]}


def stamp() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


def write(path: str, kind: str, payload: dict) -> None:
    with open(path, "a") as handle:
        handle.write(
            json.dumps(
                {"timestamp": stamp(), "type": kind, "payload": payload}, separators=(",", ":")
            )
            + "\n"
        )


main()
