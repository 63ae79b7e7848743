"""heartbeat's own upkeep: its schedule (cron, launchd, systemd) and the doctor."""
