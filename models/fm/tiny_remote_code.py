"""A tiny remote-code DNA checkpoint, so the `trust_remote_code` path is tested offline for real.

HyenaDNA, Caduceus and DNABERT-2 ship their model code in the checkpoint folder (config.json
`auto_map`). `write_model` writes a folder of the same kind: two Python files, a config naming them,
random weights (safetensors) and a character-level tokenizer (`tokenizer.json`), with HyenaDNA's
interface: character tokens, a `score` head, a `forward` that takes no attention mask. The network
itself is a small residual CNN, NOT the Hyena operator: random init, not the pretrained FM.

The classes are defined here, in the installed package; the two Python files of the folder are
their source text, for loaders that opt into `trust_remote_code`. The launcher's `stand_in: tiny`
never does: `TinyDNAStandInAdapter` builds the model from the classes below and reads only
config.json and model.safetensors from the folder, so a folder in a sweep's cache can hold no code
that runs (a planted `modeling_tinydna.py` is never imported).
"""
from __future__ import annotations

import inspect
from pathlib import Path
from typing import Any

import torch
from torch import nn
from transformers import PretrainedConfig, PreTrainedModel
from transformers.modeling_outputs import BaseModelOutput, SequenceClassifierOutput

from .checkpoint import hf_checkpoint_problems, read_config, summarize_loading_info
from .nucleotide_transformer import HyenaDNAAdapter


class TinyDNAConfig(PretrainedConfig):
    model_type = "tinydna"

    def __init__(self, vocab_size=12, d_model=32, n_layer=2, kernel_size=9, pad_token_id=4, **kwargs):
        self.vocab_size = vocab_size
        self.d_model = d_model
        self.n_layer = n_layer
        self.kernel_size = kernel_size
        super().__init__(pad_token_id=pad_token_id, **kwargs)


class TinyDNAPreTrainedModel(PreTrainedModel):
    config_class = TinyDNAConfig
    base_model_prefix = "backbone"


