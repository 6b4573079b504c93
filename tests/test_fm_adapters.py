"""FM adapters: loading from local HF folders, clear errors, parameter accounting, forward contracts
(the few real fine-tuning steps on real data: tests/test_fm_finetune.py).

The checkpoints are the random-init stand-ins of `models.fm.tiny`, written to tmp dirs and loaded
through the same `from_pretrained` path a real checkpoint takes. Fracast is the real pretrained FM
bundled in its wheel.
"""
from __future__ import annotations

import importlib.util
import json
import shutil

import pytest
import torch
from safetensors.torch import load_file
from torch import nn

from models.fm import tiny
from models.fm.base import (
    ADAPTERS,
    FMCheckpointError,
    FMUnavailableError,
    Forecasting,
    ImageClassification,
    SequenceClassification,
    UnknownAdapterError,
    load_adapter,
)
from models.fm.dna import NucleotideKmerTokenizer, nt_vocabulary, one_hot_dna, sequences_from_one_hot
from tests.conftest import SHARED_DATA

# The machine's 2 cores are shared: more than one intra-op thread makes tiny models ~50x slower.
torch.set_num_threads(1)

TATA_TRAIN = SHARED_DATA / "genomics/GUE/prom/prom_300_tata/train.csv.gz"
COFFEE_TARBALL = SHARED_DATA / "satellite/brazilian_coffee_scenes/dataset-brazilian_coffee_scenes.tar.gz"
CONTEXT, HORIZON = 96, 24


@pytest.fixture(scope="module")
def folders(tmp_path_factory):
    root = tmp_path_factory.mktemp("fm")
    return {
        "nucleotide_transformer": tiny.write_tiny_checkpoint("nucleotide_transformer", root / "nt", max_tokens=64),
        "patchtst": tiny.write_tiny_checkpoint("patchtst", root / "patchtst", context_length=CONTEXT,
                                               prediction_length=HORIZON),
        "patchtsmixer": tiny.write_tiny_checkpoint("patchtsmixer", root / "patchtsmixer", context_length=CONTEXT,
                                                   prediction_length=HORIZON),
        "vit": tiny.write_tiny_checkpoint("vit", root / "vit"),
        "hyenadna": tiny.write_tiny_checkpoint("hyenadna", root / "hyenadna"),
    }


# name -> (head spec, options, input maker, expected output shape, head-name prefix in adapter.model)
CASES = {
    "nucleotide_transformer": (SequenceClassification(2), {}, lambda: one_hot_dna(["ACGTACGGTA" * 29 + "NNACGTACGT", "GATTACA"], 300),
                               (2, 2), "classifier."),
    "hyenadna": (SequenceClassification(3), {"trust_remote_code": True}, lambda: one_hot_dna(["ACGT" * 50] * 2, 300),
                 (2, 3), "score."),
    "patchtst": (Forecasting(CONTEXT, HORIZON), {}, lambda: torch.randn(4, CONTEXT), (4, HORIZON), "head."),
    "patchtsmixer": (Forecasting(CONTEXT, HORIZON), {}, lambda: torch.randn(4, CONTEXT), (4, HORIZON), "head."),
    "vit": (ImageClassification(4, 13), {}, lambda: torch.randn(2, 13, 64, 64), (2, 4), "classifier."),
}


def load(name, folders, **extra):
    spec, options, *_ = CASES[name]
    return load_adapter(name, folders[name], spec, **{**options, **extra})


def requires_grad_count(module: nn.Module, prefix: str = "", exclude: str | None = None) -> int:
    return sum(p.numel() for n, p in module.named_parameters()
               if p.requires_grad and n.startswith(prefix) and not (exclude and n.startswith(exclude)))


# ----------------------------------------------------------------------------- registry and errors

def test_registry_names_every_adapter_and_suggests_close_names():
    assert {"nucleotide_transformer", "dnabert2", "hyenadna", "caduceus", "patchtst", "patchtsmixer", "chronos",
            "vit", "satmae", "scalemae", "croma", "fracast"} <= set(ADAPTERS)
    with pytest.raises(UnknownAdapterError, match="did you mean 'patchtst'"):
        ADAPTERS["patchtsd"]


