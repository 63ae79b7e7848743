"""Is the agent's work there? What git and the PRD say, against how they stood at the start."""
