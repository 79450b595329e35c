"""Official PyTorch checkpoints to Keras: a safe ``.pth`` reader and the name mapping."""
