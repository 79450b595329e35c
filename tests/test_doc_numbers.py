"""Every measured number in README.md and docs/ has a source: a results file, a shipped record or a test named in
its section, holding that number. The generated pages (docs/benchmarks.md, docs/results/*.md, the README's results
table) are checked against their JSON by test_benchmark_report."""

from __future__ import annotations

import json
import math
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
GENERATED = {"docs/benchmarks.md"}
# A measurement: a number with a unit, or a score written with two or more decimals (SSIM 0.852, R² -0.29).
UNITS = r"s|ms|µs|FPS|dB|MB|GB|GiB|MiB|KB|kB|×|x|%|examples/s|steps/s|images/s|GFLOP/s|GFLOP|min|h|px"
MEASURE = re.compile(rf"(?<![\w.\-/])([−-]?\d[\d,]*\.?\d*)\s?({UNITS})(?![\w/²])|(?<![\w.\-/])([−-]?\d\.\d{{2,}})(?![\w.])")
# A bound, limit or setting is not a measurement: "≥ 30 dB", "at most 1 MiB", "a 50% bar".
BOUND = re.compile(
    r"(≥|≤|<|>|=|at most|at least|under|up to|over|within|below|above|bar|limit|budget|cap|every|per|each|allows)(\s+of)?\s*$"
)
# A version is not a measurement: "Python 3.11", "TensorFlow 2.21".
VERSION = re.compile(r"(python|tensorflow(-cpu)?|keras|torch|pytorch|qemu|mediapipe|litert|numpy|opencv|debian|version|==)\s*$", re.I)
SOURCE = re.compile(
    r"(?:docs/)?results/[\w.*-]+\.(?:json|md)|keras_asym/pretrained/\w+\.json|tests/test_\w+\.py|benchmarks\.md|edge_demo/runtime/\w+\.json"
)
FACTORS = (1, 100, 1e3, 1e-3, 1e-6, 1 / 60, 1 / 3600, 1 / 1024, 1e-9)


def _docs() -> list[Path]:
    return [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]


def _prose(text: str) -> str:
    """The text a reader takes as claims: without code blocks, code spans, links' targets and the generated table."""
    text = re.sub(r"<!-- results:start.*?<!-- results:end -->", "", text, flags=re.S)
    text = re.sub(r"```.*?```", "", text, flags=re.S)
    text = re.sub(r"`[^`\n]*`", "", text)
    return re.sub(r"\]\([^)]*\)", "]", text)


def _sections(text: str) -> list[str]:
    return re.split(r"\n(?=#{1,4} )", text)


def _numbers_in(path: Path) -> tuple[list[float], str]:
    """Every number a source holds: a JSON file's numeric leaves, or a text file's numbers (and its text)."""
    text = path.read_text()
    if path.suffix == ".json":
        values = []

        def walk(node):
            if isinstance(node, bool):
                return
            if isinstance(node, (int, float)):
                values.append(float(node))
            elif isinstance(node, dict):
                for item in node.values():
                    walk(item)
            elif isinstance(node, list):
                for item in node:
                    walk(item)
            elif isinstance(node, str):
                values.extend(float(v) for v in re.findall(r"-?\d+\.?\d*", node))

        walk(json.loads(text))
        return values, ""
    return [float(v) for v in re.findall(r"-?\d+\.?\d*", text.replace(",", ""))], text


def _resolve(name: str, doc: Path) -> list[Path]:
    if name == "benchmarks.md":
        return [ROOT / "docs" / "benchmarks.md"]
    if name.startswith("results/") or name.startswith("docs/results/"):
        return sorted((ROOT / "docs").glob(name.removeprefix("docs/")))
    return [ROOT / name] if (ROOT / name).is_file() else []


def _held(value: str, sources: list[tuple[list[float], str]]) -> bool:
    text_value = value.replace(",", "").replace("−", "-")
    number = float(text_value)
    decimals = len(text_value.split(".")[1]) if "." in text_value else 0
    for values, text in sources:
        if text and re.search(rf"(?<![\d.]){re.escape(text_value)}(?![\d])", text.replace(",", "")):
            return True
        for x in values:
            for k in FACTORS:
                scaled = x * k
                if math.isfinite(scaled) and round(scaled, decimals) == round(number, decimals):
                    return True
                # a ratio printed as a slowdown ("1.2x its time") is 1 / the speed-up the JSON holds
                if scaled and math.isfinite(1 / scaled) and round(1 / scaled, decimals) == round(number, decimals):
                    return True
    return False


def unsourced(doc: Path) -> list[str]:
    problems = []
    text = re.sub(r"```.*?```", "", doc.read_text(), flags=re.S)  # a "# comment" in a code block is not a heading
    for section in _sections(text):
        names = set(SOURCE.findall(section))
        sources = [_numbers_in(path) for name in names for path in _resolve(name, doc)]
        prose = _prose(section)
        heading = section.strip().splitlines()[0][:60] if section.strip() else ""
        for match in MEASURE.finditer(prose):
            value = match.group(1) or match.group(3)
            before = prose[max(0, match.start() - 14) : match.start()]
            if BOUND.search(before) or VERSION.search(before) or re.fullmatch(r"20\d\d", value):
                continue
            if match.group(2) == "px" and "." not in value:  # an image size or a shift is a setting; a distance in px is measured
                continue
            if not _held(value, sources):
                problems.append(
                    f"{doc.relative_to(ROOT) if doc.is_relative_to(ROOT) else doc.name} [{heading}]: {match.group(0).strip()!r} has no source in its section"
                )
    return problems


def test_every_measured_number_in_the_docs_is_held_by_a_source_its_section_names():
    problems = [p for doc in _docs() if str(doc.relative_to(ROOT)) not in GENERATED for p in unsourced(doc)]
    assert not problems, f"{len(problems)} numbers without a source:\n" + "\n".join(problems)


def test_a_number_without_a_source_is_found_and_one_with_its_source_passes(tmp_path):
    results = ROOT / "docs" / "results" / "inference.json"
    speed = json.loads(results.read_text())["sizes"]["256"]["rows"]["tflite_dynamic"]["speed_vs_pytorch"]
    good = tmp_path / "good.md"
    good.write_text(f"# A\n\nThe dynamic variant runs {speed:.2f}x PyTorch's speed (docs/results/inference.json).\n")
    bad = tmp_path / "bad.md"
    bad.write_text(
        f"# A\n\nThe dynamic variant runs {speed + 0.37:.2f}x PyTorch's speed (docs/results/inference.json).\n\n# B\n\nIt draws at 97.3 FPS.\n"
    )
    assert unsourced(good) == []
    found = unsourced(bad)
    assert len(found) == 2 and "97.3 FPS" in found[1], found
