"""Progress lines: one per interval and one at the end, each with done/total, elapsed time and an ETA."""

from __future__ import annotations

import io

from edge_demo.runtime.progress import Progress, clock


def test_clock_reads_like_a_duration():
    assert [clock(s) for s in (0.4, 59, 61, 3725)] == ["0s", "59s", "1m01s", "1h02m"]


def test_progress_prints_at_most_once_per_interval_and_always_at_the_end(monkeypatch):
    now = [100.0]
    monkeypatch.setattr("edge_demo.runtime.progress.time.monotonic", lambda: now[0])
    out = io.StringIO()
    progress = Progress(10, "export", unit="photos", interval=5.0, stream=out)
    for _ in range(9):
        now[0] += 1.0
        progress.update()
    assert out.getvalue().splitlines() == ["export: 5/10 photos (50%), 5s elapsed, ETA 5s"]
    now[0] += 1.0
    progress.update(note="done")
    assert out.getvalue().splitlines()[-1] == "export: 10/10 photos (100%), 10s elapsed [done]"


def test_a_resumed_job_estimates_from_its_own_rate(monkeypatch):
    now = [0.0]
    monkeypatch.setattr("edge_demo.runtime.progress.time.monotonic", lambda: now[0])
    out = io.StringIO()
    progress = Progress(100, "train", interval=0.0, stream=out, start=90)
    now[0] = 2.0
    progress.update(95)
    assert out.getvalue().strip() == "train: 95/100 steps (95%), 2s elapsed, ETA 2s"
