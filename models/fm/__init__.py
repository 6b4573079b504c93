"""Foundation-model adapters: load a pretrained checkpoint from a local folder, forecast or classify."""
