"""Turn photos into portrait drawings in the paper's three styles (or any mixture).

    python -m keras_asym.draw --model models/official --input photos/ --output drawings/
    python -m keras_asym.draw --model generator.keras --input me.jpg --output out --style 0.2,0.5,0.3 --paste_back

``--model``: a ``.keras`` or ``.tflite`` generator, or a folder with
``generator.keras`` (from ``import_official`` or ``train``). By default each
face is detected, aligned to the official 512x512 template and drawn
(``--paste_back`` warps the drawing back into the photo); ``--noalign`` draws
the image as given, resized so its sides are multiples of 4. Outputs:
``<stem>_style1.png`` ... or ``<stem>_mix-0.20-0.50-0.30.png``, the drawn input
``<stem>_input.png`` and an ``index.html`` gallery.

Unreadable files, non-images, absurdly large images and photos without a face
are skipped with one line each; the rest are drawn. Exit status: 0 if every
input was drawn, 1 if some were skipped, 2 if none could be drawn or for a bad model or bad arguments.
"""

from __future__ import annotations

import sys
from collections import defaultdict

import cv2
import numpy as np
from absl import flags

from edge_demo.runtime import cli
from edge_demo.runtime.alignment import align, paste_back
from edge_demo.runtime.progress import Progress
from edge_demo.runtime.styles import ONE_HOTS, parse, suffix
from keras_asym.face.detector import NoFaceError, open_landmarker
from keras_asym.inference.drawer import Drawer
from keras_asym.utils.imageio import ImageReadError, list_images, read_rgb, remove_stale_partials, write_image_atomic
from keras_asym.utils.pages import write_gallery

DEFAULT_SIZE = 512  # the official template
MIN_SIDE = 16  # two downsamplings and the 3-pixel reflection pad leave nothing smaller

_MODEL = flags.DEFINE_string("model", None, ".keras/.tflite generator, or a folder with generator.keras.", required=True)
_INPUT = flags.DEFINE_string("input", None, "An image file or a folder of images.", required=True)
_OUTPUT = flags.DEFINE_string("output", None, "Output folder.", required=True)
_STYLES = flags.DEFINE_string("styles", "all", "'all' (the three one-hot styles) or a subset such as '1,3'.")
_STYLE = flags.DEFINE_string("style", None, "One style mixture 'a,b,c' (non-negative, normalised); overrides --styles.")
_ALIGN = flags.DEFINE_boolean("align", True, "Detect and align the face to the official template (--noalign: draw as given).")
_PASTE_BACK = flags.DEFINE_boolean("paste_back", False, "With --align, warp the drawing back into the original photo.")
_SIZE = flags.DEFINE_integer(
    "size",
    0,
    "Aligned size (0: the model's own or trained size, from the export, its record or its folder's config.json; else 512); "
    "with --noalign, the longest side is limited to this.",
    lower_bound=0,
    upper_bound=4096,
)
_BATCH = flags.DEFINE_integer("batch_size", 4, "Images per inference batch (Keras models).", lower_bound=1, upper_bound=256)
_THREADS = flags.DEFINE_integer("threads", 2, "Threads for TFLite and the face models.", lower_bound=1, upper_bound=64)
_JIT = flags.DEFINE_boolean(
    "jit_compile",
    True,
    "Run .keras models with XLA (about 20% faster per drawing; compiling costs one to three drawings, docs/results/inference.json).",
)
_LANDMARKER_TASK = flags.DEFINE_string(
    "landmarker_task", None, "Official face_landmarker.task: use MediaPipe's FaceLandmarker instead of detector + mesh."
)


def styles_from_flags(styles: str, style: str | None) -> list[np.ndarray]:
    if style:
        return [parse(style)]
    if styles == "all":
        return [row.copy() for row in ONE_HOTS]
    return [parse(s) for s in styles.split(",")]


