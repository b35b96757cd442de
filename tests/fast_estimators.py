"""Fast estimators for the tabular value-estimator tests (a helper module, not a test).

The Gaussian example's log-ratios are quadratic and its regressions close to quadratic,
so one quadratic logistic model without calibration and a quadratic ridge are exact
families for it, and much quicker than the defaults' choice among candidates.
"""

import shiftattr as sa
from shiftattr.value import default_regressors


def fast_settings(mechanisms=("Z", "X", "Y")) -> dict:
    """``estimators`` and ``regressor`` keywords of ``attribute`` for the Gaussian SCM."""
    est = sa.ratios.ClassifierRatio(
        sa.ratios.classifier.default_candidates()["quadratic-logistic"], calibration="none"
    )
    return {
        "estimators": dict.fromkeys(mechanisms, est),
        "regressor": default_regressors()["quadratic-ridge"],
    }