@pytest.mark.parametrize("name, spec, model_id", [
    ("nucleotide_transformer", SequenceClassification(2), "InstaDeepAI/nucleotide-transformer-500m-human-ref"),
    ("patchtst", Forecasting(CONTEXT, HORIZON), "ibm-granite/granite-timeseries-patchtst"),
    ("patchtsmixer", Forecasting(CONTEXT, HORIZON), "ibm-granite/granite-timeseries-patchtsmixer"),
    ("vit", ImageClassification(2, 3), "google/vit-base-patch16-224-in21k"),
    ("satmae", ImageClassification(2, 3), "MVRL/satmae-vitlarge-fmow-pretrain-800"),
    ("dnabert2", SequenceClassification(2), "zhihan1996/DNABERT-2-117M"),
    ("fracast", Forecasting(CONTEXT, HORIZON), "ztxtech/fracast-0"),
])
def test_missing_folder_names_folder_model_id_and_fetch_command(tmp_path, name, spec, model_id):
    folder = tmp_path / "not-downloaded"
    with pytest.raises(FMCheckpointError) as caught:
        load_adapter(name, folder, spec)
    message = str(caught.value)
    assert str(folder) in message and model_id in message
    assert f"hf download {model_id} --local-dir {folder}" in message and "allow_download=True" in message
    assert not folder.exists(), "nothing may be fetched without allow_download=True"


def test_incomplete_folder_lists_every_missing_piece(folders, tmp_path):
    folder = shutil.copytree(folders["nucleotide_transformer"], tmp_path / "nt")
    (folder / "model.safetensors").unlink()
    (folder / "vocab.txt").unlink()
    with pytest.raises(FMCheckpointError) as caught:
        load("nucleotide_transformer", {"nucleotide_transformer": folder})
    assert "no weights" in str(caught.value) and "vocab.txt is missing" in str(caught.value)
    assert caught.value.problems and len(caught.value.problems) == 2

    # A clone without git-lfs leaves pointer stubs where the weights should be.
    shutil.copy(folders["nucleotide_transformer"] / "vocab.txt", folder / "vocab.txt")
    (folder / "model.safetensors").write_text("version https://git-lfs.github.com/spec/v1\noid sha256:00\nsize 9\n")
    with pytest.raises(FMCheckpointError, match="model.safetensors is a Git LFS pointer"):
        load("nucleotide_transformer", {"nucleotide_transformer": folder})

    # A sharded checkpoint with a shard missing.
    (folder / "model.safetensors").unlink()
    (folder / "model.safetensors.index.json").write_text(json.dumps(
        {"weight_map": {"a": "model-00001-of-00002.safetensors", "b": "model-00002-of-00002.safetensors"}}))
    with pytest.raises(FMCheckpointError, match="model-00001-of-00002.safetensors, model-00002-of-00002"):
        load("nucleotide_transformer", {"nucleotide_transformer": folder})


def test_folder_of_another_model_kind_is_refused(folders):
    with pytest.raises(FMCheckpointError, match="model_type 'vit'.*expects 'esm'"):
        load_adapter("nucleotide_transformer", folders["vit"], SequenceClassification(2))


def test_remote_code_needs_explicit_trust_and_its_code_files(folders, tmp_path):
    with pytest.raises(PermissionError, match="modeling_tinydna.py.*trust_remote_code=True"):
        load_adapter("hyenadna", folders["hyenadna"], SequenceClassification(2))
    folder = shutil.copytree(folders["hyenadna"], tmp_path / "hyena")
    (folder / "modeling_tinydna.py").unlink()
    with pytest.raises(FMCheckpointError, match="modeling_tinydna.py .named in config.json auto_map. is missing"):
        load_adapter("hyenadna", folder, SequenceClassification(2), trust_remote_code=True)


def test_chronos_without_its_package_says_what_to_install(tmp_path):
    if importlib.util.find_spec("chronos") is not None:
        pytest.skip("chronos is installed here; this checks the message given without it")
    with pytest.raises(FMUnavailableError, match="pip install chronos-forecasting"):
        load_adapter("chronos", tmp_path, Forecasting(CONTEXT, HORIZON))


def test_head_spec_of_the_wrong_domain_is_refused(folders):
    with pytest.raises(TypeError, match="builds ImageClassification heads"):
        load_adapter("vit", folders["vit"], Forecasting(CONTEXT, HORIZON))
    with pytest.raises(ValueError, match="n_classes must be a positive integer"):
        SequenceClassification(0)


# ----------------------------------------------------------------------------- DNA encodings

def test_kmer_tokenizer_follows_the_nucleotide_transformer_rule():
    tokenizer = NucleotideKmerTokenizer(nt_vocabulary(6))
    # 6-mers from the start of each N-free stretch; leftovers and N as single nucleotides.
    assert tokenizer.tokenize("ACGTACGTACNGG") == ["ACGTAC", "G", "T", "A", "C", "N", "G", "G"]
    assert tokenizer.tokenize("AAAAAACCCCCCT") == ["AAAAAA", "CCCCCC", "T"]
    ids, mask = tokenizer.encode(["AAAAAACCCCCC", "A"])
    vocab = nt_vocabulary(6)
    assert ids[0].tolist() == [vocab.index("<cls>"), vocab.index("AAAAAA"), vocab.index("CCCCCC")]
    assert ids[1].tolist() == [vocab.index("<cls>"), vocab.index("A"), vocab.index("<pad>")]
    assert mask.tolist() == [[1, 1, 1], [1, 1, 0]]
    with pytest.raises(ValueError, match="needs 3 tokens"):
        tokenizer.encode(["AAAAAACCCCCC"], max_tokens=2)


