"""`heartbeat check`: observe -> decide (pure) -> act, composed by `run.run`."""
