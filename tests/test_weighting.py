import warnings

import numpy as np
import pytest

from shiftattr.weighting import coalition_weighted_means, kish_ess, pareto_khat


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


def test_split_product_path_matches_the_direct_one():
    from shiftattr.weighting import coalition_means

    rng = np.random.default_rng(3)
    n, N = 7, 500
    L = rng.normal(size=(n, N)) * 2
    m = rng.random(N)
    all_c = ((np.arange(2**n)[:, None] >> np.arange(n)) & 1).astype(bool)
    direct = coalition_weighted_means(all_c, L, m).means
    np.testing.assert_allclose(coalition_means(all_c, L, m), direct, rtol=1e-10)
    # a few sparse rows take the direct route and still agree
    np.testing.assert_allclose(coalition_means(all_c[[3, 77, 127]], L, m), direct[[3, 77, 127]])
    # extreme log-ratios: split weights underflow, rows are recomputed directly
    L[0, :] = -800.0
    L[0, 0] = 800.0
    np.testing.assert_allclose(
        coalition_means(all_c, L, m), coalition_weighted_means(all_c, L, m).means, rtol=1e-9
    )


def test_split_product_blocks_add_up(monkeypatch):
    import shiftattr.weighting as weighting

    rng = np.random.default_rng(4)
    L, m = rng.normal(size=(6, 1000)), rng.random(1000)
    all_c = ((np.arange(64)[:, None] >> np.arange(6)) & 1).astype(bool)
    whole = weighting.coalition_means(all_c, L, m)
    monkeypatch.setattr(weighting, "_BLOCK_FLOATS", 37)  # blocks of a single case
    np.testing.assert_allclose(weighting.coalition_means(all_c, L, m), whole, rtol=1e-12)
    np.testing.assert_allclose(whole, coalition_weighted_means(all_c, L, m).means, rtol=1e-10)


@pytest.mark.parametrize("factor", [0, 4])
def test_split_product_routes_for_the_halves_agree(monkeypatch, factor):
    # permutation-like batches (prefixes of random orders) need some but not all of each
    # half's subsets (41 and 44 of 64 here): factor 0 takes the exponential route, 4 the
    # power set built by doubling and gathered; both must agree with the direct kernel
    import shiftattr.weighting as weighting

    rng = np.random.default_rng(5)
    n, N = 12, 700
    L, m = rng.normal(size=(n, N)) * 1.5, rng.normal(size=N)
    orders = np.array([rng.permutation(n) for _ in range(16)])
    C = np.zeros((16 * (n + 1), n), dtype=bool)
    for p, order in enumerate(orders):
        for size in range(n + 1):
            C[p * (n + 1) + size, order[:size]] = True
    monkeypatch.setattr(weighting, "_POWERSET_FACTOR", factor)
    monkeypatch.setattr(weighting, "_BLOCK_FLOATS", 50_000)  # several blocks
    np.testing.assert_allclose(
        weighting.coalition_means(C, L, m), coalition_weighted_means(C, L, m).means, rtol=1e-10
    )


@pytest.mark.parametrize("precision", ["float64", "float32"])
@pytest.mark.parametrize("factor", [0, 4])
def test_zero_ratios_give_zero_weight_on_every_route(monkeypatch, factor, precision):
    # a log-ratio of -inf must not turn 0 * log-ratio into NaN for the coalitions
    # without that mechanism: not in the direct kernel, nor in the split one on either
    # half route (factor 0: exponentials of summed log-weights; 4: doubling), nor in
    # single precision
    import shiftattr.weighting as weighting

    monkeypatch.setattr(weighting, "_POWERSET_FACTOR", factor)

    def coalition_means(C, L, m):
        return weighting.coalition_means(C, L, m, precision=precision)

    rng = np.random.default_rng(6)
    L, m = rng.normal(size=(4, 40)), rng.random(40)
    L[1, 5] = -np.inf
    all_c = ((np.arange(16)[:, None] >> np.arange(4)) & 1).astype(bool)
    finite = L.copy()
    finite[1, 5] = -1e4  # weight exp(-1e4) = 0: the same thing, finite
    expected = coalition_weighted_means(all_c, finite, m).means
    assert np.isfinite(expected).all()
    np.testing.assert_allclose(coalition_weighted_means(all_c, L, m).means, expected)
    np.testing.assert_allclose(coalition_means(all_c, L, m), expected, rtol=2e-6)
    L[0, 0] = np.inf
    for kernel in (coalition_means, lambda *a: coalition_weighted_means(*a).means):
        with pytest.raises(ValueError, match="NaN or \\+inf"):
            kernel(all_c, L, m)


