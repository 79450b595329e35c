"""Scoring a trained generator: paired drawing metrics, style accuracy, hidden information, FID/KID.

The ``evaluate`` CLI documents each measurement; these functions are what it
(and ``demo`` and the benchmarks) call.
"""

from __future__ import annotations

import html
import json
from pathlib import Path

import cv2
import keras
import numpy as np

from edge_demo.runtime.pixels import SCALE, to_model, to_pixels
from edge_demo.runtime.styles import cycling, one_hot
from keras_asym.evaluation import metrics
from keras_asym.inference.keras_generator import load_generator
from keras_asym.models.style_classifier import INPUT_SIZE, load_classifier
from keras_asym.objective.losses import truncate
from keras_asym.training.config import TrainConfig
from keras_asym.training.loop import create_model
from keras_asym.utils.imageio import list_images, read_rgb, write_bytes_atomic, write_image_atomic
from keras_asym.utils.pages import html_page


def load_run(run_dir: Path):
    """(G, F, config) of a train run, with the weights of its latest end-of-epoch checkpoint."""
    config_path = run_dir / "config.json"
    if not config_path.is_file():
        raise FileNotFoundError(f"{config_path}: not a train run folder.")
    config = TrainConfig.from_json(config_path)
    checkpoints = sorted((run_dir / "checkpoints").glob("epoch-*.weights.h5"))
    if not checkpoints:
        raise FileNotFoundError(f"{run_dir / 'checkpoints'}: no checkpoint to evaluate.")
    model = create_model(config)
    model.load_weights(checkpoints[-1])
    return model.generator, model.photo_generator, config


def load_test_pairs(dataset: Path, size: int, limit: int = 0) -> tuple[np.ndarray, dict[int, np.ndarray], list[str]]:
    """Test photos (N,H,W,3) uint8 and, per style, their known drawings (N,H,W) uint8."""
    photos_dir = dataset / "test" / "A"
    if not photos_dir.is_dir():
        raise FileNotFoundError(f"{photos_dir}: missing; evaluation needs a dataset with paired test drawings.")
    files = list_images(photos_dir)[: limit or None]
    if not files:
        raise FileNotFoundError(f"{photos_dir}: no photos.")

    def load(path, gray=False):
        image = read_rgb(path)
        image = cv2.resize(image, (size, size), interpolation=cv2.INTER_AREA)
        return cv2.cvtColor(image, cv2.COLOR_RGB2GRAY) if gray else image

    photos = np.stack([load(p) for p in files])
    drawings = {}
    for k in (1, 2, 3):
        folder = dataset / "test" / f"B_style{k}"
        if folder.is_dir():
            drawings[k] = np.stack([load(folder / p.name, gray=True) for p in files])
    return photos, drawings, [p.stem for p in files]


def draw(generator, photos: np.ndarray, style: np.ndarray, batch: int = 4) -> np.ndarray:
    """G's drawings in [-1, 1], (N,H,W,1)."""
    out = []
    for i in range(0, len(photos), batch):
        x = to_model(photos[i : i + batch])
        out.append(np.asarray(generator({"photo": x, "style": np.repeat(style[None], len(x), 0)}, training=False)))
    return np.concatenate(out)


def to_uint8(images: np.ndarray) -> np.ndarray:
    return to_pixels(images)


def paired_metrics(generator, photos, drawings: dict) -> tuple[dict, dict]:
    results, outputs = {}, {}
    for k in (1, 2, 3):
        out = to_uint8(draw(generator, photos, one_hot(k)))[..., 0]
        outputs[k] = out
        if k not in drawings:
            continue
        ref = drawings[k]
        results[f"style{k}"] = {
            "ssim": float(np.mean([metrics.ssim(o, r) for o, r in zip(out, ref)])),
            "edge_f1": float(np.mean([metrics.edge_f1(o, r) for o, r in zip(out, ref)])),
            "chamfer_px": float(np.mean([metrics.chamfer(o, r) for o, r in zip(out, ref)])),
        }
    return results, outputs


