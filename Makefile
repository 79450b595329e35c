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
	$(PY) -m pip install --quiet -e ".[dev,qat]"
	# tensorflow-model-optimization declares numpy<2 but runs on numpy 2 (tested by
	# tests/test_export.py); installed without its pins so it cannot downgrade numpy.
	$(PY) -m pip install --quiet --no-deps "tensorflow-model-optimization==0.7.3"
	touch $(STAMP)

install: $(STAMP)

# MediaPipe face models, pinned by sha256, into ~/.cache/keras_asym (or $$KERAS_ASYM_CACHE).
assets: $(STAMP)
	$(PY) -m edge_demo.assets

test: $(STAMP) assets
	$(PY) -m pytest -q -n 2 $(PYTEST_ARGS)

demo: $(STAMP) assets
	$(PY) -m keras_asym.demo --output demo_out

# The export and edge benchmarks (about an hour on 2 cores): reference generator, every variant, edge FPS.
bench: $(STAMP) assets
	test -f benchmarks/results/reference_generator.keras || $(PY) benchmarks/reference_generator.py
	$(PY) -m export.benchmark --model benchmarks/results/reference_generator.keras --size 512 --export_dir benchmarks/results/export_512
	$(PY) benchmarks/edge_fps.py --export_dirs benchmarks/results/export_256

clean:
	rm -rf demo_out .pytest_cache
