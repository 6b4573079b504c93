"""The trial job: what runs on a worker (one process per rank): `trial.py` (TrialSpec, the outbox,
the Checkpointable job, `run_trial`), `outbox.py` (the reported steps) and `entry.py` (the command a SLURM
job starts: submitit's job entry point without its numpy preload).

May import: launcher.methods, launcher.training, launcher.errors. Never: launcher.engine, launcher.spec,
launcher.backends, mlflow, nevergrad.
"""
