"""Where full-integer quantization loses the drawing: each layer quantized alone, and the mixed-precision plan that follows.

    python -m benchmarks.quant_sensitivity                       # the reference generator at 256 and 512
    python -m benchmarks.quant_sensitivity --model g.keras --sizes 256 --output mine.json

The generator is taken three times: as trained; with its norm inputs balanced (``export.balance``: the same float
function, every channel on one int8 scale); and balanced and clipped at the calibration's ``--clip_quantile`` (by
default the exporter's ``CLIP_QUANTILE``), the form a full-integer export ships. Each is calibrated once per size on aligned photos (the calibration half of the shared
photos) and then requantized from that calibration for every row, so rows differ only in what is quantized:

- whole-model rows: every op int8 (per-channel and per-tensor weights), every op 16x8 (int16 activations, int8
  weights), every op int8 but the instance norms; each form with every op int8; the clip's bound and the largest
  value of each balanced norm input;
- on the balanced and clipped form:
  - *unit alone* (at ``--unit_sizes``): one unit (a convolution with its padding, an instance norm with its ReLU,
    a residual add) in int8, everything else float: the PSNR that unit alone costs;
  - *block kept float*: everything int8 but one block (stem, down1, ..., block9, up1, up2, head): what it gains;
  - the *plan* for each ``--targets`` dB: the fewest units kept float, costliest first, that reach the target,
    with its latency beside fp32's and full int8's (2 threads, LiteRT + XNNPACK, own process).

Quality is PSNR of the uint8 drawing against the float Keras drawing on ``--photos`` held-out photos (styles cycled),
as ``benchmarks.export_variants`` measures it. ``benchmarks.report`` renders the tables into docs/benchmarks.md.
"""

from __future__ import annotations

import json
import tempfile
import time
from pathlib import Path

import numpy as np
from absl import flags

from benchmarks.common import results
from benchmarks.common.heldout import photo_split
from benchmarks.common.reference import reference_model
from benchmarks.common.sensitivity import TRANSPOSE_CONVS, Sensitivity, block_of
from benchmarks.common.timing import child_timing
from edge_demo.runtime.generator import TFLiteGenerator
from edge_demo.runtime.hashing import file_sha256
from edge_demo.runtime.pixels import to_model, to_pixels
from edge_demo.runtime.progress import Progress
from edge_demo.runtime.styles import ONE_HOTS
from export import tflite
from export.balance import CLIP_QUANTILE, for_integer, norm_input_bounds
from keras_asym.evaluation import metrics
from keras_asym.inference.keras_generator import load_generator
from keras_asym.layers.basic import InstanceNormalization
from keras_asym.utils.imageio import list_images

_MODEL = flags.DEFINE_string("model", None, "Generator .keras (default: the benchmarks' reference generator).")
_SIZES = flags.DEFINE_list("sizes", ["256", "512"], "Square sizes to analyse.")
_PHOTOS = flags.DEFINE_integer("photos", 10, "Held-out photos scored per row.", lower_bound=1)
_CALIBRATION = flags.DEFINE_integer("calibration", 16, "Calibration photos.", lower_bound=1)
_UNIT_SIZES = flags.DEFINE_list("unit_sizes", ["256"], "Sizes at which every unit alone is scored (about 60 models each).")
_INT16_SIZES = flags.DEFINE_list(
    "int16_sizes", ["256"], "Sizes with the 16x8 row: LiteRT runs it on reference kernels, 20 s a drawing at 256 (minutes at 512)."
)
_TARGETS = flags.DEFINE_list("targets", ["30", "35", "40"], "PSNR targets (dB) the mixed-precision plans must reach.")
_RUNS = flags.DEFINE_integer("runs", 5, "Timed runs per latency (median).", lower_bound=1)
_CLIP = flags.DEFINE_float(
    "clip_quantile",
    CLIP_QUANTILE,
    "Share of each balanced norm input kept unclipped (the exporter's --clip_quantile).",
    lower_bound=0.5,
    upper_bound=1.0,
)
_OUTPUT = flags.DEFINE_string("output", None, "Results JSON (default: docs/results/quant_sensitivity.json).")


BALANCED = "int8, norm inputs balanced and clipped (every op int8)"


def float_drawings(model, photos: list[np.ndarray]) -> list[np.ndarray]:
    return [
        to_pixels(np.asarray(model({"photo": to_model(p)[None], "style": ONE_HOTS[i % 3][None]}, training=False))[0, ..., 0])
        for i, p in enumerate(photos)
    ]


