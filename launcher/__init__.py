"""launcher: tune supervised baselines and foundation models under one budget, compare them."""
