"""The daily notes: parsed into entries, the one edit heartbeat makes, the notebook of days
with its roll-over, and the parse cache."""
