import numpy as np

from shiftattr.weighting import coalition_weighted_means, kish_ess


def test_matches_naive_weighted_mean_and_is_overflow_safe():
    rng = np.random.default_rng(0)
    L = rng.normal(size=(3, 200)) * 3
    L[0, 0] = 800.0  # exp overflows without max-subtraction
    m = rng.normal(size=200)
    C = np.array([[1, 0, 0], [0, 1, 1], [0, 0, 0]], dtype=bool)
    res = coalition_weighted_means(C, L, m, batch_size=2)
    for row, got in zip(C, res.means):
        logw = L[row].sum(axis=0)
        w = np.exp(logw - logw.max())
        assert np.isclose(got, (w * m).sum() / w.sum())
    assert np.isclose(res.means[2], m.mean())
    assert np.isclose(res.ess[2], 200)
    assert res.ess[0] < 1.01  # one case carries all the weight


def test_truncation_is_counted_and_caps_weights():
    L = np.log(np.array([[1.0, 1.0, 1.0, 97.0]]))
    m = np.array([0.0, 0.0, 0.0, 1.0])
    res = coalition_weighted_means(np.array([[True]]), L, m, truncate=2.0)
    assert res.frac_truncated[0] == 0.25
    assert np.isclose(res.means[0], 2.0 / (3 * 0.04 + 2.0))
    assert res.max_weight[0] <= 2.0 * 4 / (3 * 0.04 + 2.0) + 1e-9


def test_kish_ess():
    assert np.isclose(kish_ess(np.array([1.0, 1.0, 2.0])), 16 / 6)
