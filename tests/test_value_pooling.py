import numpy as np
import pytest
from sklearn.linear_model import RidgeCV
from sklearn.neighbors import KNeighborsRegressor

from shiftattr.environment import Environment
from shiftattr.value.build import ratio_nodes
from shiftattr.value.pooling import check_pooled, resolve_pooled

LEVELS = ("D", "X", "Y")


def _envs():
    rng = np.random.default_rng(0)
    make = lambda: Environment(  # noqa: E731
        {"D": rng.normal(size=6), "X": rng.normal(size=(6, 8, 8, 8)), "Y": rng.random(6)}
    )
    return make(), make()


def _auto(levels=LEVELS, mechanisms=LEVELS, paired=(), method="mr", **kw):
    return resolve_pooled(
        "auto",
        method,
        levels,
        _envs(),
        ratio_nodes=ratio_nodes(method, levels, mechanisms, paired),
        n_paired=len(paired),
        **kw,
    )


def test_auto_pools_mr_when_a_poolable_regression_sees_an_image():
    pooled, why = _auto()
    assert pooled and "['Y']" in why and "['X']" in why  # Y's regression sees D and X
    # a featurizer marks a node as seen through summaries, even a tabular one
    assert _auto(levels=("D", "Y"), mechanisms=("D", "Y"), featurizers={"D": len})[0]


def test_auto_ignores_images_no_pooled_regression_sees():
    # every regression on tabular variables (the tabular SCMs' evidence)
    assert _auto(levels=("D", "Y"), mechanisms=("D", "Y"))[0] is False
    # the image is the last level: no regression sees it
    assert _auto(levels=("D", "X"), mechanisms=("D", "X"))[0] is False
    # Y paired: its regression is never pooled, and X's sees only D
    pooled, why = _auto(levels=("D", "X", "Y"), mechanisms=LEVELS, paired=("Y",))
    assert not pooled and "no regression that could be pooled" in why
    # only D attributed: only D's level has a ratio, and its regression sees nothing
    assert _auto(mechanisms=("D",))[0] is False


def test_auto_leaves_other_methods_and_unweighted_regressors_unpooled():
    pooled, why = _auto(method="regression")
    assert not pooled and "'regression'" in why
    pooled, why = _auto(regressors={"knn": KNeighborsRegressor(), "ridge": RidgeCV()})
    assert not pooled and "['knn'] take no sample_weight" in why
    assert _auto(regressors=RidgeCV())[0] is True


def test_explicit_choices_are_kept_or_refused():
    envs = _envs()
    kw = {"ratio_nodes": LEVELS}
    assert resolve_pooled(True, "regression", ["D", "Y"], envs, **kw) == (True, "requested")
    assert resolve_pooled(False, "mr", LEVELS, envs, **kw) == (False, "requested")
    assert resolve_pooled(np.True_, "mr", LEVELS, envs, **kw) == (True, "requested")
    check_pooled(False, "iw")  # allowed: nothing to pool
    with pytest.raises(ValueError, match="method='generative' fits none"):
        check_pooled(True, "generative")
    with pytest.raises(ValueError, match="method='iw' fits none"):
        check_pooled(np.True_, "iw")
    with pytest.raises(ValueError, match="True, False or 'auto'"):
        check_pooled("yes", "mr")
