"""The sweep spec: one YAML file -> a typed, validated `SweepSpec` (every error names file:line).

`sweep.py` (the dataclasses and key lists), `yaml_nodes.py` (YAML with lines), `types.py` (scalar
readers), `validation.py` / `search.py` / `stores.py` (the checks), `space.py` (search spaces over
Nevergrad), `load.py` (`load_sweep`, sweep-folder records).

May import: launcher.methods (declarations), launcher.backends.slurm_resources (resource checks),
launcher.tracking, launcher.errors, tasks. Never: launcher.engine, launcher.report, launcher.job.
"""
