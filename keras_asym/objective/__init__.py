"""The paper's objective: pure loss functions, the cycle distances with HED and LPIPS, and their schedules."""
