"""Running models outside PyTorch: ONNX export (``export``) and the graph backends (``backends``)."""
