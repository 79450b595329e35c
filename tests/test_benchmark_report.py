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


def test_the_distillation_table_shows_every_score_the_report_holds():
    machine = {"cpu": "x", "flags": [], "cores_visible": 2, "threads": 2, "date": "2026-12-04T00:00:00+00:00", "versions": {}}
    score = {"ssim": 0.8512, "edge_f1": 0.9281, "photos": 8}
    int8 = {"ssim": 0.8493, "edge_f1": 0.9277, "photos": 8}
    record = {
        "benchmark": "distill_report",
        "command": "python -m benchmarks.distill_report",
        "machine": machine,
        "size": 256,
        "teacher": "t.keras",
        "student": "s.keras",
        "models": {
            "student": {
                "params_M": 1.05,
                "gflops": 3.92,
                "fp32_MB": 4.1,
                "int8_MB": 1.26,
                "fp32_ms": 22.1,
                "int8_ms": 7.6,
                "int8_fps": 131.6,
            }
        },
        "quality": {"aligned_photos/style1/fp32": score, "aligned_photos/style1/int8": int8},
        "seen_photos": {"style1": {"ssim": 0.916, "edge_f1": 0.95, "photos": 21}},
        "teacher_self_consistency": {"aligned_photos/mirror": {"ssim": 0.818, "edge_f1": 0.912}},
    }
    text = report.render_distill_report(record)
    for shown in ("0.851 / 0.928", "0.849 / 0.928", "131.6", "0.916 / 0.950", "0.818 / 0.912", "21 photos"):
        assert shown in text, shown
    assert "blurred" not in text  # a report from before the blurred-teacher scale renders without it
    assert "mean of the styles" not in text and "; mean 0.916 / 0.950" in text  # one style: its own row is the mean
    record["quality"]["aligned_photos/style2/fp32"] = {"ssim": 0.8404, "edge_f1": 0.9301, "photos": 8}
    record["quality"]["aligned_photos/style2/int8"] = {"ssim": 0.8400, "edge_f1": 0.9300, "photos": 8}
    assert "| aligned_photos (8) | mean of the styles | 0.846 / 0.929 | 0.845 / 0.929 |" in report.render_distill_report(record)
    record["teacher_blurred"] = {"aligned_photos/sigma_1.0px": {"ssim": 0.9017, "edge_f1": 0.9632}}
    assert "| aligned_photos/sigma_1.0px | 0.902 / 0.963 |" in report.render_distill_report(record)
    for key in ("fp32_ms", "int8_ms", "int8_fps"):  # a report run with --notiming, beside other work
        del record["models"]["student"][key]
    assert "| student | 1.05 | 3.92 | 4.1 | 1.26 | not timed | not timed | not timed |" in report.render_distill_report(record)


def test_the_readme_names_each_training_steps_cpu_and_leaves_out_a_capped_onednn(tmp_path):
    for name in (
        "inference.json",
        "train_step_mixed_bfloat16.json",
        "train_step_mixed_bfloat16_no_amx.json",
        "train_step_mixed_bfloat16_zen4.json",
    ):
        shutil.copy(ROOT / "docs" / "results" / name, tmp_path)
    (line,) = [line for line in report.headline(tmp_path).splitlines() if line.startswith("One full training step")]
    assert "Intel Xeon, AMX: 14.6 s against 40.7 s, 2.78x" in line and "AMD EPYC, no AMX: 34.7 s against 59.2 s, 1.69x" in line
    assert "0.80x" not in line


def test_two_exports_in_folders_of_one_name_get_rows_of_their_own():
    from benchmarks.common.camera_demo import row_name

    rows = {}
    for model in (Path("exports/a/student_256px/drawing_int8.tflite"), Path("exports/b/student_256px/drawing_int8.tflite")):
        rows[row_name(model, rows)] = model
    assert list(rows) == ["student_256px/drawing_int8", "exports/b/student_256px/drawing_int8"]