class TinyDNAModel(TinyDNAPreTrainedModel):
    def __init__(self, config):
        super().__init__(config)
        self.embeddings = nn.Embedding(config.vocab_size, config.d_model)
        self.layers = nn.ModuleList(
            nn.Conv1d(config.d_model, config.d_model, config.kernel_size, padding=config.kernel_size // 2)
            for _ in range(config.n_layer))
        self.post_init()

    def forward(self, input_ids, **kwargs):
        hidden = self.embeddings(input_ids).transpose(1, 2)
        for conv in self.layers:
            hidden = hidden + torch.nn.functional.gelu(conv(hidden))
        return BaseModelOutput(last_hidden_state=hidden.transpose(1, 2))


class TinyDNAForSequenceClassification(TinyDNAPreTrainedModel):
    def __init__(self, config):
        super().__init__(config)
        self.backbone = TinyDNAModel(config)
        self.score = nn.Linear(config.d_model, config.num_labels)
        self.post_init()

    def forward(self, input_ids, labels=None, **kwargs):  # like HyenaDNA: no attention_mask
        hidden = self.backbone(input_ids).last_hidden_state
        keep = (input_ids != self.config.pad_token_id).unsqueeze(-1).to(hidden.dtype)
        pooled = (hidden * keep).sum(1) / keep.sum(1).clamp(min=1.0)
        return SequenceClassifierOutput(logits=self.score(pooled))


# The folder's code files: the source of the classes above, as a remote-code checkpoint ships it.
CONFIG_CODE = ('"""Config of the tiny remote-code DNA stand-in (random init, not the pretrained FM)."""\n'
               "from transformers import PretrainedConfig\n\n\n" + inspect.getsource(TinyDNAConfig))
MODEL_CODE = ('"""Model of the tiny remote-code DNA stand-in: residual CNN with HyenaDNA\'s interface."""\n'
              "import torch\nfrom torch import nn\nfrom transformers import PreTrainedModel\n"
              "from transformers.modeling_outputs import BaseModelOutput, SequenceClassifierOutput\n\n"
              "from .configuration_tinydna import TinyDNAConfig\n\n\n"
              + "\n\n".join(inspect.getsource(c) for c in (TinyDNAPreTrainedModel, TinyDNAModel,
                                                            TinyDNAForSequenceClassification)))

# HyenaDNA's CharacterTokenizer numbering: specials first, then the nucleotides.
VOCABULARY = ["[CLS]", "[SEP]", "[BOS]", "[MASK]", "[PAD]", "[RESERVED]", "[UNK]", "A", "C", "G", "T", "N"]
AUTO_MAP = {
    "AutoConfig": "configuration_tinydna.TinyDNAConfig",
    "AutoModel": "modeling_tinydna.TinyDNAModel",
    "AutoModelForSequenceClassification": "modeling_tinydna.TinyDNAForSequenceClassification",
}


def character_tokenizer() -> Any:
    """HyenaDNA-style character tokenizer over VOCABULARY (built here, never read from a folder)."""
    from tokenizers import Regex, Tokenizer, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast

    vocab = {token: i for i, token in enumerate(VOCABULARY)}
    tokenizer = Tokenizer(models.WordLevel(vocab, unk_token="[UNK]"))
    tokenizer.pre_tokenizer = pre_tokenizers.Split(Regex("."), behavior="isolated")
    return PreTrainedTokenizerFast(tokenizer_object=tokenizer, pad_token="[PAD]", unk_token="[UNK]")


def write_model(folder: Path, shape: dict[str, Any]) -> Any:
    """Write the code and tokenizer files; return the random-init model for the caller to save.

    The model is built from this module's classes: writing runs none of the files it writes.
    """
    (folder / "configuration_tinydna.py").write_text(CONFIG_CODE)
    (folder / "modeling_tinydna.py").write_text(MODEL_CODE)
    settings = {"d_model": 32, "n_layer": 2, "kernel_size": 9, "num_labels": 2}
    settings.update(shape)
    config = TinyDNAConfig(vocab_size=len(VOCABULARY), pad_token_id=VOCABULARY.index("[PAD]"), auto_map=AUTO_MAP,
                           launcher_stand_in="random init, not the pretrained FM", **settings)
    character_tokenizer().save_pretrained(folder)
    return TinyDNAForSequenceClassification(config)


class TinyDNAStandInAdapter(HyenaDNAAdapter):
    """The `hyenadna` adapter on a `write_model` folder, WITHOUT its remote code.

    Model and config classes and the tokenizer come from this module; from the folder only
    config.json (JSON) and model.safetensors (tensors) are read. Its Python files, and any
    `trust_remote_code` option, are ignored: loading it cannot run code found in the folder.
    """

    @classmethod
    def checkpoint_problems(cls, folder: Path, options: dict[str, Any]) -> list[str]:
        problems = hf_checkpoint_problems(folder, ())
        if problems:
            return problems
        model_type = read_config(folder).get("model_type")
        if model_type != TinyDNAConfig.model_type:
            problems.append(f"config.json has model_type {model_type!r}, not the tiny DNA stand-in's "
                            f"{TinyDNAConfig.model_type!r}")
        if not (folder / "model.safetensors").is_file():
            problems.append("model.safetensors is missing (the stand-in is read from safetensors only)")
        return problems

    @classmethod
    def _load(cls, folder: Path, spec: Any, *, trust_remote_code: bool = False,
              **options: Any) -> TinyDNAStandInAdapter:
        if options:
            raise TypeError(f"unexpected options for the {cls.name!r} stand-in: {sorted(options)}")
        config = TinyDNAConfig.from_pretrained(folder, local_files_only=True)
        config.num_labels = spec.n_classes
        model, info = TinyDNAForSequenceClassification.from_pretrained(
            folder, config=config, local_files_only=True, use_safetensors=True, ignore_mismatched_sizes=True,
            output_loading_info=True)
        adapter = cls(spec, folder, model, character_tokenizer())
        adapter.loading_info = summarize_loading_info(info)
        return adapter
