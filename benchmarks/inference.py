"""The official generator in PyTorch beside ours, same weights, same process, same run.

    python -m benchmarks.inference                          # 256 and 512, reference weights
    python -m benchmarks.inference --model G.keras --sizes 256 --runs 9

What runs, per size, on one held-out real photo (uint8 photo in, uint8 drawing out):

- ``pytorch``: ``benchmarks.torch_reference.StyleGenerator`` (the official module
  layout) holding the Keras generator's weights, which travel through a ``.pth``
  written by ``torch.save`` and read back by ``import_official``; the Keras model
  that every other row uses is the one imported from that file.
- ``keras``: the path ``keras_asym.draw`` takes for a ``.keras`` model
  (``tf.function``), and ``keras_xla`` (the same with ``jit_compile``).
- ``tflite_<variant>``: each exported variant through LiteRT + XNNPACK; ``tflite_fp32_xnnpack_fp16``: the fp32
  file with XNNPACK's fp16 arithmetic (``--xnnpack_fp16``), through LiteRT's CompiledModel, since the
  Interpreter takes no XNNPACK flags.

Every contender is timed once per round, rounds alternate (``--runs``), so a
slow minute on a shared machine hits all of them; each row reports the median,
min and max seconds and its speed against PyTorch as the median of the
per-round ratios (with their min and max). Quality: PSNR / SSIM / edge-F1 of
each variant's drawings against the fp32 TFLite drawings on ``--photos``
held-out photos in the three styles (photos never used for fitting or
calibration). The machine and an sgemm peak measured in the same run are
recorded. Writes ``--output`` (JSON); ``benchmarks/report.py`` renders it.
"""

from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path

import numpy as np
from absl import flags

from benchmarks import machine
from benchmarks.common.fingerprint import cached_export
from benchmarks.common.reference import reference_model
from benchmarks.report import render_inference_size
from edge_demo.runtime import cli
from edge_demo.runtime.pixels import to_model, to_pixels
from edge_demo.runtime.styles import ONE_HOTS

_MODEL = flags.DEFINE_string("model", None, "Generator .keras (default: the reference generator, fitted first if missing).")
_SIZES = flags.DEFINE_list("sizes", ["256", "512"], "Square sizes.")
_VARIANTS = flags.DEFINE_list(
    "variants", ["fp32", "fp16", "dynamic", "int8", "int8_float_norm"], "TFLite variants (exported when missing; also fp32_winograd)."
)
_RUNS = flags.DEFINE_integer("runs", 7, "Alternating timing rounds (median reported).")
_THREADS = flags.DEFINE_integer("threads", 2, "Threads for every framework.")
_PHOTOS = flags.DEFINE_integer("photos", 10, "Held-out photos for the quality columns (each drawn in all 3 styles).")
_WORK = flags.DEFINE_string("work_dir", "benchmarks/results/inference", "Exports, the .pth and the photo split.")
_XNNPACK_FP16 = flags.DEFINE_boolean(
    "xnnpack_fp16", False, "Also run the fp32 file with XNNPACK's fp16 arithmetic (LiteRT CompiledModel, FORCE_FP16 flag)."
)
_OUTPUT = flags.DEFINE_string("output", "docs/results/inference.json", "JSON results.")
_CLIP = flags.DEFINE_string(
    "clip_quantile", None, "int8: the exporter's --clip_quantile (a quantile or 'auto'; default: the exporter's default)."
)


