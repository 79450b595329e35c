"""The paper's objective: pure loss functions, the cycle distances with HED and LPIPS, and their schedules."""

# The relaxed cycle's distances (``distances.py`` builds them); here, free of Keras, for the train command's flags.
CYCLE_DISTANCES = ("edges", "hed_lpips", "l1")
