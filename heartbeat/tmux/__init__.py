"""The one place that talks to tmux (through libtmux), and the processes a pane leaves."""