def test_one_hot_round_trip_drops_padding_and_maps_unknown_letters_to_n():
    x = one_hot_dna(["ACGTN", "acgR"], length=7)
    assert x.shape == (2, 5, 7) and x[1, :, 4:].sum() == 0
    assert x[0, :, 0].tolist() == [1, 0, 0, 0, 0]
    assert sequences_from_one_hot(x) == ["ACGTN", "ACGN"]
    with pytest.raises(ValueError, match=r"\(B, 5, L\)"):
        sequences_from_one_hot(torch.zeros(2, 4, 7))


# ----------------------------------------------------------------------------- parameters and modes

@pytest.mark.parametrize("name", list(CASES))
def test_parameter_counts_per_mode(folders, name):
    adapter = load(name, folders)
    head_prefix = CASES[name][4]
    total = sum(t.numel() for t in {id(p): p for _, p in adapter.model.named_parameters()}.values())
    head = sum(p.numel() for n, p in adapter.model.named_parameters() if n.startswith(head_prefix))
    # Fixed tables (PatchTST's sinusoidal position encoding) are never trainable.
    fixed = adapter.model.model.encoder.positional_encoder.position_enc.numel() if name == "patchtst" else 0
    assert adapter.n_parameters() == (total, total - fixed)

    adapter.trainable_groups("head")
    assert requires_grad_count(adapter.model) == requires_grad_count(adapter.model, head_prefix) == head
    assert adapter.n_parameters().trainable == head

    adapter.trainable_groups("full")
    assert requires_grad_count(adapter.model) == total - fixed
    assert 0 < head < total - fixed

    if name == "hyenadna":
        with pytest.raises(ValueError, match="lora_targets"):
            adapter.trainable_groups("lora")
        return
    rank = 4
    targets = adapter.lora_target_modules
    expected_lora = sum(rank * (m.in_features + m.out_features) for n, m in adapter.backbone.named_modules()
                        if isinstance(m, nn.Linear) and n.rsplit(".", 1)[-1] in targets)
    groups = adapter.trainable_groups("lora", lora_rank=rank)
    lora = sum(p.numel() for n, p in adapter.model.named_parameters() if "lora_" in n)
    assert expected_lora > 0 and lora == expected_lora
    assert {g["name"] for g in groups} == {"head", "lora"}
    assert adapter.n_parameters() == (total + lora, head + lora)


def test_lora_starts_as_the_pretrained_function_and_trains_only_lora_and_head(folders):
    adapter = load("nucleotide_transformer", folders).eval()
    x = one_hot_dna(["ACGTAGGCTA" * 30, "TTGACA" * 40], 300)
    before = adapter(x).detach()
    optimizer = torch.optim.AdamW(adapter.trainable_groups("lora"), lr=1e-2)
    assert torch.allclose(adapter(x), before, atol=1e-6), "LoRA's B matrices start at zero"
    snapshot = {n: p.detach().clone() for n, p in adapter.named_parameters()}
    nn.functional.cross_entropy(adapter(x), torch.tensor([0, 1])).backward()
    optimizer.step()
    changed = {n for n, p in adapter.named_parameters() if not torch.equal(p, snapshot[n])}
    assert changed and all("lora_" in n or ".classifier." in n for n in changed)
    assert any("lora_" in n for n in changed) and any(".classifier." in n for n in changed)
    with pytest.raises(ValueError, match="did you mean 'lora'"):
        adapter.trainable_groups("lroa")


# ----------------------------------------------------------------------------- forward contracts

@pytest.mark.parametrize("name", list(CASES))
def test_forward_shapes(folders, name):
    adapter = load(name, folders).eval()
    _, _, make_input, expected, _ = CASES[name]
    with torch.no_grad():
        out = adapter(make_input())
    assert out.shape == expected and out.dtype == torch.float32 and torch.isfinite(out).all()
    assert adapter.is_stand_in


@pytest.mark.parametrize("name", ["patchtst", "patchtsmixer"])
def test_forecasters_are_channel_independent(folders, name):
    adapter = load(name, folders).eval()
    x = torch.randn(3, CONTEXT, 7)
    with torch.no_grad():
        joint = adapter(x)
        per_channel = torch.stack([adapter(x[:, :, c]) for c in range(7)], dim=-1)
    assert joint.shape == (3, HORIZON, 7)
    torch.testing.assert_close(joint, per_channel, rtol=1e-4, atol=1e-5)
    with pytest.raises(ValueError, match=rf"\(B, {CONTEXT}\)"):
        adapter(torch.randn(3, CONTEXT + 1))


