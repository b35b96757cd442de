"""End to end on the synthetic MS world: estimates against the simulator's truth.

A fixed thresholding "model" (no training needed) keeps these fast; its Dice drops
when lesion contrast or noise changes (acquisition) and when the reference changes
(annotation).
"""

import warnings

import numpy as np
import pytest

import shiftattr as sa
from shiftattr.metrics import dice
from shiftattr.pipeline import segmentation_graph
from shiftattr.ratios import ImageStatsRatio


def _model_dice(env):
    x = np.asarray(env["X"], dtype=float)
    flat = x.reshape(len(x), -1)
    thr = np.quantile(flat, 0.97, axis=1).reshape((-1,) + (1,) * (x.ndim - 1))
    return dice(x > thr, np.asarray(env["Y"]).astype(bool), empty="one", batch=True)


SCENARIOS = {
    "acquisition-only": (
        {"center": "01", "annotator": "1"},
        {"center": "03", "annotator": "1"},
        "X",
    ),
    "annotation-only": (
        {"center": "01", "annotator": "1"},
        {"center": "01", "annotator": "5"},
        "Y",
    ),
}
_cache: dict = {}


def _estimate(name, method="iw", statistics="extended"):
    """``method`` is a value estimator, or ``"iw+check"`` for ``iw`` cross-checked;
    ``statistics`` those of the image ratio estimators (the library's default)."""
    if (name, method, statistics) not in _cache:
        src_kw, tgt_kw, _ = SCENARIOS[name]
        sim = sa.datasets.SyntheticMS(shape=(16, 16, 16), random_state=0)
        source = sim.sample(150, **src_kw, random_state=1)
        target = sim.sample(150, **tgt_kw, random_state=2)
        est = ImageStatsRatio(statistics=statistics, random_state=0)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            res = sa.attribute(
                segmentation_graph(),
                source,
                target,
                _model_dice(source),
                target_metric=_model_dice(target),
                estimators={"X": est, "Y": est},
                method=method.removesuffix("+check"),
                cross_check=method.endswith("+check"),
                n_folds=3,
                n_bootstrap=100,
                bootstrap="fixed",
                progress=False,
                random_state=0,
            )
        truth = sim.true_attribution(
            _model_dice, src_kw, tgt_kw, n=300, random_state=3, progress=False
        )
        _cache[name, method, statistics] = (res, truth)
    return _cache[name, method, statistics]


@pytest.mark.parametrize("method", ["iw", "mr"])
@pytest.mark.parametrize("name", sorted(SCENARIOS))
def test_single_mechanism_shift_is_the_dominant_one(name, method):
    res, truth = _estimate(name, method)
    shifted = SCENARIOS[name][2]
    assert truth.dominant == shifted
    assert truth.values[shifted] > 0.03
    assert res.dominant == shifted, (res.values, truth.values)
    assert res.values[shifted] > 0
    for mech in set(res.mechanisms) - {shifted}:  # unshifted mechanisms stay near 0
        assert abs(res.values[mech]) < 0.5 * res.values[shifted] + 0.01, res.values


@pytest.mark.parametrize(
    "name, method, statistics",
    [
        ("acquisition-only", "iw", "extended"),
        # still short (Y +0.055 of a true +0.084, interval [0.035, 0.077]): the interval
        # holds the truth only within the truth's own Monte-Carlo error
        ("annotation-only", "iw", "extended"),
        pytest.param(
            "annotation-only",
            "iw",
            "basic",
            marks=pytest.mark.xfail(
                strict=True,
                reason="known limitation of the basic image statistics, measured: plain "
                "importance weighting gives Y +0.037 of a true +0.084, interval [0.028, "
                "0.052], and no warning. The annotation ratio is too flat (AUC 0.62, ESS "
                "84 %, Pareto k about 0: light weights), so the estimate shrinks towards 0, "
                "and the fixed-ratio bootstrap ignores the ratio estimators' error; with the "
                "extended statistics (AUC 0.66) the interval comes within the truth's "
                "Monte-Carlo error of it, method='mr' covers it, and cross_check=True "
                "warns (test below)",
            ),
        ),
        ("acquisition-only", "mr", "extended"),
        ("annotation-only", "mr", "extended"),
    ],
)
def test_interval_covers_the_truth(name, method, statistics):
    # mr: the regressions carry most of the estimate, so the effective sample size no
    # longer limits it, and the fixed bootstrap of an orthogonal estimator is honest
    _check_coverage(name, method, statistics)


def _check_coverage(name, method, statistics):
    res, truth = _estimate(name, method, statistics)
    shifted = SCENARIOS[name][2]
    lo, hi = res.ci[shifted]
    pad = 2 * truth.stderr[shifted]
    assert lo - pad <= truth.values[shifted] <= hi + pad, (res.ci, truth.values)


def test_the_cross_check_warns_where_importance_weighting_misses_silently():
    """iw's annotation estimate shrinks towards 0 with light weights and no warning
    (the strict xfail above with the basic statistics; short of the truth with the
    extended ones too); the regression cross-check disagrees on Y and says so."""
    plain, _ = _estimate("annotation-only", "iw")
    checked, truth = _estimate("annotation-only", "iw+check")
    assert checked.values == plain.values
    assert not any(w["code"] == "methods_disagree" for w in plain.warnings)
    flagged = {w["mechanism"] for w in checked.warnings if w["code"] == "methods_disagree"}
    assert "Y" in flagged, checked.warnings
    check = checked.diagnostics["estimator"]["check_values"]["Y"]
    assert abs(check - truth.values["Y"]) < abs(plain.values["Y"] - truth.values["Y"])


def test_a_spurious_value_without_separation_is_flagged():
    """Acquisition only: the annotation did not shift, and its node set separates the
    environments no better than its parents; iw's fixed interval still excludes 0 around
    its value. shift_not_separated says so, for Y alone."""
    res, truth = _estimate("acquisition-only", "iw")
    flagged = {w["mechanism"] for w in res.warnings if w["code"] == "shift_not_separated"}
    assert flagged == {"Y"}
    assert truth.values["Y"] == 0 and not res.ci["Y"][0] <= 0 <= res.ci["Y"][1]
    diag = res.diagnostics["mechanisms"]["Y"]
    assert diag["auc_joint"] <= diag["auc_parents"]
    # the shifted mechanism, whose node set does separate, is not named
    assert "X" not in flagged and res.ci["X"][0] > 0
