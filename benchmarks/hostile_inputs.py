"""Every command against hostile and careless inputs: what each case costs in memory and time, and whether the
command kept the README's exit-status promise within its memory budget.

    python -m benchmarks.hostile_inputs                 # docs/results/hostile_inputs.json, rendered in docs/benchmarks.md
    python -m benchmarks.hostile_inputs --only=.pth     # the cases whose name contains a text

The corpus (``benchmarks/common/hostile.py``) is written afresh into a temporary folder: checkpoint pickles that
blow up when printed or parsed, zip bombs inside ``.pth``/``.keras`` files and behind ``.tflite`` models, models
declaring gigabyte tensors, images declaring billions of pixels, damaged videos, impossible flags and paths. Each
case is one ``python -m <command>`` process; its peak memory is the largest of it and every child it waited for.
The budgets are ``keras_asym.commands.MEMORY_BUDGET_MB``.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

from absl import flags

from benchmarks.common import hostile, results
from edge_demo.runtime.progress import Progress
from keras_asym.commands import MEMORY_BUDGET_MB

_ONLY = flags.DEFINE_string("only", "", "Run only the cases whose name contains this text.")
_OUTPUT = flags.DEFINE_string("output", None, "Results JSON (default: docs/results/hostile_inputs.json).")


def main(argv):
    del argv
    with tempfile.TemporaryDirectory(prefix="hostile_inputs_") as work:
        print("writing the corpus (the .tflite cases convert three small models) ...", flush=True)
        cases = [c for c in hostile.build(Path(work), hostile.tflite_models()) if _ONLY.value in f"{c.command} {c.name}"]
        rows = []
        progress = Progress(len(cases), "hostile inputs", unit="cases")
        for k, case in enumerate(cases):
            outcome = hostile.run_measured(hostile.MODULES[case.command], case.args)
            problem = hostile.verdict(case, outcome, MEMORY_BUDGET_MB[case.command])
            rows.append(
                {
                    "command": case.command,
                    "case": case.name,
                    "expect": case.expect,
                    "exit": outcome.exit_code,
                    "peak_mb": round(outcome.peak_mb, 1),
                    "seconds": round(outcome.seconds, 2),
                    "line": outcome.last_line().replace(work, "<corpus>")[:300],
                    "problem": problem,
                }
            )
            print(
                f"{'ok  ' if not problem else 'FAIL'} {case.command}: {case.name}: exit {outcome.exit_code}, {outcome.peak_mb:.0f} MB, {outcome.seconds:.1f} s {problem}",
                flush=True,
            )
            progress.update(k + 1)
    record = {**results.header("hostile_inputs", 1), "budgets_mb": MEMORY_BUDGET_MB, "timeout_s": hostile.TIMEOUT_S, "cases": rows}
    path = results.write(record, _OUTPUT.value)
    from benchmarks import report

    print(report.render_hostile_inputs(record))
    print(f"wrote {path}")
    return 0 if not any(row["problem"] for row in rows) else 1


if __name__ == "__main__":
    from edge_demo.runtime import cli

    cli.run(main)