def test_new_context_or_horizon_reinitialises_only_what_depends_on_it(folders):
    # The tiny PatchTST mean-pools patches, so its head depends on the horizon, not the context.
    longer_context = load_adapter("patchtst", folders["patchtst"], Forecasting(2 * CONTEXT, HORIZON))
    assert longer_context.loading_info["mismatched"] == ["model.encoder.positional_encoder.position_enc"]
    assert longer_context(torch.randn(2, 2 * CONTEXT)).shape == (2, HORIZON)
    longer_horizon = load_adapter("patchtst", folders["patchtst"], Forecasting(CONTEXT, 2 * HORIZON))
    assert longer_horizon.loading_info["mismatched"] == ["head.projection.bias", "head.projection.weight"]
    assert longer_horizon(torch.randn(2, CONTEXT)).shape == (2, 2 * HORIZON)
    unchanged = load_adapter("patchtst", folders["patchtst"], Forecasting(CONTEXT, HORIZON))
    assert unchanged.loading_info == {"missing": [], "unexpected": [], "mismatched": []}


def test_vit_band_adaptation_repeats_or_reinitialises_the_patch_kernels(folders):
    source = load_file(str(folders["vit"] / "model.safetensors"))["embeddings.patch_embeddings.projection.weight"]
    assert source.shape[1] == 3
    repeated = load_adapter("vit", folders["vit"], ImageClassification(2, 13))
    kernel = repeated.model.vit.embeddings.patch_embeddings.projection.weight.detach()
    for band in range(13):
        torch.testing.assert_close(kernel[:, band], source[:, band % 3] * 3 / 13)
    assert "repeated 3 -> 13" in repeated.band_adaptation
    fresh = load_adapter("vit", folders["vit"], ImageClassification(2, 13), band_init="reinit")
    kernel = fresh.model.vit.embeddings.patch_embeddings.projection.weight.detach()
    assert not torch.allclose(kernel[:, :3], source) and "re-initialised" in fresh.band_adaptation
    same = load_adapter("vit", folders["vit"], ImageClassification(2, 3))
    torch.testing.assert_close(same.model.vit.embeddings.patch_embeddings.projection.weight.detach(), source)
    # Smaller patches than the checkpoint's 64 px: position embeddings are interpolated.
    assert same(torch.randn(1, 3, 32, 32)).shape == (1, 2)


# ----------------------------------------------------------------------------- fine-tuning on real data


def test_tiny_cli_writes_a_labelled_random_stand_in(tmp_path):
    folder = tmp_path / "vit16"
    assert tiny.main(["vit", str(folder), "patch_size=16"]) == 0
    assert "random init, not the pretrained FM" in (folder / "README.txt").read_text()
    config = json.loads((folder / "config.json").read_text())
    assert config["patch_size"] == 16 and config["launcher_stand_in"]
    with pytest.raises(ValueError, match="known kinds are"):
        tiny.write_tiny_checkpoint("gpt", tmp_path / "gpt")


def test_hyenadna_stand_in_loads_without_its_code_files_and_matches_the_remote_code_model(folders, tmp_path):
    from models.fm.tiny_remote_code import TinyDNAStandInAdapter

    remote = load_adapter("hyenadna", folders["hyenadna"], SequenceClassification(2), trust_remote_code=True)
    folder = shutil.copytree(folders["hyenadna"], tmp_path / "no_code")
    for name in ("modeling_tinydna.py", "configuration_tinydna.py", "tokenizer.json", "tokenizer_config.json"):
        (folder / name).unlink()              # nothing but config.json and model.safetensors is read
    stand_in = TinyDNAStandInAdapter.from_pretrained(folder, SequenceClassification(2))
    assert type(stand_in.model).__module__ == "models.fm.tiny_remote_code"
    assert stand_in.name == "hyenadna" and stand_in.is_stand_in
    weights = load_file(folders["hyenadna"] / "model.safetensors")
    assert all(torch.equal(stand_in.model.state_dict()[k], w) for k, w in weights.items())
    x = one_hot_dna(["ACGTNACG" * 20, "GATTACA"], 300)
    assert torch.equal(stand_in(x), remote(x))
    assert stand_in.n_parameters() == remote.n_parameters()

    (folder / "model.safetensors").rename(folder / "pytorch_model.bin")   # pickle-based weights: refused
    with pytest.raises(FMCheckpointError, match="model.safetensors is missing"):
        TinyDNAStandInAdapter.from_pretrained(folder, SequenceClassification(2))