def psnr(path: Path, photos: list[np.ndarray], references: list[np.ndarray]) -> float:
    """Mean PSNR (dB) of the model's uint8 drawings against the float Keras drawings, through the edge runtime."""
    runner = TFLiteGenerator(path, threads=2, probe=False)
    return float(np.mean([metrics.psnr(runner.draw(p, ONE_HOTS[i % 3]), r) for i, (p, r) in enumerate(zip(photos, references))]))


def analyse(model_path: Path, size: int, quality_dir, calibration_dir, work: Path) -> dict:
    started = time.perf_counter()
    calibration, calibration_source = tflite.calibration_photos(calibration_dir, size, size, _CALIBRATION.value)
    photos, photo_source = tflite.calibration_photos(quality_dir, size, size, _PHOTOS.value, seed=1)
    print(f"[{size}] calibrating on {calibration_source} ...", flush=True)
    generator = load_generator(model_path)
    # both forms square the norm's deviations by a product, as the exporter's integer variants do
    plain = Sensitivity(for_integer(generator, None), size, calibration, work / f"plain_{size}")
    unclipped = Sensitivity(for_integer(generator, calibration, clip_quantile=None), size, calibration, work / f"unclipped_{size}")
    bounds = norm_input_bounds(unclipped.model, calibration, _CLIP.value)  # where the clip falls, in balanced units
    s = Sensitivity(for_integer(generator, calibration, _CLIP.value), size, calibration, work / f"balanced_{size}")
    references = float_drawings(generator, photos)
    score = lambda model, name: psnr(s.write(model, name), photos, references)  # noqa: E731

    norms = [u for u in s.order if u != TRANSPOSE_CONVS and isinstance(s.model.get_layer(u), InstanceNormalization)]
    whole = {
        "fp32": plain.fp32,
        "fp32, norm inputs balanced and clipped": s.fp32,
        "no unit in int8 (the floor: float transpose convolutions keep int8 weights)": plain.only([]),
        "int8 (per-channel weights)": plain.quantize(),
        "int8 (per-tensor weights)": plain.quantize(per_channel=False),
        **({"16x8 (int16 activations)": plain.int16_activations()} if str(size) in _INT16_SIZES.value else {}),
        "int8, instance norms float": plain.all_but(norms),
        "int8, norm inputs balanced, not clipped": unclipped.quantize(),
        BALANCED: s.quantize(),
        "int8, norm inputs balanced, per-tensor weights": s.quantize(per_channel=False),
        "int8, norm inputs balanced, instance norms float": s.all_but(norms),
    }
    rows = {}
    for name, model in whole.items():
        try:
            rows[name] = {"psnr_db": score(model, "whole"), "mb": len(model) / 1e6}
        except ValueError as err:  # converted, but LiteRT has no kernel for it: a finding, not a crash
            rows[name] = {"psnr_db": None, "mb": len(model) / 1e6, "error": str(err).split(": ", 1)[-1]}
        print(f"[{size}] {name}: {rows[name]}", flush=True)

    # the sensitivity of the model as it would ship: balanced, every unit int8 but those named
    blocks = list(dict.fromkeys(block_of(u) for u in s.order))
    units = s.order if str(size) in _UNIT_SIZES.value else []
    progress = Progress(len(units) + len(blocks), f"[{size}] units alone and blocks kept float", unit="models")
    alone = {}
    for i, unit in enumerate(units):
        alone[unit] = score(s.only([unit]), "alone")
        progress.update(i + 1)
    kept_float = {}
    for j, block in enumerate(blocks):
        kept_float[block] = score(s.all_but([u for u in s.order if block_of(u) == block]), "kept")
        progress.update(len(units) + j + 1)

    # costliest first: by their cost alone where measured, else by their block's gain when kept float
    if alone:
        worst_first = sorted(s.order, key=lambda u: alone[u])
    else:
        worst_first = sorted(s.order, key=lambda u: -kept_float[block_of(u)])
    plans = []
    tried: dict[int, float] = {0: rows[BALANCED]["psnr_db"]}

    def plan_psnr(k: int) -> float:
        if k not in tried:
            tried[k] = score(s.all_but(worst_first[:k]), "plan")
        return tried[k]

    for target in sorted(float(t) for t in _TARGETS.value):
        low, high = 0, len(worst_first)  # PSNR grows (nearly) monotonically with the float set: binary search
        if plan_psnr(high) < target:
            plans.append({"target_db": target, "reached": False, "float_units": worst_first, "psnr_db": plan_psnr(high)})
            continue
        while low < high:
            mid = (low + high) // 2
            low, high = (mid + 1, high) if plan_psnr(mid) < target else (low, mid)
        plans.append({"target_db": target, "reached": True, "float_units": worst_first[:low], "psnr_db": plan_psnr(low)})

    timed = {
        name: whole[name]
        for name in (
            "fp32",
            "int8 (per-channel weights)",
            "int8, instance norms float",
            "int8, norm inputs balanced, not clipped",
            BALANCED,
        )
    }
    timed["int8, norm inputs balanced, instance norms float"] = whole["int8, norm inputs balanced, instance norms float"]
    if rows.get("16x8 (int16 activations)", {}).get("psnr_db") is not None:
        timed["16x8 (int16 activations)"] = whole["16x8 (int16 activations)"]
    for plan in plans:
        timed[f"plan {plan['target_db']:g} dB"] = s.all_but(plan["float_units"])
    latency = {}
    for name, model in timed.items():
        runs = 1 if name.startswith("16x8") else _RUNS.value  # reference kernels: one run is minutes at 512
        latency[name] = child_timing(s.write(model, f"timed_{len(latency)}"), 2, runs)["median_s"]
        print(f"[{size}] {name}: {latency[name]:.3f} s", flush=True)
    for name, seconds in latency.items():
        if name in rows:
            rows[name]["latency_2t_s"] = seconds
    for plan in plans:
        plan["latency_2t_s"] = latency[f"plan {plan['target_db']:g} dB"]
        plan["float_ops"] = sum(len(s.units[u]) for u in plan["float_units"])

    return {
        "size": size,
        "photos": photo_source,
        "calibration": calibration_source,
        "ops": len(s.nodes),
        "clip": {"quantile": _CLIP.value, "bounds": bounds},
        "whole": rows,
        "alone": alone,
        "kept_float": kept_float,
        "plans": plans,
        "seconds": time.perf_counter() - started,
    }


