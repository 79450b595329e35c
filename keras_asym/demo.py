"""End-to-end smoke demo: build the full objective, train a few steps, draw in three styles.

Until the procedural dataset and the trained default model land, this runs
the whole pipeline on one built-in procedural portrait (or the first photo of
``$KERAS_ASYM_SHARED/data/raw_photos`` when present) with a small, *untrained*
model: the drawings show that every part runs, not what the method draws.

    python -m keras_asym.demo --output demo_out [--size 128 --steps 3]
"""

from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path

import numpy as np
from absl import app, flags

_OUTPUT = flags.DEFINE_string("output", "demo_out", "Folder for the drawings and summary.json.")
_SIZE = flags.DEFINE_integer("size", 128, "Working resolution (multiple of 32).")
_STEPS = flags.DEFINE_integer("steps", 3, "Training steps to run on the sample.")
_SEED = flags.DEFINE_integer("seed", 0, "Random seed.")


def _load_sample(size: int, seed: int) -> tuple[np.ndarray, dict, str]:
    """The first raw photo of the shared data if present, else a procedural portrait; with part masks."""
    import cv2

    from keras_asym.data.procedural import render_photo, sample_face
    from keras_asym.face.masks import part_masks

    photo, points = render_photo(sample_face(np.random.default_rng(seed)), size)
    masks = part_masks(points, (size, size))
    shared = Path(os.environ.get("KERAS_ASYM_SHARED", Path(__file__).resolve().parents[2] / "shared"))
    folder = shared / "data" / "raw_photos"
    photos = sorted(p for p in folder.glob("*") if p.suffix.lower() in (".png", ".jpg", ".jpeg")) if folder.is_dir() else []
    if photos:
        bgr = cv2.imread(str(photos[0]), cv2.IMREAD_COLOR)
        if bgr is not None:
            return cv2.resize(cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB), (size, size), interpolation=cv2.INTER_AREA), masks, str(photos[0])
    return photo, masks, "built-in procedural portrait"


def _atomic_png(path: Path, image: np.ndarray) -> None:
    import cv2

    ok, data = cv2.imencode(".png", image)
    if not ok:
        raise RuntimeError(f"could not encode {path}")
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_bytes(data.tobytes())
    tmp.replace(path)


def main(argv):
    del argv
    import keras
    import tensorflow as tf

    from keras_asym.model import build_model

    size = _SIZE.value
    keras.utils.set_random_seed(_SEED.value)
    out = Path(_OUTPUT.value)
    out.mkdir(parents=True, exist_ok=True)
    photo_u8, masks, source = _load_sample(size, _SEED.value)
    photo = photo_u8.astype(np.float32)[None] / 127.5 - 1.0
    from keras_asym.data.procedural import render_drawing, sample_face

    drawing_u8, _ = render_drawing(sample_face(np.random.default_rng(_SEED.value + 1)), size, 2)
    drawing = drawing_u8.astype(np.float32)[None, :, :, None] / 127.5 - 1.0
    part_masks = {p: m.astype(np.float32)[None, :, :, None] for p, m in masks.items()}
    batch = {
        "photo": photo,
        "drawing": drawing,
        "style": np.float32([[0.7, 0.2, 0.1]]),
        "photo_masks": part_masks,
        "drawing_masks": part_masks,
    }
    model = build_model(image_size=size, ngf=16, ndf=16, n_blocks=3)
    model.compile(
        g_optimizer=keras.optimizers.Adam(2e-4, beta_1=0.5), d_optimizer=keras.optimizers.Adam(2e-4, beta_1=0.5)
    )
    start = time.perf_counter()
    history = model.fit(tf.data.Dataset.from_tensors(batch).repeat(_STEPS.value), epochs=1, verbose=0)
    train_s = time.perf_counter() - start
    _atomic_png(out / "photo.png", photo_u8[:, :, ::-1])
    for k in range(3):
        style = np.eye(3, dtype=np.float32)[k : k + 1]
        result = np.asarray(model.generator({"photo": photo, "style": style}))[0, :, :, 0]
        _atomic_png(out / f"photo_style{k + 1}.png", np.clip((result + 1) * 127.5, 0, 255).astype(np.uint8))
    summary = {
        "note": "UNTRAINED demo model (a few steps on one image): it shows the pipeline runs, not the method's quality.",
        "source": source,
        "size": size,
        "steps": _STEPS.value,
        "train_seconds": round(train_s, 2),
        "losses": {k: float(v[-1]) for k, v in history.history.items()},
    }
    tmp = out / "summary.json.tmp"
    tmp.write_text(json.dumps(summary, indent=2))
    tmp.replace(out / "summary.json")
    print(json.dumps(summary, indent=2))
    print(f"\nThe weights are random plus {_STEPS.value} training steps: the drawings are noise-like by design.")
    print(f"Outputs: {out.resolve()}/photo.png, photo_style{{1,2,3}}.png, summary.json")


if __name__ == "__main__":
    sys.exit(app.run(main))
