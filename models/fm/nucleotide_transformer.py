"""Genomics FMs: the Nucleotide Transformer (ESM architecture) and remote-code DNA models.

Both take the task library's one-hot (B, 5, L) tensors (A, C, G, T, N; zero columns are padding),
turn them back into strings and tokenize them inside `forward`, and return logits (B, n_classes).

- `NucleotideTransformerAdapter`: NT v1 checkpoints load natively in transformers as ESM
  (`EsmForMaskedLM` weights); we put `EsmForSequenceClassification`'s head (dense -> tanh ->
  out_proj on the <cls> token) on the encoder. The tokenizer is rebuilt from the folder's
  vocab.txt (`models.fm.dna.NucleotideKmerTokenizer`: non-overlapping 6-mers, single nucleotides
  for leftovers and N), because the HF tokenizer files of NT do not reproduce NT's k-mer rule.
- `RemoteCodeDNAAdapter` and its named variants (DNABERT-2, HyenaDNA, Caduceus): these ship their
  own modelling and tokenizer code (config.json `auto_map`). They load only when the caller passes
  `trust_remote_code=True`, from the code files inside the folder (never fetched at run time).
"""
from __future__ import annotations

import inspect
from pathlib import Path
from typing import Any

import torch
from torch import nn

from .base import FMAdapter, SequenceClassification
from .checkpoint import FMCheckpointError, read_config, summarize_loading_info
from .dna import NucleotideKmerTokenizer, sequences_from_one_hot


class NucleotideTransformerAdapter(FMAdapter):
    """NT (InstaDeepAI) + sequence-classification head; forward: one-hot (B,5,L) -> logits (B,n_classes)."""

    name = "nucleotide_transformer"
    public_model_id = "InstaDeepAI/nucleotide-transformer-500m-human-ref"
    head_specs = (SequenceClassification,)
    expected_model_types = ("esm",)
    required_files = ("vocab.txt",)
    lora_target_modules = ("query", "value")

    def __init__(self, spec: SequenceClassification, folder: Path, model: nn.Module, tokenizer: NucleotideKmerTokenizer):
        super().__init__(spec, folder)
        self.model = model
        self.tokenizer = tokenizer
        config = model.config
        # ESM numbers positions from padding_idx + 1, so the table holds max_position_embeddings - pad - 1 tokens.
        self.max_tokens = (config.max_position_embeddings - config.pad_token_id - 1
                           if config.position_embedding_type == "absolute" else None)

    @classmethod
    def _load(cls, folder: Path, spec: SequenceClassification, **options: Any) -> "NucleotideTransformerAdapter":
        if options:
            raise TypeError(f"unexpected options for {cls.name!r}: {sorted(options)}")
        from transformers import EsmConfig, EsmForSequenceClassification

        tokenizer = NucleotideKmerTokenizer.from_file(folder / "vocab.txt")
        config = EsmConfig.from_pretrained(folder, local_files_only=True)
        if config.vocab_size != len(tokenizer):
            raise FMCheckpointError(folder, cls.public_model_id, [
                f"vocab.txt has {len(tokenizer)} tokens but config.json says vocab_size={config.vocab_size}"])
        config.num_labels = spec.n_classes
        model, info = EsmForSequenceClassification.from_pretrained(
            folder, config=config, local_files_only=True, ignore_mismatched_sizes=True, output_loading_info=True)
        adapter = cls(spec, folder, model, tokenizer)
        adapter.loading_info = summarize_loading_info(info)
        return adapter

    @property
    def backbone(self) -> nn.Module:
        return self.model.esm

    @property
    def head(self) -> nn.Module:
        return self.model.classifier

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        ids, mask = self.tokenizer.encode(sequences_from_one_hot(x), self.max_tokens)
        device = next(self.parameters()).device
        return self.model(input_ids=ids.to(device), attention_mask=mask.to(device)).logits


