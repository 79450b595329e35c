"""What the benchmarks share and the library does not ship: the shared data's place, the held-out photo
split, child-process timing, training time across sessions and the style judge."""
