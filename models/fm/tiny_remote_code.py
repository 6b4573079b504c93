"""A tiny remote-code DNA checkpoint, so the `trust_remote_code` path is tested offline for real.

HyenaDNA, Caduceus and DNABERT-2 ship their model code in the checkpoint folder (config.json
`auto_map`). This writes a folder of the same kind: two Python files, a config naming them, random
weights and a character-level tokenizer (`tokenizer.json`), with HyenaDNA's interface: character
tokens, a `score` head, a `forward` that takes no attention mask. The network itself is a small
residual CNN, NOT the Hyena operator: random init, not the pretrained FM.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

CONFIG_CODE = '''"""Config of the tiny remote-code DNA stand-in (random init, not the pretrained FM)."""
from transformers import PretrainedConfig


class TinyDNAConfig(PretrainedConfig):
    model_type = "tinydna"

    def __init__(self, vocab_size=12, d_model=32, n_layer=2, kernel_size=9, pad_token_id=4, **kwargs):
        self.vocab_size = vocab_size
        self.d_model = d_model
        self.n_layer = n_layer
        self.kernel_size = kernel_size
        super().__init__(pad_token_id=pad_token_id, **kwargs)
'''

MODEL_CODE = '''"""Model of the tiny remote-code DNA stand-in: residual CNN with HyenaDNA's interface."""
import torch
from torch import nn
from transformers import PreTrainedModel
from transformers.modeling_outputs import BaseModelOutput, SequenceClassifierOutput

from .configuration_tinydna import TinyDNAConfig


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
'''

# HyenaDNA's CharacterTokenizer numbering: specials first, then the nucleotides.
VOCABULARY = ["[CLS]", "[SEP]", "[BOS]", "[MASK]", "[PAD]", "[RESERVED]", "[UNK]", "A", "C", "G", "T", "N"]
AUTO_MAP = {
    "AutoConfig": "configuration_tinydna.TinyDNAConfig",
    "AutoModel": "modeling_tinydna.TinyDNAModel",
    "AutoModelForSequenceClassification": "modeling_tinydna.TinyDNAForSequenceClassification",
}


def _save_tokenizer(folder: Path) -> None:
    from tokenizers import Regex, Tokenizer, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast

    vocab = {token: i for i, token in enumerate(VOCABULARY)}
    tokenizer = Tokenizer(models.WordLevel(vocab, unk_token="[UNK]"))
    tokenizer.pre_tokenizer = pre_tokenizers.Split(Regex("."), behavior="isolated")
    PreTrainedTokenizerFast(tokenizer_object=tokenizer, pad_token="[PAD]", unk_token="[UNK]").save_pretrained(folder)


def write_model(folder: Path, shape: dict[str, Any]) -> Any:
    """Write the code and tokenizer files; return the random-init model for the caller to save."""
    import json

    from transformers import AutoConfig, AutoModelForSequenceClassification

    (folder / "configuration_tinydna.py").write_text(CONFIG_CODE)
    (folder / "modeling_tinydna.py").write_text(MODEL_CODE)
    settings = {"d_model": 32, "n_layer": 2, "kernel_size": 9, "num_labels": 2}
    settings.update(shape)
    config = {"model_type": "tinydna", "auto_map": AUTO_MAP, "vocab_size": len(VOCABULARY),
              "pad_token_id": VOCABULARY.index("[PAD]"), "launcher_stand_in": "random init, not the pretrained FM",
              **settings}
    (folder / "config.json").write_text(json.dumps(config, indent=2))
    _save_tokenizer(folder)
    loaded = AutoConfig.from_pretrained(folder, trust_remote_code=True, local_files_only=True)
    return AutoModelForSequenceClassification.from_config(loaded, trust_remote_code=True)
