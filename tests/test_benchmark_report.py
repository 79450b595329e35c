"""docs/benchmarks.md and the README's results table are generated from docs/results/*.json, never edited by hand."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

from benchmarks import report

ROOT = Path(__file__).resolve().parents[1]


def test_committed_tables_are_exactly_what_the_json_renders():
    assert (ROOT / "docs" / "benchmarks.md").read_text() == report.build(ROOT / "docs" / "results")
    assert (ROOT / "README.md").read_text() == report.update_readme(ROOT / "README.md", ROOT / "docs" / "results")


def test_a_benchmark_not_run_says_so_and_ratios_need_their_reference(tmp_path):
    results = tmp_path / "results"
    results.mkdir()
    text = report.build(results)
    assert text.count("Not measured yet") == len(report.SECTIONS)
    shutil.copy(ROOT / "docs" / "results" / "train_step.json", results)
    record = json.loads((results / "train_step.json").read_text())
    record["rows"] = {k: {key: v for key, v in row.items() if not key.startswith("speed_vs")} for k, row in record["rows"].items()}
    (results / "train_step.json").write_text(json.dumps(record))
    rendered = report.build(results)
    assert "not measured" in rendered and "Not measured yet: run `python -m benchmarks.inference`" in rendered
