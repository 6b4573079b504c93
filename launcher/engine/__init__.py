"""The engine: the controller's steady-state loop and everything it keeps (studies, ASHA rungs, the
journal, the lock, recovery after a kill, the MLflow runs of a sweep), plus `preflight` and `dry_run`.

May import: launcher.spec, launcher.backends, launcher.job, launcher.methods, launcher.tracking,
launcher.stop, launcher.errors. Never: launcher.report, launcher.__main__/api.
"""
