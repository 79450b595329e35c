# Two entry points: `make demo` and `make test`. Both create .venv and install from this repo's own files.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed-dev
PYTEST_ARGS ?=

.PHONY: install assets test demo bench clean

$(STAMP): setup.cfg pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e ".[dev]"
	touch $(STAMP)

install: $(STAMP)

# MediaPipe face models, pinned by sha256, into ~/.cache/keras_asym (or $$KERAS_ASYM_CACHE).
assets: $(STAMP)
	$(PY) -m edge_demo.assets

test: $(STAMP) assets
	$(PY) -m pytest -q -n 2 $(PYTEST_ARGS)

demo: $(STAMP)
	$(PY) -m keras_asym.demo --output demo_out

bench: $(STAMP)
	$(PY) benchmarks/train_step.py

clean:
	rm -rf demo_out .pytest_cache
