"""Test-wide settings: one thread per worker (pytest-xdist runs two workers on two cores)."""

import os

for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

import matplotlib  # noqa: E402

matplotlib.use("Agg")

try:  # the same examples on every run: a red CI is then reproducible, never luck
    from hypothesis import settings

    settings.register_profile("shiftattr", derandomize=True, print_blob=True)
    settings.load_profile("shiftattr")
except ImportError:  # pragma: no cover
    pass
