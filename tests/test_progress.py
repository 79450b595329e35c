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


def test_a_time_boxed_job_estimates_the_sooner_of_its_work_and_its_budget(monkeypatch):
    now = [0.0]
    monkeypatch.setattr("edge_demo.runtime.progress.time.monotonic", lambda: now[0])
    out = io.StringIO()
    progress = Progress(1200, "train", interval=0.0, stream=out, budget=360.0)
    now[0] = 60.0
    progress.update(100)  # 1,100 steps left at 100 per minute: 11 minutes of work, 5 of budget
    now[0] = 120.0
    progress.update(1100)  # 100 steps left at 1,100 per 2 minutes: 11 s of work, 4 min of budget
    assert out.getvalue().splitlines() == [
        "train: 100/1200 steps (8%), 1m00s elapsed, ETA 5m00s (time budget)",
        "train: 1100/1200 steps (92%), 2m00s elapsed, ETA 11s",
    ]
