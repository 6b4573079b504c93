"""The Python API (filled in by this change)."""