def log(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", flush=True)


def shared_weights(model: Path, work: Path):
    """(keras generator imported from a .pth, its PyTorch twin, the .pth path, max |weight difference|)."""
    import torch

    from benchmarks.torch_reference import torch_style_generator
    from keras_asym.convert.checkpoints import import_official
    from keras_asym.inference.keras_generator import load_generator

    original = load_generator(model)
    twin = torch_style_generator(original)
    folder = work / "pth"
    folder.mkdir(parents=True, exist_ok=True)
    torch.save(twin.state_dict(), folder / "latest_net_G_A.pth")
    g = original
    imported, _ = import_official(folder, ngf=g.ngf, n_blocks=g.n_blocks, model0_res=g.model0_res)
    keras_g = imported["generator"]
    gap = max(float(np.abs(a - b).max()) for a, b in zip(original.get_weights(), keras_g.get_weights()))
    return keras_g, twin, folder / "latest_net_G_A.pth", gap


def export_variants(keras_g, size: int, variants: list[str], work: Path, calibration_dir: Path | None) -> dict[str, Path]:
    model_path = work / "imported_generator.keras"
    keras_g.save(model_path)
    options = {"clip_quantile": _CLIP.value} if _CLIP.value else {}
    return cached_export(
        model_path,
        work / f"export_{size}",
        (size, size),
        variants,
        log=lambda m: log("  " + m),
        calibration_dir=calibration_dir,
        per_op_report=False,
        gpu_check="off",
        **options,
    )


def int8_settings(sidecar: Path) -> dict:
    """What the exporter chose for an int8 file (its sidecar): the norm inputs' clip and the activation ranges, and
    the clip search's scores where it searched (``export.json`` beside the file)."""
    if not sidecar.is_file():
        return {}
    record = json.loads(sidecar.read_text())
    settings = {
        "norm_inputs_clipped_at": record.get("norm_inputs_clipped_at"),
        "activation_range_quantile": record.get("activation_ranges", {}).get("quantile"),
    }
    summary = sidecar.parent / "export.json"
    search = json.loads(summary.read_text()).get("clip_search") if summary.is_file() else None
    if search:
        settings["clip_search"] = search
    return settings


def contenders(keras_g, twin, tflite_paths: dict[str, Path], threads: int, xnnpack_fp16: bool = False) -> dict:
    """name -> f(photo uint8 HxWx3, style (3,)) -> drawing uint8 HxW, each the whole photo-to-drawing call."""
    import tensorflow as tf

    from edge_demo.runtime.generator import TFLiteGenerator

    def to_uint8(y):
        return to_pixels(y)

    def keras_fn(compiled):
        fn = tf.function(lambda p, s: keras_g({"photo": p, "style": s}, training=False), jit_compile=compiled)

        def run(photo, style):
            return to_uint8(fn(to_model(photo[None]), style[None])[0, ..., 0])

        return run

    found = {"keras": keras_fn(False), "keras_xla": keras_fn(True)}
    if twin is not None:
        import torch

        torch.set_num_threads(threads)

        def pytorch(photo, style):
            with torch.inference_mode():
                x = to_model(torch.from_numpy(photo).permute(2, 0, 1)[None].float())
                return to_uint8(twin(x, torch.from_numpy(style[None]))[0, 0].numpy())

        found = {"pytorch": pytorch, **found}
    for variant, path in tflite_paths.items():
        found[f"tflite_{variant}"] = TFLiteGenerator(path, threads=threads).draw
    if xnnpack_fp16 and "fp32" in tflite_paths:
        from edge_demo.runtime.gpu import XNNPACK_FORCE_FP16, XNNPACK_QS8, XNNPACK_QU8, CompiledGpuModel

        compiled = CompiledGpuModel(
            tflite_paths["fp32"], threads=threads, gpu=False, xnnpack_flags=XNNPACK_QS8 | XNNPACK_QU8 | XNNPACK_FORCE_FP16
        )

        def fp16_arithmetic(photo, style):
            feeds = {"photo": to_model(photo[None]).astype(np.float32), "style": style[None].astype(np.float32)}
            return to_uint8(compiled.run(feeds)["drawing"][0, ..., 0])

        found["tflite_fp32_xnnpack_fp16"] = fp16_arithmetic
    return found


def time_alternating(runners: dict, photo: np.ndarray, style: np.ndarray, runs: int) -> dict[str, list[float]]:
    for run in runners.values():  # warm-up
        run(photo, style)
    from edge_demo.runtime.progress import Progress

    times = {name: [] for name in runners}
    progress = Progress(runs, "  timing", unit="rounds", interval=0.0)
    for _ in range(runs):
        for name, run in runners.items():
            started = time.perf_counter()
            run(photo, style)
            times[name].append(time.perf_counter() - started)
        progress.update(note=", ".join(f"{n} {t[-1]:.3f}s" for n, t in times.items()))
    return times


def quality(runners: dict, photos: list[np.ndarray]) -> dict[str, dict]:
    from keras_asym.evaluation import metrics

    styles = ONE_HOTS
    from edge_demo.runtime.progress import Progress

    drawings, first = {}, {}
    progress = Progress(len(runners), "  quality", unit="contenders", interval=0.0)
    for name, run in runners.items():
        started = time.perf_counter()  # the first call at this size: tracing, XLA compilation, delegate set-up
        drawings[name] = [run(photos[0], styles[0])]
        first[name] = time.perf_counter() - started
        drawings[name] += [run(p, s) for i, p in enumerate(photos) for j, s in enumerate(styles) if i or j]
        progress.update(note=f"{name} drew {len(drawings[name])} drawings")
    reference = drawings["tflite_fp32"] if "tflite_fp32" in drawings else drawings["keras"]
    rows = {}
    for name, items in drawings.items():
        psnr = [metrics.psnr(d, r) for d, r in zip(items, reference)]
        rows[name] = {
            "psnr_db_vs_fp32": float(np.mean(np.minimum(psnr, 99.0))),
            "ssim_vs_fp32": float(np.mean([metrics.ssim(d, r) for d, r in zip(items, reference)])),
            "edge_f1_vs_fp32": float(np.mean([metrics.edge_f1(d, r) for d, r in zip(items, reference)])),
            "max_abs_vs_fp32": int(max(np.abs(d.astype(int) - r.astype(int)).max() for d, r in zip(items, reference))),
            "first_call_s": first[name],
        }
    return rows


def summarise(times: dict[str, list[float]]) -> dict[str, dict]:
    torch_times = np.array(times.get("pytorch", []))
    rows = {}
    for name, values in times.items():
        values = np.array(values)
        row = {
            "median_s": float(np.median(values)),
            "min_s": float(values.min()),
            "max_s": float(values.max()),
            "all_s": values.round(4).tolist(),
        }
        if len(torch_times):
            ratios = torch_times / values  # > 1: faster than PyTorch in that round
            row.update(
                speed_vs_pytorch=float(np.median(ratios)),
                speed_vs_pytorch_min=float(ratios.min()),
                speed_vs_pytorch_max=float(ratios.max()),
            )
        rows[name] = row
    return rows


def main(argv):
    del argv
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    try:
        import torch  # noqa: F401
    except ImportError:
        torch = None
        log("PyTorch is not installed (pip install -e '.[bench]'): its row and every ratio say 'not measured'")
    import tensorflow as tf

    from benchmarks.common.heldout import photo_split
    from keras_asym.evaluation.metrics import conv_gflops
    from keras_asym.utils.imageio import fit_to_size, list_images, read_rgb

    work = Path(_WORK.value)
    work.mkdir(parents=True, exist_ok=True)
    threads = _THREADS.value
    tf.config.threading.set_intra_op_parallelism_threads(threads)
    tf.config.threading.set_inter_op_parallelism_threads(1)
    record = {
        "benchmark": "inference",
        "command": " ".join([Path(sys.executable).name, "-m", "benchmarks.inference", *sys.argv[1:]]),
        "machine": machine.describe(threads),
        "sgemm_before": machine.sgemm_peak_gflops(threads),
        "sizes": {},
    }
    log(f"machine: {record['machine']['cpu']}, {threads} threads; sgemm peak {record['sgemm_before']['gflops']:.0f} GFLOP/s")
    quality_dir, calibration_dir = photo_split(_PHOTOS.value, work / "photo_split")
    model = Path(_MODEL.value) if _MODEL.value else reference_model(calibration_dir)
    if torch is not None:
        keras_g, twin, pth, weight_gap = shared_weights(model, work)
        record.update(model=str(model), pth=str(pth), weights_max_abs_after_round_trip=weight_gap)
        log(f"weights: {model} -> {pth} -> import_official (max |difference| {weight_gap:g})")
    else:
        from keras_asym.inference.keras_generator import load_generator

        keras_g, twin = load_generator(model), None
        record.update(model=str(model), pth=None)
    for size in map(int, _SIZES.value):
        paths = export_variants(keras_g, size, _VARIANTS.value, work, calibration_dir)
        runners = contenders(keras_g, twin, paths, threads, _XNNPACK_FP16.value)
        if quality_dir is not None:
            photos = [fit_to_size(read_rgb(p), size, size) for p in list_images(quality_dir)[: _PHOTOS.value]]
            source = f"{len(photos)} held-out aligned photos x 3 styles"
        else:
            from keras_asym.data.procedural import paired_examples

            photos = list(paired_examples(_PHOTOS.value, size, seed=99)[0])
            source = f"{len(photos)} procedural photos x 3 styles (no shared photos found)"
        log(f"{size}x{size}: quality on {source}")
        rows = quality(runners, photos)
        log(f"{size}x{size}: timing {len(runners)} contenders, {_RUNS.value} alternating rounds")
        times = time_alternating(runners, photos[0], np.float32([0, 1, 0]), _RUNS.value)
        for name, row in summarise(times).items():
            rows[name].update(row)
            if name.startswith("tflite_"):
                rows[name]["mb"] = paths[name[len("tflite_") :].removesuffix("_xnnpack_fp16")].stat().st_size / 1e6
        record["sizes"][str(size)] = {"gflop": conv_gflops(keras_g, size, size), "quality_photos": source, "rows": rows}
        if "int8" in paths:
            record["sizes"][str(size)]["int8_export"] = int8_settings(paths["int8"].with_suffix(".json"))
        print(render_inference_size(str(size), record["sizes"][str(size)]), flush=True)
    record["sgemm_after"] = machine.sgemm_peak_gflops(threads)
    from keras_asym.utils.imageio import write_bytes_atomic

    write_bytes_atomic(_OUTPUT.value, json.dumps(record, indent=1).encode())
    log(f"wrote {_OUTPUT.value}")
    return cli.OK


if __name__ == "__main__":
    cli.run(main)
