# Two entry points: `make demo` and `make test`. Both create .venv and install from this repo's own files.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed-dev
PYTEST_ARGS ?=

.PHONY: install assets lint test test-fast demo bench pi-check clean

$(STAMP): setup.cfg pyproject.toml
	@echo "make: installing into $(VENV): TensorFlow, Keras, MediaPipe, LiteRT, OpenCV, PyTorch CPU (benchmarks and tests), pytest, ruff; a few minutes on a fresh machine..."
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e ".[dev,bench]"
	touch $(STAMP)
	@echo "make: $(VENV) is ready."

install: $(STAMP)

# MediaPipe face models, pinned by sha256, into ~/.cache/keras_asym (or $$KERAS_ASYM_CACHE).
assets: $(STAMP)
	$(PY) -m edge_demo.runtime.assets

lint: $(STAMP)
	$(PY) -m ruff check .
	$(PY) -m ruff format --check .

test: $(STAMP) assets lint
	$(PY) -m pytest -q -n 2 --dist worksteal $(PYTEST_ARGS)

# The edit loop: everything but the tests marked slow (a real training, the demo, many-step parity), no lint.
test-fast: $(STAMP) assets
	$(PY) -m pytest -q -n 2 --dist worksteal -m "not slow" $(PYTEST_ARGS)

demo: $(STAMP) assets
	$(PY) -m keras_asym.demo --output demo_out

# The benchmarks behind docs/benchmarks.md (two to three hours on 2 cores): our generator beside the
# official one in PyTorch (same weights, one run) at 256 and 512 with every TFLite variant (and the fp32 file with
# XNNPACK's fp16 arithmetic, and the fp32 file with Winograd 3x3 convolutions), every variant alone at 512 (memory,
# threads), G's layers
# alone, one 3x3 convolution direct and as Winograd, one training step (float32 and bfloat16, the latter also with oneDNN kept off AMX,
# which is no stand-in for a CPU without it: docs/training.md) beside the official step, int8 sensitivity per layer (and for the G that benchmarks.unpaired_drawer trained,
# shipped in keras_asym/pretrained), quantization-aware fine-tuning against post-training int8 (an hour; for the
# unpaired G also with the clip chosen on the calibration photos), one int8 file on XNNPACK and on the built-in
# kernels beside QAT's simulation, full int8 with the norms' variance bias corrected, every command on
# hostile inputs (4 minutes), how far the reference G looks to draw a place (minutes), the camera
# demo at 256² (students and the paper's G) and with the student at 512² (and the distilled students' exports, 256² and 512², where benchmarks/results has them), then the
# tables regenerated.
STUDENT_256 = benchmarks/results/distill_exports/student_256px
STUDENT_512 = benchmarks/results/distill_exports/student_512px
UNPAIRED_G = keras_asym/pretrained/unpaired_drawer.keras
bench: $(STAMP) assets
	$(PY) -m benchmarks.inference
	$(PY) -m benchmarks.inference --variants fp32 --xnnpack_fp16 --output docs/results/inference_xnnpack_fp16.json
	$(PY) -m benchmarks.inference --variants fp32,fp32_winograd --output docs/results/inference_winograd.json
	$(PY) -m benchmarks.inference --model $(UNPAIRED_G) --variants fp32,int8,fp32_winograd --work_dir benchmarks/results/inference_unpaired_g \
		--clip_quantile auto --output docs/results/inference_unpaired_g.json
	$(PY) -m benchmarks.export_variants --size 512 --runs 5
	$(PY) -m benchmarks.layer_profile
	$(PY) -m benchmarks.winograd
	$(PY) -m benchmarks.subpixel
	$(PY) -m benchmarks.train_step
	$(PY) -m benchmarks.train_step --jit_compile off --precisions mixed_bfloat16 --output docs/results/train_step_mixed_bfloat16.json
	ONEDNN_MAX_CPU_ISA=AVX512_CORE_BF16 $(PY) -m benchmarks.train_step --jit_compile off --precisions mixed_bfloat16 \
		--output docs/results/train_step_mixed_bfloat16_no_amx.json
	$(PY) -m benchmarks.quant_sensitivity
	$(PY) -m benchmarks.quant_sensitivity --model $(UNPAIRED_G) --unit_sizes= --int16_sizes= --targets 30 \
		--output docs/results/quant_sensitivity_unpaired_g.json
	$(PY) -m benchmarks.quant_sensitivity --model $(UNPAIRED_G) --unit_sizes= --int16_sizes= --targets 30 --clip_quantile 0.999 \
		--output docs/results/quant_sensitivity_unpaired_g_clip_0999.json
	$(PY) -m benchmarks.qat
	$(PY) -m benchmarks.qat --models $(UNPAIRED_G) --sizes 256,512 --clip_quantile auto --nocorrect_variance_bias --output docs/results/qat_unpaired_g.json
	$(PY) -m benchmarks.qat --models $(UNPAIRED_G) --sizes 512 --clip_quantile 0.999 --output docs/results/qat_unpaired_g_512_variance_bias.json
	$(PY) -m benchmarks.int8_runtimes
	$(PY) -m benchmarks.variance_bias
	$(PY) -m benchmarks.activation_ranges --models $(UNPAIRED_G) --output docs/results/activation_ranges_unpaired_g.json
	$(PY) -m benchmarks.activation_ranges --models benchmarks/results/reference_generator.keras --sizes 256 \
		--output docs/results/activation_ranges_reference_g_256.json
	$(PY) -m benchmarks.float_parity
	$(PY) -m benchmarks.hostile_inputs
	$(PY) -m benchmarks.teacher_context
	$(PY) -m benchmarks.pixel_phase
	$(PY) -m benchmarks.edge_fps
	$(PY) -m benchmarks.edge_fps --size 512 --networks student,student_half_res_conv,student_alpha2 --output docs/results/edge_fps_512.json \
		$(if $(wildcard $(STUDENT_256)/drawing_int8.tflite),--export_dirs $(STUDENT_256))
	$(if $(wildcard $(STUDENT_512)/drawing_int8.tflite),$(PY) -m benchmarks.edge_fps --size 512 --networks student_half_res_conv \
		--export_dirs $(STUDENT_512) --output docs/results/edge_fps_512_student.json)
	$(PY) -m benchmarks.report

# The camera demo on a real arm64 Debian bookworm userland (Raspberry Pi OS 64-bit) through QEMU, frame by frame
# against this machine (root: debootstrap, chroot, binfmt_misc; about 40 minutes the first time). Not part of
# `make test`: building the userland alone takes longer than CI allows.
pi-check: $(STAMP) assets
	$(PY) -m benchmarks.pi_check
	$(PY) -m benchmarks.report

clean:
	rm -rf demo_out .pytest_cache
