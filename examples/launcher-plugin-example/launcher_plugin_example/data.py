"""`sine_waves`: a generated forecasting task (no files to download), built like the built-in tasks.

Three channels of hourly-looking seasonal signals (a daily and a weekly cycle, a slow trend, Gaussian
noise), 4,000 rows from a fixed seed, so every trial and every machine sees the very same numbers.
The series goes through the launcher's own `tasks.timeseries.load_forecast_task`, so the split
(70/10/20), the z-scoring on the training rows, the context prefix of the val/test slices and the
size checks are exactly those of a CSV of one's own; nothing is re-implemented here.

The loader is marked with `tasks.plugins.task_source`, and registered under the entry-point group
`launcher.tasks`, so a sweep names it `- dataset: sine_waves`; without installing the package,
`- task: launcher_plugin_example.data:sine_waves` works the same (with the folder on PYTHONPATH).
"""
from __future__ import annotations

from dataclasses import replace

from tasks.plugins import task_source

N_ROWS = 4000
CHANNELS = ("north", "south", "east")
PERIOD = 24            # the daily cycle in steps: what seasonal_naive repeats on this task


def sine_wave_values(n_rows: int = N_ROWS, seed: int = 0):
    """(n_rows, 3) raw values: per channel a daily and a weekly sine, a slow trend and N(0, 0.3^2) noise."""
    import numpy as np

    rng = np.random.default_rng(seed)
    t = np.arange(n_rows, dtype=np.float64)[:, None]
    k = np.arange(len(CHANNELS), dtype=np.float64)[None, :]
    daily = (2.0 + k) * np.sin(2 * np.pi * t / PERIOD + 0.7 * k)
    weekly = 1.0 * np.sin(2 * np.pi * t / (7 * PERIOD) + 1.3 * k)
    trend = 0.0005 * (k + 1) * t
    return 10.0 * (k + 1) + daily + weekly + trend + rng.normal(0.0, 0.3, size=(n_rows, len(CHANNELS)))


@task_source(domain="forecasting", horizons=(24,), context=96)
def sine_waves(*, horizon: int, context: int | None = 96, data_root=None, seed: int = 0, **options):
    """The `sine_waves` task for one horizon: a tasks.timeseries.ForecastTask.

    The launcher calls it with `horizon`, `context` (the sweep row's, else 96) and `data_root` (unused:
    the data is generated). `seed` picks the generated series; the launcher leaves it at 0.
    """
    from tasks.timeseries import LoadedSeries, load_forecast_task

    series = LoadedSeries(values=sine_wave_values(seed=seed), channel_names=list(CHANNELS))
    # `path` only names the data in messages (a too-long context, say); `series` is what is split.
    task = load_forecast_task("sine_waves", int(horizon), context=96 if context is None else int(context),
                              path=f"<generated sine_waves, seed {seed}>", series=series, freq=PERIOD)
    return replace(task, path=None)
