"""Cases shared by the source and the target stay in one cross-fitting fold."""

import nibabel as nib
import numpy as np
import pytest
from sklearn.svm import SVC

import shiftattr as sa
from shiftattr.environment import Environment
from shiftattr.ratios import ClassifierRatio
from shiftattr.ratios.crossfit import assign_folds
from shiftattr.ratios.shared_cases import case_fingerprints, shared_case_groups
from shiftattr.segmentation.nifti import NiftiVolumeLoader


def _memoriser():
    # a narrow-kernel SVM recognises a copy of a case it was trained on
    return ClassifierRatio(SVC(C=100.0, gamma=5.0), calibration="none", random_state=0)


def test_copies_of_the_same_cases_show_no_shift():
    rng = np.random.default_rng(0)
    d = rng.normal(size=40)
    x = d[:, None] + rng.normal(size=(40, 6))
    s = Environment({"D": d, "X": x}, name="s")
    t = Environment({"D": d.copy(), "X": x.copy()}, name="t")
    result = sa.attribute(
        sa.CausalGraph({"D": [], "X": ["D"]}),
        s,
        t,
        metric=np.linspace(0, 1, 40),
        estimators={"D": _memoriser(), "X": _memoriser()},
        n_bootstrap=0,
        n_folds=4,
        progress=False,
        random_state=0,
    )
    diag = result.diagnostics
    assert diag["overall"]["shared_cases"] == 40
    # split apart, the copy in the training folds gave AUC 0 (each case called the other side)
    assert [diag["mechanisms"][m]["auc_joint"] for m in "DX"] == [0.5, 0.5]
    assert result.values == pytest.approx({"D": 0.0, "X": 0.0}, abs=1e-9)


def test_shared_cases_and_their_bootstrap_duplicates_form_one_group():
    x = np.arange(12.0).reshape(6, 2)
    s = Environment({"X": x[[0, 0, 1, 2, 3, 4]]}, name="s")  # a bootstrap draw
    t = Environment({"X": np.r_[x[:3], x[3:] + 50]}, name="t")  # shares cases 0, 1, 2
    groups, n = shared_case_groups(s, t, ["X"], [0, 0, 1, 2, 3, 4], None)
    assert n == 3
    assert groups[0] == groups[1] == groups[6]  # a duplicate of case 0 and its copy
    assert groups[2] == groups[7] and groups[3] == groups[8]
    assert len(set(groups[[4, 5, 9, 10, 11]])) == 5 and not set(groups[[4, 5]]) & set(groups[9:])


def test_a_value_several_cases_hold_links_nothing():
    masks = np.zeros((4, 3, 3), dtype=np.uint8)  # empty masks everywhere
    masks[0, 1, 1] = 1
    s = Environment({"Y": masks, "sex": np.array([0, 1, 0, 1])}, name="s")
    t = Environment({"Y": masks[[0, 1, 2, 3]] * 0, "sex": np.array([1, 0, 1, 1])}, name="t")
    groups, n = shared_case_groups(s, t, ["Y", "sex", "absent"])
    assert n == 0 and len(set(groups)) == 8


def test_one_file_read_in_both_environments_is_one_case(tmp_path):
    paths = []
    for i in range(3):
        paths.append(str(tmp_path / f"img{i}.nii.gz"))
        nib.save(nib.Nifti1Image(np.full((2, 2, 2), float(i), np.float32), np.eye(4)), paths[-1])
    loader = NiftiVolumeLoader([[p] for p in paths])
    other = NiftiVolumeLoader([[paths[2]], [paths[0]]])
    s = Environment({"X": sa.LazyVolumes(loader, 3, shape=(2, 2, 2))}, name="s")
    t = Environment({"X": sa.LazyVolumes(other, 2, shape=(2, 2, 2))}, name="t")
    assert case_fingerprints(s, "X")[2] == case_fingerprints(t, "X")[0]
    groups, n = shared_case_groups(s, t, ["X"])
    assert n == 2 and groups[0] == groups[4] and groups[2] == groups[3]
    assert loader.n_reads == 0  # known by their files, not read


@pytest.mark.parametrize("seed", range(5))
def test_folds_keep_shared_groups_together_and_each_class_spread(seed):
    rng = np.random.default_rng(seed)
    labels = np.r_[np.zeros(23), np.ones(17)]
    groups = np.r_[np.arange(23), rng.permutation(23)[:10], 100 + np.arange(7)]
    folds = assign_folds(labels, 4, rng, groups)
    for g in np.unique(groups):
        assert len(set(folds[groups == g])) == 1
    for c in (0, 1):
        counts = np.bincount(folds[labels == c], minlength=4)
        assert counts.max() - counts.min() <= 1


def test_folds_without_shared_cases_are_as_before():
    # the rotation used before shared groups existed, written out
    labels = np.r_[np.zeros(9), np.ones(7)]
    groups = np.r_[np.arange(9) // 2, 50 + np.arange(7)]
    rng = np.random.default_rng(3)
    expected = np.empty(16, dtype=int)
    for cls in (0, 1):
        idx = np.flatnonzero(labels == cls)
        uniq, inverse = np.unique(groups[idx], return_inverse=True)
        fold = np.empty(len(uniq), dtype=int)
        fold[rng.permutation(len(uniq))] = np.arange(len(uniq)) % 3
        expected[idx] = fold[inverse]
    assert assign_folds(labels, 3, np.random.default_rng(3), groups).tolist() == expected.tolist()


def test_discrete_covariates_whose_values_recur_link_no_one():
    # integer ages of two independent cohorts: a value held once on each side by chance
    # joined unrelated patients (12 pairs of 100)
    rng = np.random.default_rng(0)
    s = Environment({"age": rng.integers(20, 90, 100)}, name="s")
    t = Environment({"age": rng.integers(20, 90, 100)}, name="t")
    assert shared_case_groups(s, t, ["age"])[1] == 0


def test_the_regressions_folds_keep_shared_cases_together(monkeypatch):
    # pooled regressions stack both sides: a source case's out-of-fold prediction came
    # from a fit on its copy in the target when the two sides were split separately
    import shiftattr.value.build as build

    seen = {}
    real = build.NestedRegressions

    def recording(levels, fs, ft, m, mt, fold_s, fold_t, *args, **kwargs):
        seen["folds"] = fold_s, fold_t
        return real(levels, fs, ft, m, mt, fold_s, fold_t, *args, **kwargs)

    monkeypatch.setattr(build, "NestedRegressions", recording)
    rng = np.random.default_rng(0)
    x = rng.normal(size=(40, 3))
    s = Environment({"D": x[:, 0], "X": x}, name="s")
    t = Environment({"D": x[:20, 0].copy(), "X": x[:20] * 1.0}, name="t")  # 20 shared
    sa.attribute(
        sa.CausalGraph({"D": [], "X": ["D"]}), s, t, metric=x[:, 1], target_metric=x[:20, 1],
        method="mr", n_bootstrap=0, n_folds=4, progress=False, random_state=0,
    )  # fmt: skip
    fold_s, fold_t = seen["folds"]
    assert np.array_equal(fold_s[:20], fold_t)
