"""FM adapters fine-tuned for a few real steps on real data: ETTh1 (embedded), GUE prom_300_tata and the
Brazilian coffee scenes from the data folder `SHARED_DATA` when it is there, generated stand-ins of them
otherwise; and Fracast, the real pretrained FM bundled in its wheel, zero-shot on ETTh1. The checkpoints
are the random-init stand-ins of `models.fm.tiny` (the `folders` fixture of tests/test_fm_adapters.py).
"""
from __future__ import annotations

import shutil
import tarfile

import numpy as np
import pandas as pd
import pytest
import torch
from numpy.lib.stride_tricks import sliding_window_view
from PIL import Image
from torch import nn

from models.fm.base import FMCheckpointError, Forecasting, ImageClassification, load_adapter
from models.fm.dna import one_hot_dna
from tasks.timeseries import load_forecast_task
from tests.conftest import SHARED_DATA
from tests.test_fm_adapters import CASES, CONTEXT, HORIZON, folders, load  # noqa: F401 (folders: a fixture)

# The machine's 2 cores are shared: more than one intra-op thread makes tiny models ~50x slower.
torch.set_num_threads(1)

TATA_TRAIN = SHARED_DATA / "genomics/GUE/prom/prom_300_tata/train.csv.gz"
COFFEE_TARBALL = SHARED_DATA / "satellite/brazilian_coffee_scenes/dataset-brazilian_coffee_scenes.tar.gz"


def fine_tune(adapter, x, y, loss_fn, *, steps, lr, mode="full", batch=32):
    """Plain AdamW loop; returns the loss on all of (x, y) before and after, in eval mode."""
    optimizer = torch.optim.AdamW(adapter.trainable_groups(mode), lr=lr)

    def full_loss():
        adapter.eval()
        with torch.no_grad():
            return loss_fn(adapter(x), y).item()

    before = full_loss()
    generator = torch.Generator().manual_seed(0)
    adapter.train()
    for _ in range(steps):
        index = torch.randint(0, len(x), (batch,), generator=generator)
        loss = loss_fn(adapter(x[index]), y[index])
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    return before, full_loss()


def promoter_rows(n=128):
    """(sequences, labels, source): GUE prom_300_tata's first training rows when the data is there;
    otherwise generated promoter-like rows (a TATA box in the positives), so a fresh clone runs it too."""
    if TATA_TRAIN.is_file():
        rows = pd.read_csv(TATA_TRAIN).iloc[:n]
        return rows.sequence.tolist(), rows.label.to_numpy(), "GUE prom_300_tata"
    rng = np.random.default_rng(0)
    labels = np.arange(n) % 2
    sequences = []
    for label in labels:
        bases = rng.choice(list("ACGT"), 300)
        if label:
            bases[:30] = list("TATAAAAG" * 4)[:30]
        sequences.append("".join(bases))
    return sequences, labels, "generated (no GUE data here)"


def test_nucleotide_transformer_fine_tunes_on_promoter_tata(folders):
    sequences, labels, source = promoter_rows()
    assert 0.3 < labels.mean() < 0.7
    x, y = one_hot_dna(sequences, 300), torch.tensor(labels)
    torch.manual_seed(0)
    adapter = load("nucleotide_transformer", folders)
    before, after = fine_tune(adapter, x, y, nn.functional.cross_entropy, steps=25, lr=3e-3)
    print(f"NT promoter rows ({source}) train CE: {before:.4f} -> {after:.4f}")
    assert after < 0.8 * before


def etth1_training_rows(n_windows=32):
    task = load_forecast_task("ETTh1", HORIZON, context=CONTEXT)
    windows = sliding_window_view(task.train, CONTEXT + HORIZON, axis=0)   # (n, C, width)
    chosen = np.random.default_rng(0).choice(len(windows), n_windows, replace=False)
    rows = torch.tensor(windows[chosen].reshape(-1, CONTEXT + HORIZON), dtype=torch.float32)
    return rows[:, :CONTEXT], rows[:, CONTEXT:]


@pytest.mark.parametrize("name", ["patchtst", "patchtsmixer"])
def test_forecasters_fine_tune_on_etth1(folders, name):
    x, y = etth1_training_rows()
    torch.manual_seed(0)
    adapter = load(name, folders)
    before, after = fine_tune(adapter, x, y, nn.functional.mse_loss, steps=50, lr=3e-3)
    print(f"{name} ETTh1 train MSE: {before:.4f} -> {after:.4f}")
    assert after < 0.9 * before