def fit_to_multiple_of_four(rgb: np.ndarray, longest: int) -> np.ndarray:
    """Downscale so the longest side is at most ``longest``, then round sides down to multiples of 4."""
    height, width = rgb.shape[:2]
    scale = min(1.0, longest / max(height, width))
    new_h, new_w = max(4, int(height * scale) // 4 * 4), max(4, int(width * scale) // 4 * 4)
    if (new_h, new_w) == (height, width):
        return rgb
    interpolation = cv2.INTER_AREA if scale < 1 else cv2.INTER_LINEAR
    return cv2.resize(rgb, (new_w, new_h), interpolation=interpolation)


def main(argv):
    del argv

    try:
        styles = styles_from_flags(_STYLES.value, _STYLE.value)
        if _SIZE.value and (_SIZE.value % 4 or _SIZE.value < MIN_SIDE):
            raise ValueError(f"--size must be 0 or a multiple of 4 and >= {MIN_SIDE}, got {_SIZE.value}.")
        files = list_images(_INPUT.value)
        drawer = Drawer(_MODEL.value, batch_size=_BATCH.value, threads=_THREADS.value, jit_compile=_JIT.value)
        size = _SIZE.value or drawer.trained_size or DEFAULT_SIZE
        output = cli.output_folder(_OUTPUT.value)
    except (ValueError, FileNotFoundError, OSError) as err:
        cli.error("draw", err)
        return 2
    if not files:
        print(f"draw: error: {_INPUT.value}: no images (by suffix) in this folder.", file=sys.stderr)
        return 2
    remove_stale_partials(output)  # a killed earlier run's temporary files; its finished drawings are redrawn
    landmarker = None
    if _ALIGN.value:
        landmarker = open_landmarker("draw", task_path=_LANDMARKER_TASK.value, threads=_THREADS.value)
        if landmarker is None:
            return 2

    stems_seen: dict[str, int] = defaultdict(int)
    groups: dict[tuple, list] = defaultdict(list)
    rows, failures, drawn = [], [], 0
    progress = Progress(len(files), "draw", unit="images")

    def flush(shape):
        nonlocal drawn
        items = groups.pop(shape, [])
        if not items:
            return
        photos = np.stack([item["photo"] for item in items])
        try:
            outputs = {suffix(s): drawer.draw(photos, s) for s in styles}
        except (ValueError, RuntimeError) as err:  # the model cannot draw at this size: these items are skipped
            for item in items:
                failures.append(f"{item['path']}: not drawn at {photos.shape[2]}x{photos.shape[1]} ({cli.one_line(err, 200)})")
                cli.skipped(failures[-1])
            return
        for k, item in enumerate(items):
            entries = []
            write_image_atomic(output / f"{item['stem']}_input.png", item["photo"])
            for label, drawings in outputs.items():
                image = drawings[k]
                if item["matrix"] is not None and _PASTE_BACK.value:
                    image = paste_back(item["original"], image, item["matrix"], feather=2)
                name = f"{item['stem']}_{label}.png"
                write_image_atomic(output / name, image)
                entries.append((label, name))
            rows.append((item["stem"], f"{item['stem']}_input.png", entries))
            drawn += 1

    try:
        for path in files:
            try:
                rgb = read_rgb(path)
                if landmarker is not None:
                    face = landmarker.largest(rgb, where=str(path))
                    photo, matrix = align(rgb, face.points, size)
                else:
                    photo, matrix = fit_to_multiple_of_four(rgb, size), None
                    if min(photo.shape[:2]) < MIN_SIDE:
                        raise ImageReadError(
                            f"{path}: {rgb.shape[1]}x{rgb.shape[0]} is drawn at {photo.shape[1]}x{photo.shape[0]}; "
                            f"the generator needs at least {MIN_SIDE} px a side."
                        )
            except (ImageReadError, NoFaceError) as err:
                failures.append(str(err))
                cli.skipped(err)
                progress.update(note=path.name)
                continue
            stems_seen[path.stem] += 1
            stem = path.stem if stems_seen[path.stem] == 1 else f"{path.stem}_{path.suffix.lstrip('.').lower()}"
            groups[photo.shape].append({"stem": stem, "path": path, "photo": photo, "matrix": matrix, "original": rgb})
            if len(groups[photo.shape]) >= _BATCH.value:
                flush(photo.shape)
            progress.update(note=path.name)
        for shape in list(groups):
            flush(shape)
    finally:
        if landmarker is not None:
            landmarker.close()
    write_gallery(output, rows)
    print(f"drew {drawn} of {len(files)} images in {len(styles)} style(s) into {output} (index.html)")
    if failures:
        print(f"skipped {len(failures)}:", file=sys.stderr)
        for line in failures:
            print(f"  {cli.one_line(line)}", file=sys.stderr)
    return cli.batch_status(drawn, len(failures))


if __name__ == "__main__":
    cli.run(main)
