"""Distilling the paper's G into the mobile student: the model that trains it and the recipe (config, data, run)."""
