"""Small Keras layers the official PyTorch networks rely on (reflection padding, instance norm, style concat)."""
