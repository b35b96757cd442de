"""Repeated cross-fitting: combining attributions fitted on different fold assignments.

A cross-fitted estimate depends on which cases share a fold. With ``n_repeats`` fold
assignments, :func:`shiftattr.attribute` reports the mean of the repeats' values and
measures their spread. A fixed bootstrap holds the fitted ratios (and regressions) fixed,
so its intervals leave that spread out; :func:`repeats_interval` adds it, as the
variance adjustment of repeated sample splitting in double machine learning
(Chernozhukov et al. 2018, the adjustment for the uncertainty of the split)::

    se² = (bootstrap s.e. of the mean over repeats)² + (variance between repeats)

and scales the percentile interval about the point estimate by ``se / bootstrap s.e.``.
This adds the part of the fitted models' variance that shows as dependence on the fold
split; the part every split shares (the sample the models were fitted on) stays out.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from scipy.stats import norm

__all__ = ["RepeatsInterval", "repeats_interval", "split_unstable_warnings"]


@dataclass(frozen=True)
class RepeatsInterval:
    """The interval of a mean over cross-fitting repeats, per mechanism.

    Attributes
    ----------
    low, high : ndarray of shape (n_mechanisms,)
        The widened interval.
    stderr : ndarray of shape (n_mechanisms,)
        ``sqrt(bootstrap s.e.² + between s.d.²)``.
    factor : ndarray of shape (n_mechanisms,)
        ``stderr / bootstrap s.e.``, the scale applied to the percentile interval about
        the point (``inf`` where the bootstrap s.e. is 0 but the repeats differ: there
        the interval is the normal one, point ± z * stderr).
    between_sd : ndarray of shape (n_mechanisms,)
        Standard deviation of the values between repeats (``ddof=1``).
    boot_sd : ndarray of shape (n_mechanisms,)
        Standard deviation of the bootstrap replicates (``ddof=1``).

    Examples
    --------
    >>> iv = repeats_interval(np.zeros(1), np.array([[-0.1], [0.1]]), np.array([[-0.1], [0.1]]))
    >>> float(iv.factor[0]) == float(np.sqrt(2)), iv.low.round(3).tolist()
    (True, [-0.134])
    """

    low: np.ndarray
    high: np.ndarray
    stderr: np.ndarray
    factor: np.ndarray
    between_sd: np.ndarray
    boot_sd: np.ndarray


def repeats_interval(
    point: np.ndarray,
    repeat_values: np.ndarray,
    boot_values: np.ndarray,
    confidence: float = 0.95,
) -> RepeatsInterval:
    """Percentile interval of fixed-bootstrap replicates, widened by the spread of the repeats.

    Parameters
    ----------
    point : ndarray of shape (n_mechanisms,)
        The mean over the repeats.
    repeat_values : ndarray of shape (n_repeats, n_mechanisms)
        Each repeat's values (at least two repeats).
    boot_values : ndarray of shape (n_bootstrap, n_mechanisms)
        Replicates of the mean over the repeats, with the fitted models held fixed.
    confidence : float, default 0.95

    Returns
    -------
    RepeatsInterval

    Examples
    --------
    >>> point = np.array([0.0])
    >>> repeats = np.array([[-0.03], [0.03]])            # between-repeat s.d. 0.042
    >>> boot = np.array([[-0.03], [0.0], [0.03]])        # bootstrap s.d. 0.03
    >>> iv = repeats_interval(point, repeats, boot)
    >>> iv.factor.round(3).tolist(), iv.between_sd.round(3).tolist(), iv.stderr.round(4).tolist()
    ([1.732], [0.042], [0.052])
    >>> iv.low.round(4).tolist(), iv.high.round(4).tolist()   # raw: [-0.0285, 0.0285]
    ([-0.0494], [0.0494])
    """
    point = np.asarray(point, dtype=float)
    repeat_values = np.asarray(repeat_values, dtype=float)
    boot_values = np.asarray(boot_values, dtype=float)
    if repeat_values.ndim != 2 or len(repeat_values) < 2:
        raise ValueError(
            f"repeat_values must hold at least two repeats as rows, got shape {repeat_values.shape}."
        )
    if boot_values.ndim != 2 or len(boot_values) < 1:
        raise ValueError(
            f"boot_values must hold at least one replicate as a row, got shape {boot_values.shape}."
        )
    alpha = (1 - confidence) / 2
    between_sd = repeat_values.std(axis=0, ddof=1)
    boot_sd = boot_values.std(axis=0, ddof=1) if len(boot_values) > 1 else np.zeros_like(point)
    stderr = np.hypot(boot_sd, between_sd)
    with np.errstate(divide="ignore", invalid="ignore"):
        factor = np.where(stderr > 0, stderr / boot_sd, 1.0)
    lo, hi = np.quantile(boot_values, [alpha, 1 - alpha], axis=0)
    scaled = np.isfinite(factor)
    z = norm.ppf(1 - alpha)
    low = np.where(scaled, point + (lo - point) * np.where(scaled, factor, 1.0), point - z * stderr)
    high = np.where(
        scaled, point + (hi - point) * np.where(scaled, factor, 1.0), point + z * stderr
    )
    return RepeatsInterval(low, high, stderr, factor, between_sd, boot_sd)


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
                "ratios (or regressions) are unstable. With bootstrap='fixed' the interval "
                "includes this spread; more cases, fewer or simpler features, or "
                "method='mr' help."
            ),
        }
        for k, sd, se in zip(mechanisms, between_sd, boot_sd)
        if sd > se
    ]
