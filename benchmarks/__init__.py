"""shiftattr's benchmark suite: accuracy, solver efficiency, metrics and scaling vs peers.

Run everything with ``python benchmarks/run.py [--quick] [--only NAME ...]`` or
``python -m benchmarks``; results go to ``benchmarks/results/*.json`` and the summary
to ``benchmarks/RESULTS.md``.
"""
