"""Helpers every layer of the library uses: robust image reading, atomic writes, HTML pages, dataclass -> absl flags."""
