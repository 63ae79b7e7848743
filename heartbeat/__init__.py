"""heartbeat: keeps long-running coding agents alive in tmux, from the daily notes."""

__version__ = "0.1.0"
