"""The trial job: what runs on a worker (one process per rank): `trial.py` (TrialSpec, the outbox,
the Checkpointable job, `run_trial`).

May import: launcher.methods, launcher.training, launcher.errors. Never: launcher.engine, launcher.spec,
launcher.backends, mlflow, nevergrad.
"""
