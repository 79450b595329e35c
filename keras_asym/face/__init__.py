"""Faces in image files: detection for the CLIs (over ``edge_demo.runtime.faces``), part masks, background whitening."""
