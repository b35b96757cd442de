"""L2-penalised logistic regression on standardised features, fitted by Newton's method.

A density ratio from a logistic classifier is fitted once per fold for every mechanism
(and, for the conditional ratio, once more on its parents), often dozens of times per
attribution on a few hundred cases. There a scikit-learn pipeline (``StandardScaler``,
optionally ``PolynomialFeatures``, ``LogisticRegression``) spends most of its time on
input validation and on the general-purpose quasi-Newton solver.
:class:`StandardisedLogisticRegression` minimises the same penalised log-loss with a
few damped Newton steps on the (small) design, to a tighter tolerance than
``LogisticRegression``'s default. It follows scikit-learn's classifier conventions, so
``ClassifierRatio(classifier=StandardisedLogisticRegression())`` works as any other.
"""

from __future__ import annotations

import numpy as np
from scipy.linalg import LinAlgError, cho_factor, cho_solve
from scipy.special import expit, log_expit
from sklearn.base import BaseEstimator, ClassifierMixin

from shiftattr._clone import CloneByParams
from shiftattr._design import fit_design, fitted_design

__all__ = ["StandardisedLogisticRegression"]


class StandardisedLogisticRegression(CloneByParams, ClassifierMixin, BaseEstimator):
    """Binary logistic regression, L2 penalty ``1 / C``, on standardised features.

    Minimises ``C * sum_i logloss_i + ||w||^2 / 2`` (intercept unpenalised), the
    objective of scikit-learn's ``LogisticRegression(C=C)`` after ``StandardScaler``
    (and, with ``degree=2``, ``PolynomialFeatures(2, include_bias=False)`` and a second
    ``StandardScaler``), by Newton's method with backtracking: a handful of ``p x p``
    solves for ``p`` features.

    Parameters
    ----------
    C : float, default 1.0
        Inverse penalty strength, as in scikit-learn.
    degree : {1, 2}, default 1
        ``2`` adds every square and pairwise product of the standardised features,
        then standardises those again.
    tol : float, default 1e-8
        Stop when the largest gradient entry of the objective divided by ``C * n``
        falls below it.
    max_iter : int, default 100
        Most Newton steps.

    Attributes
    ----------
    classes_ : ndarray of shape (2,)
    coef_ : ndarray of shape (1, n_expanded_features)
    intercept_ : ndarray of shape (1,)
    n_iter_ : int
    n_features_in_ : int

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> X = rng.normal(size=(400, 2))
    >>> y = (X[:, 0] ** 2 + 0.3 * rng.normal(size=400) > 1).astype(int)
    >>> quad = StandardisedLogisticRegression(degree=2).fit(X, y)
    >>> lin = StandardisedLogisticRegression().fit(X, y)
    >>> bool(quad.score(X, y) > 0.9 > lin.score(X, y))
    True
    """

    def __init__(
        self, C: float = 1.0, degree: int = 1, tol: float = 1e-8, max_iter: int = 100
    ) -> None:
        self.C = C
        self.degree = degree
        self.tol = tol
        self.max_iter = max_iter

    def fit(self, X, y, offset=None) -> StandardisedLogisticRegression:
        """Standardise and minimise the penalised log-loss.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
        y : array-like of shape (n_samples,)
            Two classes; the larger one (in sorted order) is the positive class.
        offset : array-like of shape (n_samples,), optional
            A fixed term added to every case's log-odds during the fit: the model learns
            what the offset misses (:mod:`shiftattr.ratios.offset` passes the parents'
            log-ratio). :meth:`decision_function` returns the learnt part only.

        Returns
        -------
        self

        Examples
        --------
        >>> X = np.array([[0.0], [1.0], [2.0], [3.0]])
        >>> StandardisedLogisticRegression().fit(X, ["a", "a", "b", "b"]).classes_.tolist()
        ['a', 'b']
        """
        if not (np.isfinite(self.C) and self.C > 0):
            raise ValueError(f"C must be a positive number; got {self.C!r}.")
        Z, y = fit_design(self, X, y)
        self.classes_, t = np.unique(y, return_inverse=True)
        if len(self.classes_) != 2:
            raise ValueError(
                f"StandardisedLogisticRegression is binary; y has {len(self.classes_)} "
                "class(es). Density ratios need cases of both environments."
            )
        t = t.astype(float)
        o = np.zeros(len(t)) if offset is None else np.asarray(offset, dtype=float).ravel()
        if o.shape != t.shape or not np.isfinite(o).all():
            raise ValueError(f"offset must hold {len(t)} finite values, one per case.")
        A = np.hstack([np.ones((len(Z), 1)), Z])
        ridge = np.full(A.shape[1], 1.0 / float(self.C))
        ridge[0] = 0.0  # the intercept is not penalised

        def objective(beta: np.ndarray) -> float:
            z = A @ beta + o
            return -float(t @ log_expit(z) + (1 - t) @ log_expit(-z)) + 0.5 * ridge @ beta**2

        beta = np.zeros(A.shape[1])
        prior = t.mean()
        beta[0] = np.log(prior / (1 - prior))
        f = objective(beta)
        scale = len(t)  # gradient tolerance relative to the log-loss's size
        self.n_iter_ = 0
        for _ in range(int(self.max_iter)):
            p = expit(A @ beta + o)
            grad = A.T @ (p - t) + ridge * beta
            if np.max(np.abs(grad)) <= self.tol * scale:
                break
            hess = (A.T * (p * (1 - p))) @ A + np.diag(ridge + 1e-12)
            try:
                step = cho_solve(cho_factor(hess), grad)
            except LinAlgError:  # separable directions left unpenalised: least squares
                step = np.linalg.lstsq(hess, grad, rcond=None)[0]
            size = 1.0
            while size > 1e-10:  # backtracking: accept the first step that lowers f
                candidate = beta - size * step
                f_new = objective(candidate)
                if f_new <= f - 1e-4 * size * float(grad @ step):
                    break
                size *= 0.5
            else:
                break  # no descent left at machine precision
            beta, f = candidate, f_new
            self.n_iter_ += 1
        self.intercept_ = beta[:1].copy()
        self.coef_ = beta[None, 1:].copy()
        return self

    def decision_function(self, X) -> np.ndarray:
        """Log-odds of the positive class.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)

        Returns
        -------
        ndarray of shape (n_samples,)

        Examples
        --------
        >>> X = np.array([[0.0], [1.0], [2.0], [3.0]])
        >>> clf = StandardisedLogisticRegression().fit(X, [0, 0, 1, 1])
        >>> bool(np.all(np.diff(clf.decision_function(X)) > 0))
        True
        """
        Z = fitted_design(self, X)
        return Z @ self.coef_[0] + self.intercept_[0]

    def predict_proba(self, X) -> np.ndarray:
        """Probabilities of the two classes, in the order of ``classes_``.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)

        Returns
        -------
        ndarray of shape (n_samples, 2)

        Examples
        --------
        >>> X = np.array([[0.0], [1.0], [2.0], [3.0]])
        >>> StandardisedLogisticRegression().fit(X, [0, 0, 1, 1]).predict_proba(X).sum(axis=1)
        array([1., 1., 1., 1.])
        """
        p = expit(self.decision_function(X))
        return np.column_stack([1 - p, p])

    def predict(self, X) -> np.ndarray:
        """The more probable class.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)

        Returns
        -------
        ndarray of shape (n_samples,)

        Examples
        --------
        >>> X = np.array([[0.0], [1.0], [2.0], [3.0]])
        >>> StandardisedLogisticRegression().fit(X, [0, 0, 1, 1]).predict(X).tolist()
        [0, 0, 1, 1]
        """
        return self.classes_[(self.decision_function(X) > 0).astype(int)]