def coffee_images(tmp_path, per_class=48):
    """Extract `per_class` coffee and non-coffee scenes to tmp_path; (N, 3, 64, 64) z-scored, labels.

    Without the coffee scenes (a fresh clone), generated scenes: rows of plants (stripes) against bare
    fields (noise), so the test still runs."""
    if not COFFEE_TARBALL.is_file():
        rng = np.random.default_rng(0)
        coffee = np.arange(2 * per_class) < per_class
        stripes = np.sin(np.arange(64) * 2 * np.pi / 8)[None, None, :, None] * np.ones((1, 3, 1, 64))
        x = torch.tensor(rng.normal(size=(2 * per_class, 3, 64, 64)) + 1.5 * stripes * coffee[:, None, None, None],
                         dtype=torch.float32)
        x = (x - x.mean(dim=(0, 2, 3), keepdim=True)) / x.std(dim=(0, 2, 3), keepdim=True)
        return x, torch.tensor(coffee, dtype=torch.long)
    prefix = "dataset-brazilian_coffee_scenes"
    with tarfile.open(COFFEE_TARBALL) as archive:
        lines = archive.extractfile(f"{prefix}/desc.txt").read().decode().split()
        labels = dict(reversed(line.split(".", 1)) for line in lines)   # stem -> class
        stems = ([s for s, c in labels.items() if c == "coffee"][:per_class]
                 + [s for s, c in labels.items() if c == "noncoffee"][:per_class])
        members = [archive.getmember(f"{prefix}/images/{stem}.jpg") for stem in stems]
        archive.extractall(tmp_path, members=members, filter="data")
    pixels = np.stack([np.asarray(Image.open(tmp_path / m.name)) for m in members])   # (N, 64, 64, 3)
    x = torch.tensor(pixels, dtype=torch.float32).permute(0, 3, 1, 2) / 255.0
    x = (x - x.mean(dim=(0, 2, 3), keepdim=True)) / x.std(dim=(0, 2, 3), keepdim=True)
    return x, torch.tensor([labels[s] == "coffee" for s in stems], dtype=torch.long)


def test_vit_fine_tunes_on_coffee_scenes(folders, tmp_path):
    x, y = coffee_images(tmp_path)
    assert x.shape == (96, 3, 64, 64) and y.float().mean() == 0.5
    torch.manual_seed(0)
    adapter = load_adapter("vit", folders["vit"], ImageClassification(2, 3))
    before, after = fine_tune(adapter, x, y, nn.functional.cross_entropy, steps=30, lr=1e-3)
    print(f"ViT coffee scenes train CE: {before:.4f} -> {after:.4f}")
    assert after < 0.8 * before


# ----------------------------------------------------------------------------- fracast (real, zero-shot)

def test_fracast_zero_shot_beats_the_last_value_on_etth1_test_windows():
    horizon = 48   # Fracast's native block: one forward pass per series
    task = load_forecast_task("ETTh1", horizon)
    adapter = load_adapter("fracast", None, Forecasting(task.context, horizon))
    windows = sliding_window_view(task.test, task.context + horizon, axis=0)
    chosen = np.linspace(0, len(windows) - 1, 40).astype(int)     # 40 windows x 7 channels = 280 series
    rows = windows[chosen].reshape(-1, task.context + horizon)
    context, target = torch.tensor(rows[:, :task.context]), rows[:, task.context:]
    forecast = adapter(context.float()).numpy()
    fracast_mse = float(np.mean((forecast - target) ** 2))
    naive_mse = float(np.mean((rows[:, task.context - 1:task.context] - target) ** 2))
    print(f"ETTh1 h={horizon}, {len(rows)} test series: fracast MSE {fracast_mse:.4f}, last value {naive_mse:.4f}")
    assert forecast.shape == target.shape and fracast_mse <= naive_mse

    total, trainable = adapter.n_parameters()
    assert 50_000 < total < 200_000 and trainable == 0
    with pytest.raises(ValueError, match="zero-shot"):
        adapter.trainable_groups("full")
    # (B, context, C) gives the same forecasts as its channels as rows.
    block = torch.tensor(windows[chosen[:2], :, :task.context]).permute(0, 2, 1).float()   # (2, L, 7)
    torch.testing.assert_close(adapter(block).permute(0, 2, 1).reshape(14, horizon),
                               torch.tensor(forecast[:14]), rtol=1e-4, atol=1e-4)


def test_fracast_loads_from_a_release_folder_and_rejects_an_incomplete_one(tmp_path):
    import fracast

    bundled = next(iter(fracast.__path__)) + "/weights"
    adapter = load_adapter("fracast", bundled, Forecasting(64, 8))
    assert adapter(torch.randn(2, 64)).shape == (2, 8)
    folder = tmp_path / "fracast"
    folder.mkdir()
    shutil.copy(f"{bundled}/config.json", folder)
    with pytest.raises(FMCheckpointError, match="model.int8.safetensors is missing.*w8_manifest.json is missing"):
        load_adapter("fracast", folder, Forecasting(64, 8))


# ----------------------------------------------------------------------------- tiny stand-ins
