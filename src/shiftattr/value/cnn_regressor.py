"""A small CNN regressor for the nested regressions of image mechanisms (``images`` extra).

The nested regressions of ``method="mr"`` and ``"regression"`` see an image through
features: by default image statistics, or the segmentation model's own output summaries
(``features={"X": adapter.output_features}``). :class:`CNNRegressor` learns its own
features instead: given the raw voxels as the image's features
(``features={"X": raw_features("X")}``, :func:`~shiftattr.value.features.raw_features`), it
reads the last ``prod(image_shape)`` columns of its design as one image per case and
the columns before them as covariates (the earlier levels' features), and fits a small
convolutional network with the covariates joined before its last layer. A design
without the image's columns (the regressions of the levels before it) gets a
standardised ridge regression on the covariates. It is a scikit-learn regressor
(``fit(X, y, sample_weight=None)``, ``predict``), so it is cross-fitted, pooled and
cloned like any other.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import torch
from sklearn.base import BaseEstimator, RegressorMixin
from sklearn.utils import check_random_state
from torch import nn

from shiftattr.segmentation._threads import intra_op_threads
from shiftattr.value.ridge import StandardisedRidgeCV

__all__ = ["CNNRegressor"]


class _Net(nn.Module):
    """Two convolution blocks, global average pooling, covariates, one linear output."""

    def __init__(self, spatial_dims: int, channels: tuple[int, ...], n_covariates: int) -> None:
        super().__init__()
        conv = nn.Conv3d if spatial_dims == 3 else nn.Conv2d
        pool = nn.MaxPool3d if spatial_dims == 3 else nn.MaxPool2d
        avg = nn.AdaptiveAvgPool3d if spatial_dims == 3 else nn.AdaptiveAvgPool2d
        layers: list[nn.Module] = []
        c_in = 1
        for i, c in enumerate(channels):
            layers += [conv(c_in, c, 3, padding=1), nn.ReLU()]
            if i < len(channels) - 1:
                layers.append(pool(2))
            c_in = c
        layers += [avg(1), nn.Flatten()]
        self.body = nn.Sequential(*layers)
        self.head = nn.Linear(c_in + n_covariates, 1)

    def forward(self, img: torch.Tensor, cov: torch.Tensor) -> torch.Tensor:
        return self.head(torch.cat([self.body(img), cov], dim=1)).squeeze(1)


class CNNRegressor(RegressorMixin, BaseEstimator):
    """Regression of a per-case outcome on an image (and covariates) by a small CNN.

    Parameters
    ----------
    image_shape : tuple of int
        Spatial shape of the image (2 or 3 axes); its ``prod(image_shape)`` voxels are
        the last columns of the design, flattened in C order.
    channels : tuple of int, default (8, 16)
        Channels of the convolution blocks (a 2x max-pooling between blocks).
    epochs : int, default 40
    batch_size : int, default 32
    learning_rate : float, default 1e-3
        Adam's step size.
    weight_decay : float, default 1e-3
        Adam's L2 penalty: on a few hundred cases the network would otherwise learn
        the noise.
    random_state : int, numpy Generator or None, default None
        Seeds the initial weights and the batch order.
    num_threads : int or None, default 1
        Torch intra-op threads during fit and predict (``None``: torch's setting).

    Attributes
    ----------
    has_image_ : bool
        Whether the design held the image's columns (else a ridge on the covariates).
    ridge_ : StandardisedRidgeCV or None
        The fallback model, fitted when ``has_image_`` is False.
    n_features_in_ : int

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> img = rng.normal(size=(60, 6, 6))
    >>> y = img[:, 2:4, 2:4].mean(axis=(1, 2)) + 0.05 * rng.normal(size=60)
    >>> X = np.c_[rng.normal(size=(60, 1)), img.reshape(60, -1)]   # a covariate, then the image
    >>> reg = CNNRegressor(image_shape=(6, 6), epochs=5, random_state=0).fit(X, y)
    >>> reg.predict(X).shape, reg.has_image_
    ((60,), True)
    >>> CNNRegressor(image_shape=(6, 6)).fit(X[:, :1], y).has_image_   # no image columns
    False
    """

    #: Refitting it per bootstrap replicate retrains a network: ``bootstrap="auto"``
    #: holds it fixed (:func:`~shiftattr.bootstrap.resolve_bootstrap`).
    trains_network = True

    def __init__(
        self,
        image_shape: tuple[int, ...],
        channels: tuple[int, ...] = (8, 16),
        epochs: int = 40,
        batch_size: int = 32,
        learning_rate: float = 1e-3,
        weight_decay: float = 1e-3,
        random_state: Any = None,
        num_threads: int | None = 1,
    ) -> None:
        self.image_shape = image_shape
        self.channels = channels
        self.epochs = epochs
        self.batch_size = batch_size
        self.learning_rate = learning_rate
        self.weight_decay = weight_decay
        self.random_state = random_state
        self.num_threads = num_threads

    def _n_voxels(self) -> int:
        shape = tuple(int(s) for s in self.image_shape)
        if len(shape) not in (2, 3) or min(shape) < 1:
            raise ValueError(
                f"image_shape must give 2 or 3 positive sizes, got {self.image_shape!r}."
            )
        return math.prod(shape)

    def _split(self, X: np.ndarray) -> tuple[torch.Tensor, torch.Tensor]:
        """Standardised image tensor ``(N, 1, *shape)`` and covariate tensor ``(N, p)``."""
        v = self._n_voxels()
        img = (X[:, -v:] - self.image_mean_) / self.image_scale_
        cov = (X[:, :-v] - self.cov_mean_) / self.cov_scale_
        shape = (len(X), 1, *(int(s) for s in self.image_shape))
        return (
            torch.as_tensor(img.reshape(shape), dtype=torch.float32),
            torch.as_tensor(cov, dtype=torch.float32),
        )

    def fit(self, X, y, sample_weight=None) -> CNNRegressor:
        """Fit the network (or, without the image's columns, the ridge fallback).

        Parameters
        ----------
        X : array-like of shape (N, p)
            Covariates, then the ``prod(image_shape)`` voxels of each case.
        y : array-like of shape (N,)
        sample_weight : array-like of shape (N,), optional
            Case weights of the squared error (pooled regressions pass them).

        Returns
        -------
        CNNRegressor

        Examples
        --------
        >>> X = np.random.default_rng(1).normal(size=(20, 2 + 16))
        >>> CNNRegressor((4, 4), epochs=2, random_state=0).fit(X, X[:, 0]).n_features_in_
        18
        """
        X = np.asarray(X, dtype=np.float64)
        y = np.asarray(y, dtype=np.float64).ravel()
        if X.ndim != 2 or len(X) != len(y):
            raise ValueError(
                f"X must be (N, p) with one row per value of y; got {X.shape} and {y.shape}."
            )
        self.n_features_in_ = X.shape[1]
        v = self._n_voxels()
        w = np.ones(len(y)) if sample_weight is None else np.asarray(sample_weight, float)
        self.has_image_ = X.shape[1] >= v
        self.ridge_ = None
        if not self.has_image_:
            self.ridge_ = StandardisedRidgeCV().fit(X, y, sample_weight=sample_weight)
            return self
        img, cov = X[:, -v:], X[:, :-v]
        self.image_mean_ = float(img.mean())
        self.image_scale_ = float(img.std()) or 1.0
        self.cov_mean_ = cov.mean(axis=0)
        self.cov_scale_ = np.where(cov.std(axis=0) > 0, cov.std(axis=0), 1.0)
        self.y_mean_ = float(np.average(y, weights=w))
        self.y_scale_ = float(np.sqrt(np.average((y - self.y_mean_) ** 2, weights=w))) or 1.0
        if isinstance(self.random_state, np.random.Generator):
            seed = int(self.random_state.integers(2**31 - 1))
        else:
            seed = int(check_random_state(self.random_state).randint(2**31 - 1))
        with intra_op_threads(self.num_threads):
            torch_gen = torch.Generator().manual_seed(seed)
            with torch.random.fork_rng(devices=[]):
                torch.manual_seed(seed)
                self.net_ = _Net(len(self.image_shape), tuple(self.channels), cov.shape[1])
            img_t, cov_t = self._split(X)
            y_t = torch.as_tensor((y - self.y_mean_) / self.y_scale_, dtype=torch.float32)
            w_t = torch.as_tensor(w / w.mean(), dtype=torch.float32)
            opt = torch.optim.Adam(
                self.net_.parameters(), lr=self.learning_rate, weight_decay=self.weight_decay
            )
            self.net_.train()
            for _ in range(int(self.epochs)):
                order = torch.randperm(len(y), generator=torch_gen)
                for start in range(0, len(y), int(self.batch_size)):
                    b = order[start : start + int(self.batch_size)]
                    opt.zero_grad()
                    loss = (w_t[b] * (self.net_(img_t[b], cov_t[b]) - y_t[b]) ** 2).mean()
                    loss.backward()
                    opt.step()
            self.net_.eval()
        return self

    def predict(self, X) -> np.ndarray:
        """Predicted outcome of each case.

        Parameters
        ----------
        X : array-like of shape (N, p)
            As for :meth:`fit`.

        Returns
        -------
        ndarray of shape (N,)

        Examples
        --------
        >>> X = np.random.default_rng(2).normal(size=(20, 16))
        >>> CNNRegressor((4, 4), epochs=2, random_state=0).fit(X, X[:, 0]).predict(X[:3]).shape
        (3,)
        """
        X = np.asarray(X, dtype=np.float64)
        if X.ndim != 2 or X.shape[1] != getattr(self, "n_features_in_", None):
            raise ValueError(
                f"X has shape {X.shape}; this regressor was fitted on "
                f"{getattr(self, 'n_features_in_', 'no')} features (fit it first)."
            )
        if self.ridge_ is not None:
            return self.ridge_.predict(X)
        if len(X) == 0:
            return np.empty(0)
        with intra_op_threads(self.num_threads), torch.no_grad():
            img, cov = self._split(X)
            out = torch.cat(
                [self.net_(img[i : i + 256], cov[i : i + 256]) for i in range(0, len(X), 256)]
            )
        return out.numpy().astype(np.float64) * self.y_scale_ + self.y_mean_
