"""Lets `python -m heartbeat` run the command line."""

from heartbeat.cli import main

main()