@pytest.mark.parametrize("route_factor", [4, 0])
def test_float32_precision_keeps_means_to_rounding(monkeypatch, route_factor):
    # float32 weights and products, float64 block sums: means within 2e-6 relative of
    # the float64 kernel on both half routes (underflow: the next test)
    import shiftattr.weighting as weighting

    rng = np.random.default_rng(7)
    n, N = 10, 20_000
    L, m = rng.normal(size=(n, N)), rng.random(N)
    all_c = ((np.arange(2**n)[:, None] >> np.arange(n)) & 1).astype(bool)
    monkeypatch.setattr(weighting, "_POWERSET_FACTOR", route_factor)
    exact = weighting.coalition_means(all_c, L, m)
    fast = weighting.coalition_means(all_c, L, m, precision="float32")
    assert fast.dtype == np.float64
    np.testing.assert_allclose(fast, exact, rtol=2e-6)
    assert not np.array_equal(fast, exact)  # it did compute in float32
    # a large offset does not cost precision: the metric is centred before the cast
    np.testing.assert_allclose(
        weighting.coalition_means(all_c, L, m + 100.0, precision="float32") - 100.0,
        exact,
        rtol=0,
        atol=2e-6,
    )


def test_float32_underflowing_rows_are_recomputed_in_float64(monkeypatch):
    # two players whose largest log-ratios sit at different cases: with both in the
    # coalition every case's single-precision weight product is below 1e-25
    import shiftattr.weighting as weighting

    rng = np.random.default_rng(8)
    n, N = 4, 3000
    L, m = rng.normal(size=(n, N)), rng.random(N)
    L[0], L[1] = -60.0, -60.0
    L[0, 0] = L[1, 1] = 0.0
    all_c = ((np.arange(2**n)[:, None] >> np.arange(n)) & 1).astype(bool)
    calls = []
    real = weighting.coalition_means

    def spy(C, L_, m_, *, precision="float64"):
        calls.append((len(C), precision))
        return real(C, L_, m_, precision=precision)

    monkeypatch.setattr(weighting, "coalition_means", spy)
    got = spy(all_c, L, m, precision="float32")
    both = all_c[:, 0] & all_c[:, 1]
    assert calls[1:] == [(int(both.sum()), "float64")]  # exactly those rows, in float64
    np.testing.assert_allclose(got, coalition_weighted_means(all_c, L, m).means, rtol=2e-6)


def test_precision_is_checked_by_name():
    from shiftattr.weighting import coalition_means

    C = np.ones((4, 2), dtype=bool)
    with pytest.raises(ValueError, match="precision must be one of"):
        coalition_means(C, np.zeros((2, 3)), np.zeros(3), precision="half")


# -- Pareto k ----------------------------------------------------------------------------
def test_pareto_khat_recovers_the_shape_of_generalised_pareto_weights():
    from scipy.stats import genpareto

    from shiftattr.weighting import pareto_khat

    rng = np.random.default_rng(0)
    for shape in (0.2, 0.5, 0.9):
        draws = genpareto.rvs(shape, size=(30, 4000), random_state=rng)
        k = pareto_khat(np.log(draws))
        assert abs(k.mean() - shape) < 0.06, (shape, k.mean())
        assert k.std() < 0.15


