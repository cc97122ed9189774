"""Float golden models: the PyTorch M³ViT and its weight formats."""