def self_consistency(
    generator,
    photos: np.ndarray,
    style: np.ndarray,
    shift: int = 0,
    mirror: bool = False,
    margin: int = 8,
    reference: np.ndarray | None = None,
) -> dict:
    """SSIM / edge-F1 of G's drawing of the photo moved by ``shift`` px (down and right, wrapping) or mirrored,
    moved back, against G's drawing of the photo (``reference``, uint8 (N,H,W), when the caller has it),
    ``margin`` px away from the borders.

    Near 1 when G's lines follow the face; lower where its strokes follow pixel phase (strided convolutions
    alias) or texture. Not a bound on a student scored against G's drawings (it sees the very pixels G saw), but
    a measure of how much of G's drawing is aliasing that a student with other strides has to learn.
    """
    moved = np.roll(photos, (shift, shift), axis=(1, 2))
    if mirror:
        moved = moved[:, :, ::-1]
    if reference is None:
        reference = to_uint8(draw(generator, photos, style))[..., 0]
    back = to_uint8(draw(generator, moved, style))[..., 0]
    if mirror:
        back = back[:, :, ::-1]
    back = np.roll(back, (-shift, -shift), axis=(1, 2))
    inner = (slice(None), slice(margin, -margin or None), slice(margin, -margin or None))
    pairs = list(zip(back[inner], reference[inner]))
    return {
        "ssim": float(np.mean([metrics.ssim(a, b) for a, b in pairs])),
        "edge_f1": float(np.mean([metrics.edge_f1(a, b) for a, b in pairs])),
    }


def hidden_information(
    generator, photo_generator, photos: np.ndarray, levels: float = 31.875, noise_gray_levels: float = 1.0, seed: int = 0
) -> dict:
    """The paper's hidden-information signature: how much F(G(x)) depends on what a 6-bit drawing cannot show.

    For each photo (styles cycling 1, 2, 3): the L1 of F's reconstruction from
    G(x), from its truncation trunc(G(x)) and from G(x) plus Gaussian noise of
    ``noise_gray_levels`` (in 0-255 units), and the truncation's amplitude. A
    generator that hides the photo in invisible low-amplitude patterns
    reconstructs well from G(x) and badly from the other two.

    Steganalysis (with at least 20 photos): how much of the photo's colour
    (its 4x4 RGB thumbnail, R^2 under 5-fold cross-validated ridge regression)
    is predictable from the residual G(x) - trunc(G(x)) alone, beside the same
    from the visible trunc(G(x)).
    """
    styles = cycling(len(photos))
    x = to_model(photos)
    rng = np.random.default_rng(seed)
    drawn, recs, recs_t, recs_n = [], [], [], []
    for i in range(0, len(x), 16):
        y = np.asarray(generator({"photo": x[i : i + 16], "style": styles[i : i + 16]}, training=False))
        y_t = np.asarray(truncate(y, levels))
        y_n = np.clip(y + rng.normal(0.0, noise_gray_levels / SCALE, y.shape).astype(np.float32), -1.0, 1.0)
        drawn.append(y)
        recs.append(np.asarray(photo_generator(y, training=False)))
        recs_t.append(np.asarray(photo_generator(y_t, training=False)))
        recs_n.append(np.asarray(photo_generator(y_n, training=False)))
    y = np.concatenate(drawn)
    y_t = np.asarray(truncate(y, levels))
    rec, rec_t, rec_n = (float(np.abs(np.concatenate(r) - x).mean()) for r in (recs, recs_t, recs_n))
    report = {
        "reconstruction_l1": rec,
        "truncated_reconstruction_l1": rec_t,
        "noisy_reconstruction_l1": rec_n,
        "noise_gray_levels": noise_gray_levels,
        "gap": rec_t - rec,
        "ratio": rec_t / max(rec, 1e-12),
        "truncation_amplitude_gray_levels": float(np.abs(y - y_t).mean() * SCALE),
    }
    if len(photos) >= 20:
        colour = _thumbnails(x)
        report["residual_colour_r2"] = ridge_r2((y - y_t).reshape(len(y), -1), colour, seed=seed)
        report["visible_colour_r2"] = ridge_r2(y_t.reshape(len(y), -1), colour, seed=seed)
    return report