def test_pareto_khat_ignores_a_constant_and_needs_enough_cases():
    from shiftattr.weighting import pareto_khat

    rng = np.random.default_rng(1)
    lw = rng.normal(0, 2, (3, 1000))
    shift = np.array([[5.0], [-3.0], [0.0]])
    np.testing.assert_allclose(pareto_khat(lw), pareto_khat(lw + shift))
    assert np.isnan(pareto_khat(rng.normal(size=20))).all()  # tail of fewer than 5
    assert np.isnan(pareto_khat(np.zeros(1000))).all()  # equal weights: no tail to fit
    assert pareto_khat(rng.normal(0, 3, 4000))[0] > 0.7 > pareto_khat(rng.normal(0, 1, 4000))[0]
    zero = np.r_[rng.normal(0, 1, 999), -np.inf]  # a zero weight is allowed
    assert np.isfinite(pareto_khat(zero)).all()
    for bad in (np.nan, np.inf):
        with pytest.raises(ValueError, match="finite log-weights"):
            pareto_khat(np.r_[rng.normal(size=999), bad])


@pytest.mark.parametrize("truncate", [None, 2.0])
def test_resampled_means_equal_the_means_of_each_resample(truncate):
    """All bootstrap resamples at once (draw counts) = coalition_weighted_means on each."""
    from shiftattr.weighting import resample_counts, resampled_coalition_means

    rng = np.random.default_rng(3)
    L, m = rng.normal(0, 1.5, size=(3, 60)), rng.random(60)
    C = ((np.arange(8)[:, None] >> np.arange(3)) & 1).astype(bool)
    idx = rng.integers(0, 60, size=(7, 60))
    got = resampled_coalition_means(C, L, m, resample_counts(idx, 60), truncate=truncate)
    for b in range(7):
        want = coalition_weighted_means(C, L[:, idx[b]], m[idx[b]], truncate=truncate).means
        np.testing.assert_allclose(got[:, b], want, rtol=1e-12)


@pytest.mark.parametrize("truncate", [None, 1.5])
@pytest.mark.parametrize("gap", [900.0, 744.0])  # underflow to 0; subnormal weights
def test_resampled_means_of_a_resample_missing_the_heaviest_case(gap, truncate):
    """The weights are shifted by the largest over all cases; a resample without that case
    underflows there (0 / 0, or subnormal weights without precision) and is recomputed on
    its own cases, quietly (no floating-point warning leaks)."""
    import warnings

    from shiftattr.weighting import resample_counts, resampled_coalition_means

    L = np.array([[0.0, -gap, -gap - 1.0]])
    m = np.array([5.0, 1.0, 2.0])
    idx = np.array([[1, 2, 2], [0, 1, 2]])
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        got = resampled_coalition_means(
            np.array([[True]]), L, m, resample_counts(idx, 3), truncate=truncate
        )
    want = [
        coalition_weighted_means(np.array([[True]]), L[:, i], m[i], truncate=truncate).means[0]
        for i in idx
    ]
    np.testing.assert_allclose(got[0], want, rtol=1e-12)
    assert np.isfinite(got).all()


def test_resample_counts_refuses_indices_outside_the_cases():
    """An index past the cases would silently count in the next resample's row."""
    from shiftattr.weighting import resample_counts

    np.testing.assert_array_equal(resample_counts(np.array([[2, 2, 0]]), 3), [[1.0, 0.0, 2.0]])
    with pytest.raises(ValueError, match=r"\[0, 3\)"):
        resample_counts(np.array([[0, 3, 1], [0, 0, 0]]), 3)
    with pytest.raises(ValueError, match=r"\[0, 3\)"):
        resample_counts(np.array([[-1, 0, 1]]), 3)
    with pytest.raises(ValueError, match="boolean mask"):
        resample_counts(np.array([[True, False, True]]), 3)


def test_pareto_k_of_a_tail_tied_at_its_threshold_is_finite():
    # many weights equal to the (M+1)-th largest made the first quartile of the
    # exceedances 0 and k NaN (with RuntimeWarnings), skipping the heavy-tail warning
    rng = np.random.default_rng(0)
    lw = np.log(np.abs(rng.standard_t(1.2, 80)))
    top = np.argsort(lw)[-28:]
    lw[top[:20]] = lw[top[0]]
    with warnings.catch_warnings():
        warnings.simplefilter("error", RuntimeWarning)
        k = pareto_khat(lw)
    assert np.isfinite(k).all() and k[0] > 0.5