class RemoteCodeDNAAdapter(FMAdapter):
    """A DNA FM whose modelling code ships in the checkpoint folder; forward: one-hot (B,5,L) -> logits."""

    name = "dna_remote_code"
    head_specs = (SequenceClassification,)
    head_attribute_names = ("classifier", "score", "head")
    tokenizer_files = ("tokenizer_config.json",)

    def __init__(self, spec: SequenceClassification, folder: Path, model: nn.Module, tokenizer: Any):
        super().__init__(spec, folder)
        self.model = model
        self.tokenizer = tokenizer
        # Some of these models (HyenaDNA, Caduceus) take no attention mask: pass only what forward accepts.
        self._forward_arguments = set(inspect.signature(model.forward).parameters)

    @classmethod
    def checkpoint_problems(cls, folder: Path, options: dict[str, Any]) -> list[str]:
        problems = super().checkpoint_problems(folder, options)
        if problems:
            return problems
        config = read_config(folder)
        auto_map = config.get("auto_map") or {}
        if not auto_map:
            return ["config.json has no auto_map, so this is not a remote-code checkpoint"]
        problems.extend(f"{name} (named in config.json auto_map) is missing"
                        for name in sorted(_code_files(auto_map)) if not (folder / name).is_file())
        problems.extend(f"{name} is missing" for name in cls.tokenizer_files if not (folder / name).is_file())
        return problems

    @classmethod
    def _load(cls, folder: Path, spec: SequenceClassification, *, trust_remote_code: bool = False,
              **options: Any) -> "RemoteCodeDNAAdapter":
        if options:
            raise TypeError(f"unexpected options for {cls.name!r}: {sorted(options)}")
        if not trust_remote_code:
            code = ", ".join(sorted(_code_files(read_config(folder)["auto_map"])))
            raise PermissionError(f"{folder} holds a model that runs its own Python code ({code}): read it, "
                                  f"then pass trust_remote_code=True to load it")
        from transformers import AutoConfig, AutoModelForSequenceClassification, AutoTokenizer

        common = {"trust_remote_code": True, "local_files_only": True}
        config = AutoConfig.from_pretrained(folder, **common)
        config.num_labels = spec.n_classes
        model, info = AutoModelForSequenceClassification.from_pretrained(
            folder, config=config, ignore_mismatched_sizes=True, output_loading_info=True, **common)
        tokenizer = AutoTokenizer.from_pretrained(folder, **common)
        adapter = cls(spec, folder, model, tokenizer)
        adapter.loading_info = summarize_loading_info(info)
        return adapter

    @property
    def backbone(self) -> nn.Module:
        backbone = getattr(self.model, getattr(self.model, "base_model_prefix", ""), None)
        if not isinstance(backbone, nn.Module):
            # Not AttributeError: nn.Module.__getattr__ would swallow the message.
            raise RuntimeError(f"{type(self.model).__name__} has no backbone attribute "
                                 f"{self.model.base_model_prefix!r}")
        return backbone

    @property
    def head(self) -> nn.Module:
        for attribute in self.head_attribute_names:
            module = getattr(self.model, attribute, None)
            if isinstance(module, nn.Module):
                return module
        raise RuntimeError(f"{type(self.model).__name__} has none of the head attributes {self.head_attribute_names}")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        encoded = self.tokenizer(sequences_from_one_hot(x), padding=True, return_tensors="pt")
        device = next(self.parameters()).device
        inputs = {k: v.to(device) for k, v in encoded.items() if k in self._forward_arguments}
        return self.model(**inputs).logits


def _code_files(auto_map: dict[str, Any]) -> set[str]:
    """Python files named by an auto_map ("module.Class", "repo--module.Class" or [slow, fast] lists)."""
    files = set()
    for reference in auto_map.values():
        for item in reference if isinstance(reference, (list, tuple)) else [reference]:
            if item:
                module = item.split("--")[-1].rsplit(".", 1)[0]
                files.add(f"{module}.py")
    return files


class DNABERT2Adapter(RemoteCodeDNAAdapter):
    name = "dnabert2"
    public_model_id = "zhihan1996/DNABERT-2-117M"
    lora_target_modules = ("Wqkv",)


class HyenaDNAAdapter(RemoteCodeDNAAdapter):
    name = "hyenadna"
    public_model_id = "LongSafari/hyenadna-tiny-1k-seqlen-hf"


class CaduceusAdapter(RemoteCodeDNAAdapter):
    name = "caduceus"
    public_model_id = "kuleshov-group/caduceus-ph_seqlen-131k_d_model-256_n_layer-16"
