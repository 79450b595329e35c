"""Datasets: the training input pipeline, procedural portraits, jitter, test clips and random batches."""