def _thumbnails(images: np.ndarray, cells: int = 4) -> np.ndarray:
    """(N, cells*cells*C) block means: the photo's colour layout, what a line drawing cannot carry."""
    n, h, w, c = images.shape
    return images[:, : h - h % cells, : w - w % cells].reshape(n, cells, h // cells, cells, w // cells, c).mean((2, 4)).reshape(n, -1)


def ridge_r2(features: np.ndarray, targets: np.ndarray, folds: int = 5, seed: int = 0) -> float:
    """Best 5-fold cross-validated R^2 (pooled over targets) of ridge regression over a grid of penalties.

    Features are standardized on each training fold; a feature constant there carries nothing the fit can use
    and is dropped (scaled by 1e-8 it would turn a test photo's stray value into an R^2 of minus thousands).
    An R^2 near 0 (or below) means the features carry nothing linear about the targets.
    """
    n = len(features)
    order = np.random.default_rng(seed).permutation(n)
    splits = np.array_split(order, folds)
    best = -np.inf
    for alpha in (1e-1, 1e0, 1e1, 1e2, 1e3, 1e4):
        predicted = np.empty_like(targets, dtype=np.float64)
        for test in splits:
            train = np.setdiff1d(order, test)
            mean, std = features[train].mean(0), features[train].std(0)
            std = np.where(std > 1e-6, std, np.inf)
            a = (features[train] - mean) / std
            b = (features[test] - mean) / std
            t_mean = targets[train].mean(0)
            # the dual form: n_train x n_train, whatever the feature count
            gram = a @ a.T
            coef = np.linalg.solve(gram + alpha * np.eye(len(a)), targets[train] - t_mean)
            predicted[test] = (b @ a.T) @ coef + t_mean
        residual = ((targets - predicted) ** 2).sum()
        total = ((targets - targets.mean(0)) ** 2).sum()
        best = max(best, 1.0 - residual / total)
    return float(best)


def style_accuracy(classifier_path: str, outputs: dict) -> dict:
    classifier = load_classifier(classifier_path)
    result = {}
    for k, drawings in outputs.items():
        batch = np.stack(
            [np.repeat(cv2.resize(d, (INPUT_SIZE, INPUT_SIZE), interpolation=cv2.INTER_AREA)[:, :, None], 3, 2) for d in drawings]
        ).astype(np.float32)
        predicted = np.argmax(np.asarray(classifier(batch)), axis=-1)
        result[f"style{k}"] = float(np.mean(predicted == k - 1))
    return result


def inception_scores(weights: str, outputs: dict, real_dir: Path) -> dict:
    """FID and KID per style of G's drawings against real drawings (InceptionV3 pool features)."""
    net = keras.applications.InceptionV3(include_top=False, weights=weights, pooling="avg", input_shape=(299, 299, 3))

    def features(images):
        batch = np.stack(
            [
                cv2.resize(img if img.ndim == 3 else np.repeat(img[:, :, None], 3, 2), (299, 299), interpolation=cv2.INTER_AREA)
                for img in images
            ]
        )
        return np.asarray(net.predict(keras.applications.inception_v3.preprocess_input(batch.astype(np.float32)), verbose=0, batch_size=8))

    result = {}
    for k, drawings in outputs.items():
        folder = real_dir / f"style{k}"
        real = [read_rgb(p) for p in list_images(folder)] if folder.is_dir() else []
        if len(real) < 2:
            result[f"style{k}"] = {"skipped": f"{folder}: fewer than 2 real drawings"}
            continue
        fake_f, real_f = features(list(drawings)), features(real)
        result[f"style{k}"] = {
            "fid": metrics.fid(fake_f, real_f),
            "kid": metrics.kid(fake_f, real_f),
            "real": len(real),
            "generated": len(drawings),
        }
    return result


def write_samples(path: Path, photos: np.ndarray, outputs: dict, drawings: dict, count: int = 4) -> None:
    """A grid: photo, then G's drawing and the known drawing per style, one row per photo."""
    rows = []
    for i in range(min(count, len(photos))):
        cells = [photos[i]]
        for k in (1, 2, 3):
            cells.append(cv2.cvtColor(outputs[k][i], cv2.COLOR_GRAY2RGB))
            if k in drawings:
                cells.append(cv2.cvtColor(drawings[k][i], cv2.COLOR_GRAY2RGB))
        rows.append(np.concatenate(cells, axis=1))
    write_image_atomic(path, np.concatenate(rows, axis=0))


def evaluate(
    run: str | None,
    generator_path: str | None,
    dataset: str,
    output: str,
    size: int = 0,
    style_classifier: str | None = None,
    real_drawings: str | None = None,
    inception_weights: str | None = None,
    limit: int = 0,
) -> dict:
    photo_generator, config = None, None
    if run:
        generator, photo_generator, config = load_run(Path(run))
    elif generator_path:
        generator = load_generator(generator_path)
    else:
        raise ValueError("give --run or --generator.")
    size = size or (config.image_size if config else 256)
    photos, drawings, stems = load_test_pairs(Path(dataset), size, limit)
    report = {"run": run, "generator": generator_path, "dataset": dataset, "size": size, "test_photos": len(photos)}
    report["paired"], outputs = paired_metrics(generator, photos, drawings)
    if photo_generator is not None:
        levels = config.truncation_levels if config else 31.875
        report["hidden_information"] = hidden_information(generator, photo_generator, photos, levels)
    else:
        report["hidden_information"] = {"skipped": "needs --run (F comes from the run's checkpoint)"}
    report["style_accuracy"] = style_accuracy(style_classifier, outputs) if style_classifier else {"skipped": "no --style_classifier"}
    if real_drawings and inception_weights:
        report["fid_kid"] = inception_scores(inception_weights, outputs, Path(real_drawings))
    else:
        report["fid_kid"] = {
            "skipped": "needs --real_drawings and --inception_weights (ImageNet InceptionV3 weights cannot be downloaded here)"
        }
    out = Path(output)
    out.mkdir(parents=True, exist_ok=True)
    write_samples(out / "samples.png", photos, outputs, drawings)
    write_styles(out / "styles.png", photos, outputs)
    write_bytes_atomic(out / "evaluation.json", json.dumps(report, indent=2).encode())
    write_bytes_atomic(out / "evaluation.md", markdown(report).encode())
    write_bytes_atomic(out / "evaluation.html", html_report(report).encode())
    return report


def write_styles(path: Path, photos: np.ndarray, outputs: dict, count: int = 3) -> None:
    """The style difference at a glance: each photo, then G's drawing of it in style 1, 2 and 3, side by side."""
    rows = [
        np.concatenate([photos[i]] + [cv2.cvtColor(outputs[k][i], cv2.COLOR_GRAY2RGB) for k in (1, 2, 3)], 1)
        for i in range(min(count, len(photos)))
    ]
    write_image_atomic(path, np.concatenate(rows, 0))


PAIRED_COLUMNS = {
    "ssim": "SSIM vs the known drawing (1 = identical)",
    "edge_f1": "edge-F1 vs the known drawing (1 = every line found, none extra)",
    "chamfer_px": "Chamfer distance to the known lines, px (0 = on them)",
}
HIDDEN_ROWS = {
    "reconstruction_l1": "L1 of F(G(x)) to the photo, [-1, 1] units",
    "truncated_reconstruction_l1": "L1 of F(trunc(G(x))) to the photo (G(x) at 6 bits)",
    "noisy_reconstruction_l1": "L1 of F(G(x) + noise) to the photo (noise of noise_gray_levels)",
    "ratio": "truncated / plain L1 (near 1: nothing hidden below 6 bits)",
    "truncation_amplitude_gray_levels": "mean |G(x) - trunc(G(x))|, gray levels of 255",
    "residual_colour_r2": "R^2 of the photo's colour from the residual alone (near 0: nothing hidden)",
    "visible_colour_r2": "R^2 of the photo's colour from the visible trunc(G(x))",
}


def html_report(report: dict) -> str:
    """``evaluation.html``: the sample grids and every number with its unit and what it is compared with."""

    def cell(value) -> str:
        return html.escape(f"{value:.4g}" if isinstance(value, float) else str(value))

    parts = [
        f"<h1>Evaluation of {html.escape(str(report['run'] or report['generator']))}</h1>",
        f"<p>{report['test_photos']} held-out photos of {html.escape(str(report['dataset']))} at {report['size']} px.</p>",
        "<h2>The same photo in the three styles</h2><img src='styles.png' alt='photo, then style 1, 2, 3'>",
        "<h2>Against the known drawings</h2><p>Each row: the photo, then per style G's drawing and the known drawing.</p>"
        "<img src='samples.png' alt='samples'>",
    ]
    if report["paired"]:
        head = "".join(f"<th>{html.escape(text)}</th>" for text in PAIRED_COLUMNS.values())
        body = "".join(
            f"<tr><td>{html.escape(style)}</td>" + "".join(f"<td>{cell(row[k])}</td>" for k in PAIRED_COLUMNS) + "</tr>"
            for style, row in report["paired"].items()
        )
        parts.append(f"<h2>Paired metrics (mean over the photos)</h2><table><tr><th>style</th>{head}</tr>{body}</table>")
    hidden = report["hidden_information"]
    if "skipped" in hidden:
        parts.append(f"<h2>Hidden information</h2><p>Skipped: {html.escape(hidden['skipped'])}.</p>")
    else:
        rows = "".join(f"<tr><td>{html.escape(text)}</td><td>{cell(hidden[k])}</td></tr>" for k, text in HIDDEN_ROWS.items() if k in hidden)
        parts.append(f"<h2>Hidden information</h2><table>{rows}</table>")
    for key, title in (("style_accuracy", "Style accuracy (share classified as the asked style)"), ("fid_kid", "FID / KID per style")):
        value = report[key]
        text = f"Skipped: {value['skipped']}." if "skipped" in value else json.dumps(value)
        parts.append(f"<h2>{title}</h2><p>{html.escape(text)}</p>")
    style = "body{font-family:sans-serif;max-width:1100px;margin:auto}table{border-collapse:collapse}td,th{border:1px solid #ccc;padding:3px 8px}img{image-rendering:pixelated;min-width:480px}"
    return html_page("keras-asym evaluation", "\n".join(parts), style)


def markdown(report: dict) -> str:
    lines = [
        f"# Evaluation: {report['run'] or report['generator']}",
        "",
        f"{report['test_photos']} test photos of {report['dataset']} at {report['size']} px.",
        "",
    ]
    if report["paired"]:
        lines += ["| style | SSIM | edge-F1 | Chamfer px |", "|---|---|---|---|"]
        lines += [f"| {k} | {v['ssim']:.3f} | {v['edge_f1']:.3f} | {v['chamfer_px']:.2f} |" for k, v in report["paired"].items()]
    hidden = report["hidden_information"]
    if "skipped" not in hidden:
        lines += [
            "",
            "Hidden information: |F(G(x)) - x| = {reconstruction_l1:.4f}, |F(trunc(G(x))) - x| = {truncated_reconstruction_l1:.4f} "
            "(ratio {ratio:.2f}); mean |G(x) - trunc(G(x))| = {truncation_amplitude_gray_levels:.2f} gray levels.".format(**hidden),
        ]
    for key in ("style_accuracy", "fid_kid"):
        lines += ["", f"{key}: {json.dumps(report[key])}"]
    return "\n".join(lines) + "\n"
