"""The one training loop of every epoch-based method: `epoch_loop.py` (segments, outbox lines,
validation-selected weights), `ranks.py` (DDP / DeepSpeed process groups), `checkpoints.py` (seeds, RNG
capture, atomic checkpoint folders).

May import: torch, numpy, deepspeed, models, tasks. Nothing of launcher above it (only launcher.errors).
"""
