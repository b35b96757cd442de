"""Run the benchmark suite: ``python benchmarks/run.py [--quick] [--only NAME ...]``.

Sections (``--only`` takes any of them; default all):

- ``accuracy``: attribution accuracy against the truth on tabular SCMs, vs DoWhy;
- ``solvers``: Shapley solver RMSE at equal budgets vs shapiq and DoWhy, exact-solver
  time vs DoWhy;
- ``metrics``: Dice / lesion-F1 throughput vs MONAI (``bench_metrics.py``);
- ``scaling``: time and memory vs cases and mechanisms;
- ``synthetic_ms``: estimated vs true attributions on the synthetic MS world
  (``bench_synthetic_ms.py`` in a subprocess; its truth is reused when unchanged);
- ``value_estimators``: ``method="iw"`` vs ``"regression"`` vs ``"mr"`` vs DoWhy's
  multiply-robust estimator on the tabular SCMs (MAE, CI coverage, time).

Each section writes ``benchmarks/results/<name>.json``; then the PNG figures and
``benchmarks/RESULTS.md`` are (re)written from every result present. A missing peer is
recorded as skipped; a section that raises is reported and the others still run (the
exit status is then 1). ``--quick`` takes a few minutes on a 2-core machine.
"""

from __future__ import annotations

import argparse
import importlib
import sys
import time
import traceback
from pathlib import Path

if __package__ in (None, ""):  # run as a script: make the ``benchmarks`` package importable
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks import plots, report
from benchmarks._common import RESULTS_DIR, read_json, write_json

SECTIONS = {
    "accuracy": "benchmarks.accuracy_tabular",
    "solvers": "benchmarks.solvers",
    "metrics": "benchmarks.metrics_peer",
    "scaling": "benchmarks.scaling",
    "synthetic_ms": "benchmarks.synthetic_ms",
    "value_estimators": "benchmarks.value_estimators",
}


def main(argv: list[str] | None = None) -> int:
    """Run the selected sections, then the figures and the report.

    Parameters
    ----------
    argv : list of str, optional
        Command-line arguments (default ``sys.argv[1:]``).

    Returns
    -------
    int
        0 if every section ran, 1 otherwise.
    """
    parser = argparse.ArgumentParser(prog="benchmarks/run.py", description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="small configuration (minutes)")
    parser.add_argument(
        "--only", nargs="+", choices=list(SECTIONS), metavar="NAME", help=" ".join(SECTIONS)
    )
    parser.add_argument(
        "--report-only",
        action="store_true",
        help="run nothing: rewrite the figures and RESULTS.md from the existing results",
    )
    args = parser.parse_args(argv)
    if args.report_only:
        figures = plots.make_all()
        print(f"wrote {report.write(run_log=read_json('run_log'))} and {len(figures)} figures")
        return 0
    names = args.only or list(SECTIONS)
    t_start = time.perf_counter()
    status = {}
    for name in names:
        print(f"== {name} ({'quick' if args.quick else 'full'})", flush=True)
        t0 = time.perf_counter()
        try:
            importlib.import_module(SECTIONS[name]).run(quick=args.quick)
        except Exception:  # report and go on with the other sections
            traceback.print_exc()
            status[name] = {"ok": False, "error": traceback.format_exc(limit=5)}
        else:
            status[name] = {"ok": True}
        status[name]["seconds"] = time.perf_counter() - t0
        print(f"   {name}: {status[name]['seconds']:.0f} s", flush=True)
    figures = plots.make_all()
    figures += [p for p in (RESULTS_DIR / "synthetic_ms.png",) if p.exists()]  # its own figure
    command = "benchmarks/run.py" + (" --quick" if args.quick else "")
    if args.only:
        command += " --only " + " ".join(args.only)
    run_log = {
        "command": command,
        "mode": "quick" if args.quick else "full",
        "sections": names,
        "status": status,
        "seconds": time.perf_counter() - t_start,
        "figures": [f.name for f in figures],
    }
    write_json("run_log", run_log)
    path = report.write(run_log=run_log)
    print(f"wrote {path} and {len(figures)} figures in {run_log['seconds']:.0f} s")
    return 0 if all(s["ok"] for s in status.values()) else 1


if __name__ == "__main__":
    sys.exit(main())
