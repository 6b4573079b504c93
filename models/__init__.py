"""Pure model code: Auto-AR, naive forecasters, convolutional backbones, foundation-model adapters."""
