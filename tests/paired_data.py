"""Paired readings for the tests: a linear-Gaussian source whose cases also carry ``Y``
as the target's mechanism would have produced it from the same parents and noise."""

from __future__ import annotations

import shiftattr as sa

NODES = ("Z", "X", "Y")


def paired_source(scm, n: int, seed: int) -> sa.Environment:
    """``n`` source cases of ``scm`` holding, under ``"target"``, their counterfactual
    ``Y`` (common random numbers: ``sample_mixed`` with only ``Y`` shifted)."""
    base = scm.sample_mixed(n, [], random_state=seed)
    y_cf = scm.sample_mixed(n, ["Y"], random_state=seed)["Y"]
    return sa.Environment(
        {v: base[v] for v in NODES}, name="source", counterfactuals={"target": {"Y": y_cf}}
    )
