"""Foundation-model adapters: load a pretrained checkpoint from a local folder, forecast or classify.

- `base`: the `FMAdapter` interface, task-head specs, training modes, the lazy `ADAPTERS` registry.
- `checkpoint`: checking local Hugging Face folders, `FMCheckpointError`, the explicit download.
- `nucleotide_transformer`, `patchtst`, `vit`, `fracast_adapter`: the adapters per domain.
- `dna`: one-hot <-> strings and NT's k-mer tokenizer.
- `tiny`, `tiny_remote_code`: random-init stand-in checkpoints for offline tests and CPU sweeps.
- `fracast`: the Fracast-0 forecaster that the launcher's `fracast` method uses directly.

Importing this package imports no adapter (and so not transformers).
"""
