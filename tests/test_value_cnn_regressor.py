"""Tests of the CNN regressor for image levels of the nested regressions (tiny images)."""

from __future__ import annotations

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from scipy.ndimage import gaussian_filter  # noqa: E402
from sklearn.base import clone  # noqa: E402

from shiftattr.value import CNNRegressor, raw_features  # noqa: E402
from shiftattr.value.regressors import crossfit_regression, takes_sample_weight  # noqa: E402

SHAPE = (8, 8, 8)


def _data(n, seed=0):
    """Smooth random volumes; the outcome is the mean of a central cube plus a covariate."""
    rng = np.random.default_rng(seed)
    img = gaussian_filter(rng.normal(size=(n, *SHAPE)), sigma=(0, 1.0, 1.0, 1.0))
    img /= img.std()
    cov = rng.normal(size=(n, 1))
    y = img[:, 2:6, 2:6, 2:6].mean(axis=(1, 2, 3)) * 3 + 0.5 * cov[:, 0]
    y += 0.1 * rng.normal(size=n)
    return np.c_[cov, img.reshape(n, -1)], y


def _r2(y, pred):
    return 1 - np.mean((y - pred) ** 2) / np.var(y)


def test_learns_an_image_outcome_out_of_sample_far_better_than_the_mean():
    X, y = _data(400)
    Xt, yt = _data(200, seed=1)
    reg = CNNRegressor(SHAPE, epochs=30, random_state=0).fit(X, y)
    assert reg.has_image_ and reg.ridge_ is None
    # measured 0.88; 0.72 when the covariate is dropped, so the bound also tests that it is used
    assert _r2(yt, reg.predict(Xt)) > 0.8
    # the covariate alone explains a sixth of the variance: the image carries the rest
    cov_only = CNNRegressor(SHAPE).fit(X[:, :1], y)
    assert not cov_only.has_image_ and _r2(yt, cov_only.predict(Xt[:, :1])) < 0.3  # 0.20


def test_is_seeded_and_clones_to_the_same_fit():
    X, y = _data(80)
    a = CNNRegressor(SHAPE, epochs=3, random_state=5).fit(X, y).predict(X)
    b = clone(CNNRegressor(SHAPE, epochs=3, random_state=5)).fit(X, y).predict(X)
    np.testing.assert_array_equal(a, b)
    c = CNNRegressor(SHAPE, epochs=3, random_state=6).fit(X, y).predict(X)
    assert not np.allclose(a, c)


def test_sample_weights_decide_which_cases_it_fits():
    # two groups with opposite image-outcome relations: the weights pick the group
    X, y = _data(300)
    group = np.arange(300) % 2 == 0
    y2 = np.where(group, y, -y)
    w = group.astype(float)
    assert takes_sample_weight(CNNRegressor(SHAPE))
    fit = CNNRegressor(SHAPE, epochs=30, random_state=0).fit(X, y2, sample_weight=w)
    mix = CNNRegressor(SHAPE, epochs=30, random_state=0).fit(X, y2)
    Xt, yt = _data(200, seed=2)
    assert _r2(yt, fit.predict(Xt)) > 0.5  # the weighted group's relation (measured 0.70)
    assert _r2(yt, mix.predict(Xt)) < 0.2  # unweighted, the two cancel (measured -0.004)


def test_cross_fits_as_a_nested_regression_and_refuses_bad_input():
    X, y = _data(90)
    folds = np.arange(90) % 3
    p = crossfit_regression(X, y, folds, X[:10], CNNRegressor(SHAPE, epochs=5, random_state=0))
    assert p.oof.shape == (90,) and p.other.shape == (10,) and np.isfinite(p.oof).all()
    with pytest.raises(ValueError, match="2 or 3 positive sizes"):
        CNNRegressor((8,)).fit(X, y)
    fitted = CNNRegressor(SHAPE, epochs=1, random_state=0).fit(X, y)
    assert fitted.predict(X[:0]).shape == (0,)  # no cases, no error
    with pytest.raises(ValueError, match="fitted on 513 features"):
        fitted.predict(X[:, 1:])


def test_attribute_uses_it_on_the_voxels_of_an_image_node():
    import shiftattr as sa
    from shiftattr.pipeline import segmentation_graph

    sim = sa.datasets.SyntheticMS(shape=SHAPE, random_state=0)
    source = sim.sample(40, center="01", annotator="1", random_state=1)
    target = sim.sample(40, center="03", annotator="1", random_state=2)
    m_s = source["Y"].reshape(40, -1).mean(axis=1)  # a per-case metric of the mask
    m_t = target["Y"].reshape(40, -1).mean(axis=1)
    res = sa.attribute(
        segmentation_graph(),
        source,
        target,
        metric=m_s,
        target_metric=m_t,
        method="mr",
        estimators=dict.fromkeys("XY", sa.ratios.ImageStatsRatio(random_state=0)),
        features={"X": raw_features("X")},
        regressor=CNNRegressor(SHAPE, epochs=3, random_state=0),
        n_folds=2,
        n_bootstrap=5,
        progress=False,
        random_state=0,
    )
    fits = res.diagnostics["estimator"]["regressions"]
    assert {f["regressor"] for f in fits} == {"CNNRegressor"}
    assert all(np.isfinite(list(res.values.values())))
    assert res.closure_error == pytest.approx(0.0, abs=1e-9)  # mr reproduces the target mean


@pytest.mark.parametrize(
    ("image_shape", "item", "fix"),
    [
        ((8, 8, 4), (8, 4, 8), r"image_shape=\(8, 4, 8\) \(one channel\)"),  # transposed
        (SHAPE, (2, *SHAPE), r"image_shape=\(8, 8, 8\) and one channel"),  # two channels
    ],
)
def test_attribute_refuses_an_image_shape_that_does_not_fit_the_node(image_shape, item, fix):
    # the last prod(image_shape) columns were read as the image, the rest as covariates,
    # without a word (other numbers than with the right shape)
    import shiftattr as sa

    rng = np.random.default_rng(0)
    env = sa.Environment({"X": rng.normal(size=(10, *item)), "Y": rng.normal(size=10)})
    with pytest.raises(ValueError, match=rf"node 'X' holds \({item[0]}.*pass {fix}"):
        sa.attribute(
            sa.CausalGraph({"X": [], "Y": ["X"]}),
            env,
            env,
            metric=env["Y"],
            target_metric=env["Y"],
            method="mr",
            features={"X": raw_features("X")},
            regressor=CNNRegressor(image_shape, epochs=1),
            n_bootstrap=0,
            progress=False,
        )
