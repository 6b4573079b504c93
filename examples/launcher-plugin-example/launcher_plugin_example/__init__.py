"""An example launcher plugin: a one-shot forecasting method (`drift`), a generated forecasting task
(`sine_waves`) and a tiny forecasting FM adapter (`tiny_mlp`). See the package's README.md.

Importing this package imports nothing heavy; torch is imported by `launcher_plugin_example.fm` only.
"""
__version__ = "0.1.0"