def settings(model: Path, quality_dir: Path | None, calibration_dir: Path | None) -> dict:
    """What a size's rows depend on: a size measured under other settings (or on other photos) is measured again."""
    return {
        "photo_names": {
            "scored": sorted(p.name for p in list_images(quality_dir)) if quality_dir else [],
            "calibration": sorted(p.name for p in list_images(calibration_dir)) if calibration_dir else [],
        },
        "model": str(model.relative_to(Path.cwd())) if model.is_absolute() and model.is_relative_to(Path.cwd()) else str(model),
        "model_sha256": file_sha256(model),
        "clip_quantile": _CLIP.value,  # the exporter's form of the model (its --clip_quantile)
        **{flag.name: flag.value for flag in (_PHOTOS, _CALIBRATION, _TARGETS, _RUNS, _UNIT_SIZES, _INT16_SIZES)},
    }


def main(argv):
    del argv
    quality_dir, calibration_dir = photo_split(_PHOTOS.value, Path("benchmarks/results/photo_split"))
    model = Path(_MODEL.value) if _MODEL.value else reference_model(calibration_dir)
    record = {**results.header("quant_sensitivity", 2), **settings(model, quality_dir, calibration_dir), "sizes": []}
    path = Path(_OUTPUT.value) if _OUTPUT.value else results.RESULTS / "quant_sensitivity.json"
    # Resumable by size (an hour in all): each finished size is written at once and kept by a rerun of the same settings.
    done = {}
    if path.is_file():
        previous = json.loads(path.read_text())
        if all(previous.get(k) == v for k, v in settings(model, quality_dir, calibration_dir).items()):
            done = {entry["size"]: entry for entry in previous.get("sizes", [])}
    with tempfile.TemporaryDirectory(prefix="quant_sensitivity_") as work:
        for size in (int(s) for s in _SIZES.value):
            if size in done:
                print(f"[{size}] measured on {previous['machine']['date']} with these settings: kept", flush=True)
                record["sizes"].append(done[size])
                record["machine"] = previous["machine"]  # the machine the kept rows ran on
            else:
                record["sizes"].append(analyse(model, size, quality_dir, calibration_dir, Path(work)))
            results.write(record, path)
    from benchmarks import report

    print(report.render_quant_sensitivity(record))
    return 0


if __name__ == "__main__":
    from edge_demo.runtime import cli

    cli.run(main)
