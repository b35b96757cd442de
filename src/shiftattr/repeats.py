"""Repeated cross-fitting: combining attributions fitted on different fold assignments.

A cross-fitted estimate depends on which cases share a fold. With ``n_repeats`` fold
assignments, :func:`shiftattr.attribute` reports the mean of the repeats' values and
measures their spread. A fixed bootstrap holds the fitted ratios (and regressions) fixed,
so its intervals leave that spread out; :func:`widen_for_repeats` adds it, as the
variance adjustment of repeated sample splitting in double machine learning
(Chernozhukov et al. 2018, the adjustment for the uncertainty of the split)::

    se² = (bootstrap s.e. of the mean over repeats)² + (variance between repeats)

and scales the percentile interval about the point estimate by ``se / bootstrap s.e.``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

__all__ = ["split_unstable_warnings", "widen_for_repeats"]


def widen_for_repeats(
    point: np.ndarray, repeat_values: np.ndarray, boot_values: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Spread bootstrap replicates about the point by the variance between repeats.

    Parameters
    ----------
    point : ndarray of shape (n_mechanisms,)
        The mean over the repeats.
    repeat_values : ndarray of shape (n_repeats, n_mechanisms)
        Each repeat's values (at least two repeats).
    boot_values : ndarray of shape (n_bootstrap, n_mechanisms)
        Replicates of the mean over the repeats, with the fitted models held fixed.

    Returns
    -------
    scaled : ndarray of shape (n_bootstrap, n_mechanisms)
        ``point + (boot_values - point) * factor``: their percentiles are the widened
        interval and their standard deviation the widened standard error.
    factor : ndarray of shape (n_mechanisms,)
        ``sqrt(1 + between / bootstrap variance)``, at least 1.
    between_sd : ndarray of shape (n_mechanisms,)
        Standard deviation of the values between repeats (``ddof=1``).

    Examples
    --------
    >>> point = np.array([0.0])
    >>> repeats = np.array([[-0.03], [0.03]])            # between-repeat s.d. 0.042
    >>> boot = np.array([[-0.03], [0.0], [0.03]])        # bootstrap s.d. 0.03
    >>> scaled, factor, sd = widen_for_repeats(point, repeats, boot)
    >>> factor.round(3).tolist(), sd.round(3).tolist()
    ([1.732], [0.042])
    >>> bool(np.isclose(scaled.std(axis=0, ddof=1)[0], np.hypot(0.03, sd[0])))
    True
    """
    point = np.asarray(point, dtype=float)
    repeat_values = np.asarray(repeat_values, dtype=float)
    boot_values = np.asarray(boot_values, dtype=float)
    if repeat_values.ndim != 2 or len(repeat_values) < 2:
        raise ValueError(
            f"repeat_values must hold at least two repeats as rows, got shape {repeat_values.shape}."
        )
    between_sd = repeat_values.std(axis=0, ddof=1)
    boot_sd = boot_values.std(axis=0, ddof=1) if len(boot_values) > 1 else np.zeros_like(point)
    with np.errstate(divide="ignore", invalid="ignore"):
        factor = np.sqrt(1.0 + between_sd**2 / boot_sd**2)
    # no bootstrap spread to scale (a constant metric, one replicate): leave as is
    factor = np.where(np.isfinite(factor), factor, 1.0)
    return point + (boot_values - point) * factor, factor, between_sd


def split_unstable_warnings(
    mechanisms: Sequence[str],
    between_sd: np.ndarray,
    boot_sd: np.ndarray,
    n_repeats: int,
) -> list[dict[str, Any]]:
    """A ``split_unstable`` warning per mechanism whose repeats disagree beyond the bootstrap.

    Parameters
    ----------
    mechanisms : sequence of str
    between_sd : ndarray of shape (n_mechanisms,)
        Standard deviation of the values between cross-fitting repeats.
    boot_sd : ndarray of shape (n_mechanisms,)
        Bootstrap standard error before any widening.
    n_repeats : int

    Returns
    -------
    list of dict
        Warnings with ``code``, ``mechanism`` and ``message``.

    Examples
    --------
    >>> w = split_unstable_warnings(["X", "Y"], np.array([0.03, 0.001]), np.array([0.01, 0.01]), 5)
    >>> [(x["code"], x["mechanism"]) for x in w]
    [('split_unstable', 'X')]
    """
    return [
        {
            "code": "split_unstable",
            "mechanism": k,
            "message": (
                f"mechanism {k!r}: its value moves by {sd:.4f} (s.d.) between {n_repeats} "
                f"cross-fitting repeats, more than its bootstrap standard error {se:.4f}: "
                "the estimate depends on which cases were fitted together, so the fitted "
                "ratios (or regressions) are unstable. The interval includes this spread; "
                "more cases, fewer or simpler features, or method='mr' help."
            ),
        }
        for k, sd, se in zip(mechanisms, between_sd, boot_sd)
        if sd > se
    ]
