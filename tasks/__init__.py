"""Tasks: data loading, split protocols and metrics per domain (no launcher, tracking or scheduler code)."""
