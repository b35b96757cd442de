"""Cases that the source and the target share, kept in one fold by cross-fitting.

Two environments often hold the same cases: one scan read by two annotators, the
same patients' covariates at two sites. A ratio classifier trained on a case of one
environment and tested on its copy in the other recognises the copy and reports a
shift where the values are identical (out-of-fold AUC 0.92 on two copies of 30 images
with 3 folds, before this module). Cross-fitting therefore puts a shared case and its
copy in the same fold, where no classifier is trained on either.

A source case and a target case are *shared* when some node's value is identical in
both (compared by :func:`~shiftattr.environment.case_key`: the file for lazily read
volumes, the bytes for arrays) and that value belongs to one case in each environment.
Only nodes whose values are nearly all distinct within each environment
(:data:`MIN_DISTINCT`) link cases: an image, a continuous measurement. A node whose
values recur (an empty mask, a category, an age in whole years) links nothing, since
a value held once on each side by chance would join unrelated patients.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence

import numpy as np
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import connected_components

from shiftattr.environment import Environment, cached_per_case, case_key

__all__ = ["MIN_DISTINCT", "case_fingerprints", "shared_case_groups"]

#: A node links cases only where at least this share of each environment's cases hold a
#: value no other case of it holds: images and continuous measurements, not a discrete
#: covariate whose values recur (integer ages 20-90 over 100 patients linked 12 pairs of
#: unrelated patients by chance, and three such covariates 25).
MIN_DISTINCT = 0.95


def case_fingerprints(env: Environment, node: str) -> np.ndarray:
    """One 64-bit fingerprint per case of ``env[node]``, computed once per environment.

    Parameters
    ----------
    env : Environment
    node : str

    Returns
    -------
    ndarray of uint64, shape (len(env),)
        Equal for equal values (see :func:`~shiftattr.environment.case_key`).

    Examples
    --------
    >>> a = Environment({"X": np.array([[1.0, 2.0], [3.0, 4.0]])})
    >>> b = Environment({"X": np.array([[3.0, 4.0], [5.0, 6.0]])})
    >>> bool(case_fingerprints(a, "X")[1] == case_fingerprints(b, "X")[0])
    True
    """
    feats = env.features([node])
    values = feats[node]

    def compute() -> np.ndarray:
        if not isinstance(values, np.ndarray) or values.ndim == 0:
            keys = (case_key(values, i) for i in range(len(env)))
        else:  # one contiguous copy, then a hash per case (no per-voxel Python work)
            arr = np.ascontiguousarray(values)
            keys = (case_key(arr, i, arr[i]) for i in range(len(arr)))
        return np.fromiter(
            (
                int.from_bytes(hashlib.blake2b(repr(k).encode(), digest_size=8).digest(), "little")
                for k in keys
            ),
            dtype=np.uint64,
            count=len(env),
        )

    return cached_per_case(feats, ("case_fingerprint", node), compute)


def _identifying(fingerprints: np.ndarray, groups: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Fingerprints held by one group only, and that group (sorted by fingerprint)."""
    pairs = np.unique(np.c_[fingerprints, groups.astype(np.uint64)], axis=0)
    values, first, counts = np.unique(pairs[:, 0], return_index=True, return_counts=True)
    keep = counts == 1
    return values[keep], pairs[first[keep], 1].astype(np.int64)


def shared_case_groups(
    source: Environment,
    target: Environment,
    nodes: Sequence[str],
    source_groups: np.ndarray | None = None,
    target_groups: np.ndarray | None = None,
) -> tuple[np.ndarray, int]:
    """Group ids over the source cases then the target cases, joining shared cases.

    Parameters
    ----------
    source, target : Environment
    nodes : sequence of str
        Nodes compared (those not held by both environments are skipped).
    source_groups, target_groups : ndarray, optional
        Groups within each environment (bootstrap duplicates of one case share one);
        default every case its own.

    Returns
    -------
    groups : ndarray of int, shape (len(source) + len(target),)
        Cases of one group must fall in one fold; a group holding cases of both
        environments is a shared case (with its bootstrap duplicates).
    n_shared : int
        Number of source groups joined to a target case.

    Examples
    --------
    >>> x = np.arange(8.0).reshape(4, 2)
    >>> s = Environment({"X": x}, name="s")
    >>> t = Environment({"X": np.r_[x[2:], x[:1] + 100]}, name="t")  # shares cases 2, 3
    >>> groups, n = shared_case_groups(s, t, ["X"])
    >>> n, bool(groups[2] == groups[4]), bool(groups[3] == groups[5]), len(set(groups))
    (2, True, True, 5)
    """
    ns, nt = len(source), len(target)
    gs = (
        np.arange(ns) if source_groups is None else np.unique(source_groups, return_inverse=True)[1]
    )
    gt = (
        np.arange(nt) if target_groups is None else np.unique(target_groups, return_inverse=True)[1]
    )
    n_s, n_t = int(gs.max()) + 1, int(gt.max()) + 1
    links_s, links_t = [], []
    for node in nodes:
        if node not in source or node not in target:
            continue
        keys_s, group_s = _identifying(case_fingerprints(source, node), gs)
        keys_t, group_t = _identifying(case_fingerprints(target, node), gt)
        if len(keys_s) < MIN_DISTINCT * n_s or len(keys_t) < MIN_DISTINCT * n_t:
            continue  # values that repeat (ages in years, counts, masks) identify no one
        _, i, j = np.intersect1d(keys_s, keys_t, assume_unique=True, return_indices=True)
        links_s.append(group_s[i])
        links_t.append(group_t[j])
    rows = np.concatenate(links_s) if links_s else np.empty(0, dtype=np.int64)
    if not len(rows):
        return np.r_[gs, gt + n_s], 0
    cols = n_s + np.concatenate(links_t)
    n = n_s + n_t
    adjacency = coo_matrix((np.ones(len(rows)), (rows, cols)), shape=(n, n))
    _, component = connected_components(adjacency, directed=False)
    return np.r_[component[gs], component[n_s + gt]], len(np.unique(rows))
