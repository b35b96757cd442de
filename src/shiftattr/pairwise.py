"""Attribute every (train, deploy) pair of several environments: the paper's sweeps.

``attribute_pairs`` runs :func:`shiftattr.attribute` for each ordered pair, with the
model trained on the first environment of the pair; :class:`PairwiseAttribution`
holds the per-mechanism matrices (the paper's Figure 2) and the mean ± sd summary
across pairs (its Table 1).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from tqdm.auto import tqdm

from shiftattr._clone import derived_seed
from shiftattr.attribution import attribute
from shiftattr.environment import Environment
from shiftattr.graph import CausalGraph
from shiftattr.results import (
    Attribution,
    _json_default,
    _literal,
    _nan_to_none,
    _unstored_direction,
    dominant_mechanism,
    wording,
)

__all__ = ["PairwiseAttribution", "attribute_pairs"]

Scorer = Callable[[Environment], np.ndarray]


@dataclass
class PairwiseAttribution:
    """Attributions for ordered (train, deploy) pairs of environments.

    Attributes
    ----------
    environments : tuple of str
        Environment names, in matrix order.
    mechanisms : tuple of str
    results : dict
        ``(train, deploy) -> Attribution``.
    metrics : dict
        ``(train, deploy) -> mean measured metric`` of the model trained on ``train``
        evaluated on ``deploy`` (the diagonal is the in-distribution metric).
    metric_name : str
    higher_is_better : bool or None
        The metric's direction, as in :attr:`Attribution.higher_is_better` (default
        True): it decides the mechanism counted as dominant in each pair (the
        "dominant in" column of :meth:`summary`) and the words and colours of
        :meth:`plot`. :func:`attribute_pairs` sets it (and every pair's) from its
        ``higher_is_better`` argument or, without one, from the ``metric_name``.

    Examples
    --------
    >>> pw = PairwiseAttribution(("a", "b"), ("X",), {}, {("a", "a"): 0.8, ("a", "b"): 0.6})
    >>> pw.metric_matrix()[0].tolist()
    [0.8, 0.6]
    """

    environments: tuple[str, ...]
    mechanisms: tuple[str, ...]
    results: dict[tuple[str, str], Attribution]
    metrics: dict[tuple[str, str], float] = field(default_factory=dict)
    metric_name: str = "metric"
    higher_is_better: bool | None = True

    @property
    def pairs(self) -> list[tuple[str, str]]:
        """The attributed (train, deploy) pairs, in the order they were run.

        Examples
        --------
        >>> from shiftattr import Attribution, PairwiseAttribution
        >>> def res(x, y):  # an Attribution with values X = x, Y = y
        ...     return Attribution(("X", "Y"), {"X": x, "Y": y}, {}, {}, 0.8, 0.8 - x - y)
        >>> pw = PairwiseAttribution(
        ...     ("a", "b"), ("X", "Y"),
        ...     {("a", "b"): res(0.10, 0.02), ("b", "a"): res(-0.04, 0.01)},
        ...     {("a", "a"): 0.8, ("a", "b"): 0.68, ("b", "b"): 0.8, ("b", "a"): 0.83})
        >>> pw.pairs
        [('a', 'b'), ('b', 'a')]
        """
        return list(self.results)

    def value_matrix(self, mechanism: str) -> np.ndarray:
        """Values of ``mechanism``: rows = train, columns = deploy (NaN where absent).

        Parameters
        ----------
        mechanism : str

        Returns
        -------
        ndarray of shape (n_env, n_env)

        Examples
        --------
        >>> from shiftattr import Attribution, PairwiseAttribution
        >>> def res(x, y):  # an Attribution with values X = x, Y = y
        ...     return Attribution(("X", "Y"), {"X": x, "Y": y}, {}, {}, 0.8, 0.8 - x - y)
        >>> pw = PairwiseAttribution(
        ...     ("a", "b"), ("X", "Y"),
        ...     {("a", "b"): res(0.10, 0.02), ("b", "a"): res(-0.04, 0.01)},
        ...     {("a", "a"): 0.8, ("a", "b"): 0.68, ("b", "b"): 0.8, ("b", "a"): 0.83})
        >>> pw.value_matrix("X").round(2).tolist()
        [[nan, 0.1], [-0.04, nan]]
        """
        if mechanism not in self.mechanisms:
            raise KeyError(f"unknown mechanism {mechanism!r}; have {list(self.mechanisms)}")
        return self._matrix(lambda r: r.values[mechanism], self.results)

    def metric_matrix(self) -> np.ndarray:
        """Measured metric of the model trained on row env, evaluated on column env.

        Returns
        -------
        ndarray of shape (n_env, n_env)
            NaN where no metric was measured; the diagonal is the in-distribution metric.

        Examples
        --------
        >>> from shiftattr import Attribution, PairwiseAttribution
        >>> def res(x, y):  # an Attribution with values X = x, Y = y
        ...     return Attribution(("X", "Y"), {"X": x, "Y": y}, {}, {}, 0.8, 0.8 - x - y)
        >>> pw = PairwiseAttribution(
        ...     ("a", "b"), ("X", "Y"),
        ...     {("a", "b"): res(0.10, 0.02), ("b", "a"): res(-0.04, 0.01)},
        ...     {("a", "a"): 0.8, ("a", "b"): 0.68, ("b", "b"): 0.8, ("b", "a"): 0.83})
        >>> pw.metric_matrix().tolist()
        [[0.8, 0.68], [0.83, 0.8]]
        """
        return self._matrix(float, self.metrics)

    def _matrix(self, get: Callable[[Any], float], table: Mapping) -> np.ndarray:
        n = len(self.environments)
        pos = {e: i for i, e in enumerate(self.environments)}
        out = np.full((n, n), np.nan)
        for (a, b), item in table.items():
            out[pos[a], pos[b]] = get(item)
        return out

    def summary_table(self, scale: float = 1.0) -> dict[str, dict[str, float]]:
        """Mean, sd, min and max of each mechanism's value across pairs.

        Parameters
        ----------
        scale : float, default 1.0
            Multiply values (100 gives percentage points, as in the paper's Table 1).

        Returns
        -------
        dict
            Mechanism -> {"mean", "sd", "min", "max", "n_pairs", "n_dominant"}.
            ``n_dominant``: the pairs where it is the dominant mechanism
            (:func:`~shiftattr.results.dominant_mechanism`: the one that moved the metric
            most in the direction the pair's values sum to; the largest absolute value
            where the direction is unknown).

        Examples
        --------
        >>> from shiftattr import Attribution, PairwiseAttribution
        >>> def res(x, y):  # an Attribution with values X = x, Y = y
        ...     return Attribution(("X", "Y"), {"X": x, "Y": y}, {}, {}, 0.8, 0.8 - x - y)
        >>> pw = PairwiseAttribution(
        ...     ("a", "b"), ("X", "Y"),
        ...     {("a", "b"): res(0.10, 0.02), ("b", "a"): res(-0.04, 0.01)},
        ...     {("a", "a"): 0.8, ("a", "b"): 0.68, ("b", "b"): 0.8, ("b", "a"): 0.83})
        >>> table = pw.summary_table(scale=100)
        >>> {k: round(v, 2) for k, v in table["X"].items()}
        {'mean': 3.0, 'sd': 9.9, 'min': -4.0, 'max': 10.0, 'n_pairs': 2, 'n_dominant': 2}
        """
        out = {}
        dominant = [
            dominant_mechanism(r.values, self.higher_is_better) for r in self.results.values()
        ]
        for mech in self.mechanisms:
            vals = np.array([r.values[mech] for r in self.results.values()]) * scale
            out[mech] = {
                "mean": float(vals.mean()) if vals.size else float("nan"),
                "sd": float(vals.std(ddof=1)) if vals.size > 1 else float("nan"),
                "min": float(vals.min()) if vals.size else float("nan"),
                "max": float(vals.max()) if vals.size else float("nan"),
                "n_pairs": int(vals.size),
                "n_dominant": sum(d == mech for d in dominant),
            }
        return out

    def _scale(self, scale: float | None) -> tuple[float, str]:
        """``scale``, or by default 1 for a metric measured outside [0, 1] (a distance)
        and 100 otherwise (fractions such as Dice: percentage points); and its label."""
        if scale is None:
            m = self.metric_matrix()
            m = m[np.isfinite(m)]
            scale = 1.0 if m.size and (m.min() < 0 or m.max() > 1) else 100.0
        scale = float(scale)
        return scale, "" if scale == 1 else f" (×{scale:g})"

    def summary(self, scale: float | None = None) -> str:
        """Mean ± sd per mechanism across pairs (the paper's Table 1) as text.

        The sign note follows :attr:`higher_is_better`; the sd of a single pair shows
        as "—".

        Parameters
        ----------
        scale : float, optional
            Values are shown ×``scale``. Default: 1 when a measured metric lies
            outside [0, 1] (a distance in mm), else 100 (percentage points of Dice).

        Returns
        -------
        str

        Examples
        --------
        >>> from shiftattr import Attribution, PairwiseAttribution
        >>> def res(x, y):  # an Attribution with values X = x, Y = y
        ...     return Attribution(("X", "Y"), {"X": x, "Y": y}, {}, {}, 0.8, 0.8 - x - y)
        >>> pw = PairwiseAttribution(
        ...     ("a", "b"), ("X", "Y"),
        ...     {("a", "b"): res(0.10, 0.02), ("b", "a"): res(-0.04, 0.01)},
        ...     {("a", "a"): 0.8, ("a", "b"): 0.68, ("b", "b"): 0.8, ("b", "a"): 0.83})
        >>> text = pw.summary()
        >>> text.splitlines()[0]
        'Attribution of metric changes across 2 (train, deploy) pairs (×100)'
        >>> [line.split()[0] for line in text.splitlines()[4:6]]
        ['X', 'Y']
        """
        scale, unit = self._scale(scale)
        lines = [
            f"Attribution of {self.metric_name} changes across {len(self.results)} "
            f"(train, deploy) pairs{unit}",
            f"  ({wording(self.higher_is_better, self.metric_name).sign_note})",
            "",
            f"{'mechanism':<14}{'mean ± sd':>20}{'min':>9}{'max':>9}{'dominant in':>14}",
        ]
        # percentage points to two decimals; other units (a distance, a loss) to three
        # significant digits, which keep small changes of large metrics visible
        f = ".2f" if scale >= 100 else ".3g"
        for mech, s in self.summary_table(scale).items():
            sd = "—" if np.isnan(s["sd"]) else f"{s['sd']:{f}}"
            ms = f"{s['mean']:+{f}} ± {sd}"
            dom = f"{s['n_dominant']}/{s['n_pairs']}"
            lines.append(f"{mech:<14}{ms:>20}{s['min']:>+9{f}}{s['max']:>+9{f}}{dom:>14}")
        n_warn = sum(len(r.warnings) for r in self.results.values())
        lines += ["", f"{n_warn} diagnostic warning(s) across pairs"]
        return "\n".join(lines)

    def __str__(self) -> str:
        return self.summary()

    def plot(self, mechanisms: Sequence[str] | None = None, scale: float | None = None):
        """Heatmaps per mechanism, each cell "metric; Δ" (the paper's Figure 2).

        The cell colour is the mechanism's value, red where it made the metric worse
        (by :attr:`higher_is_better`; a neutral colour map when the direction is
        unknown); the text gives the measured metric of the row's model on the column's
        environment and the value, ×``scale`` (the titles say so when it is not 1).

        Parameters
        ----------
        mechanisms : sequence of str, optional
            Default: all.
        scale : float, optional
            Default: 1 when a measured metric lies outside [0, 1] (a distance in mm),
            else 100 (percentage points of Dice), as :meth:`summary`.

        Returns
        -------
        matplotlib.figure.Figure

        Examples
        --------
        >>> from shiftattr import Attribution, PairwiseAttribution
        >>> def res(x, y):  # an Attribution with values X = x, Y = y
        ...     return Attribution(("X", "Y"), {"X": x, "Y": y}, {}, {}, 0.8, 0.8 - x - y)
        >>> pw = PairwiseAttribution(
        ...     ("a", "b"), ("X", "Y"),
        ...     {("a", "b"): res(0.10, 0.02), ("b", "a"): res(-0.04, 0.01)},
        ...     {("a", "a"): 0.8, ("a", "b"): 0.68, ("b", "b"): 0.8, ("b", "a"): 0.83})
        >>> import matplotlib
        >>> matplotlib.use("Agg")
        >>> import matplotlib.pyplot as plt
        >>> fig = pw.plot(["X"])
        >>> type(fig).__name__, fig.axes[0].get_title()
        ('Figure', 'X: metric; Δ (×100)')
        >>> plt.close(fig)
        """
        try:
            import matplotlib.pyplot as plt
        except ImportError as exc:  # pragma: no cover - depends on the environment
            raise ImportError('plot() needs matplotlib: pip install "shiftattr[plot]"') from exc
        mechs = list(mechanisms or self.mechanisms)
        n = len(self.environments)
        fig, axes = plt.subplots(
            1, len(mechs), figsize=(1.0 + 0.9 * n * len(mechs), 0.9 + 0.75 * n), squeeze=False
        )
        metric = self.metric_matrix()
        scale, unit = self._scale(scale)
        # percentage points to a whole point, other units to three significant digits
        fmt, fmt_d = (".0f", ".1f") if scale >= 100 else (".3g", ".2g")
        vals = {m: self.value_matrix(m) * scale for m in mechs}
        lim = max(np.nanmax(np.abs(v)) if np.isfinite(v).any() else 0.0 for v in vals.values())
        lim = lim or 1.0
        words = wording(self.higher_is_better, self.metric_name)
        for ax, mech in zip(axes[0], mechs):
            im = ax.imshow(vals[mech], cmap=words.cmap, vmin=-lim, vmax=lim)
            for i in range(n):
                for j in range(n):
                    dsc = metric[i, j] * scale
                    d = vals[mech][i, j]
                    text = (f"{dsc:{fmt}}" if np.isfinite(dsc) else "") + (
                        f"; {d:+{fmt_d}}" if np.isfinite(d) else ""
                    )
                    ax.text(j, i, text, ha="center", va="center", fontsize=7)
            envs = [_literal(e) for e in self.environments]
            ax.set_xticks(range(n), envs, rotation=45, ha="right", fontsize=7)
            ax.set_yticks(range(n), envs, fontsize=7)
            ax.set_xlabel("deployed on")
            ax.set_ylabel("trained on")
            ax.set_title(_literal(f"{mech}: {self.metric_name}; Δ{unit}"), fontsize=9)
            fig.colorbar(im, ax=ax, shrink=0.8, label=_literal(words.delta_label + unit))
        fig.tight_layout()
        return fig

    # -- serialisation -----------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dictionary (pairs written as ``[train, deploy]`` lists, NaN as None).

        Returns
        -------
        dict
            Keys ``environments``, ``mechanisms``, ``metric_name``, ``higher_is_better``,
            ``results`` (a list of ``{"pair": [train, deploy], "attribution": ...}``, each
            pair's :meth:`Attribution.to_dict`) and ``metrics`` (a list of
            ``{"pair": [train, deploy], "value": ...}``).

        Examples
        --------
        >>> from shiftattr import Attribution, PairwiseAttribution
        >>> def res(x, y):  # an Attribution with values X = x, Y = y
        ...     return Attribution(("X", "Y"), {"X": x, "Y": y}, {}, {}, 0.8, 0.8 - x - y)
        >>> pw = PairwiseAttribution(
        ...     ("a", "b"), ("X", "Y"),
        ...     {("a", "b"): res(0.10, 0.02), ("b", "a"): res(-0.04, 0.01)},
        ...     {("a", "a"): 0.8, ("a", "b"): 0.68, ("b", "b"): 0.8, ("b", "a"): 0.83})
        >>> d = pw.to_dict()
        >>> sorted(d)
        ['environments', 'higher_is_better', 'mechanisms', 'metric_name', 'metrics', 'results']
        >>> [r["pair"] for r in d["results"]], d["metrics"][1]
        ([['a', 'b'], ['b', 'a']], {'pair': ['a', 'b'], 'value': 0.68})
        """
        return _nan_to_none(
            {
                "environments": list(self.environments),
                "mechanisms": list(self.mechanisms),
                "metric_name": self.metric_name,
                "higher_is_better": self.higher_is_better,
                "results": [
                    {"pair": [a, b], "attribution": r.to_dict()}
                    for (a, b), r in self.results.items()
                ],
                "metrics": [{"pair": [a, b], "value": v} for (a, b), v in self.metrics.items()],
            }
        )

    def to_json(self, path: str | Path | None = None) -> str:
        """Serialise to JSON (and write to ``path`` when given).

        Parameters
        ----------
        path : str or Path, optional
            File to write the JSON to.

        Returns
        -------
        str
            The JSON text (also when it is written to ``path``, in UTF-8); strict JSON,
            NaN written as ``null``.

        Examples
        --------
        >>> from shiftattr import Attribution, PairwiseAttribution
        >>> def res(x, y):  # an Attribution with values X = x, Y = y
        ...     return Attribution(("X", "Y"), {"X": x, "Y": y}, {}, {}, 0.8, 0.8 - x - y)
        >>> pw = PairwiseAttribution(
        ...     ("a", "b"), ("X", "Y"),
        ...     {("a", "b"): res(0.10, 0.02), ("b", "a"): res(-0.04, 0.01)},
        ...     {("a", "a"): 0.8, ("a", "b"): 0.68, ("b", "b"): 0.8, ("b", "a"): 0.83})
        >>> import json
        >>> text = pw.to_json()
        >>> json.loads(text)["environments"]
        ['a', 'b']
        """
        text = json.dumps(self.to_dict(), indent=2, default=_json_default)
        if path is not None:
            Path(path).write_text(text, encoding="utf-8")
        return text

    @classmethod
    def from_json(cls, text_or_path: str | Path) -> PairwiseAttribution:
        """Read what :meth:`to_json` wrote (a JSON string or a file path).

        Parameters
        ----------
        text_or_path : str or Path
            JSON text (starting with ``{``) or the path of a file holding it. Files
            written before pairs were stored as lists (keys ``"train -> deploy"``) are
            read too; without ``higher_is_better`` the metric counts as
            higher-is-better.

        Returns
        -------
        PairwiseAttribution

        Examples
        --------
        >>> from shiftattr import Attribution, PairwiseAttribution
        >>> def res(x, y):  # an Attribution with values X = x, Y = y
        ...     return Attribution(("X", "Y"), {"X": x, "Y": y}, {}, {}, 0.8, 0.8 - x - y)
        >>> pw = PairwiseAttribution(
        ...     ("a", "b"), ("X", "Y"),
        ...     {("a", "b"): res(0.10, 0.02), ("b", "a"): res(-0.04, 0.01)},
        ...     {("a", "a"): 0.8, ("a", "b"): 0.68, ("b", "b"): 0.8, ("b", "a"): 0.83})
        >>> again = PairwiseAttribution.from_json(pw.to_json())
        >>> again.pairs, again.results["a", "b"].values
        ([('a', 'b'), ('b', 'a')], {'X': 0.1, 'Y': 0.02})
        >>> bool(np.array_equal(again.metric_matrix(), pw.metric_matrix()))
        True
        """
        text = str(text_or_path)
        if isinstance(text_or_path, Path) or not text.lstrip().startswith("{"):
            text = Path(text_or_path).read_text(encoding="utf-8")
        d = json.loads(text)
        envs = tuple(d["environments"])

        def entries(table: Any, value: str) -> list[tuple[tuple[str, str], Any]]:
            if isinstance(table, Mapping):  # the old format: "train -> deploy" keys
                return [(_old_pair_key(k, envs), v) for k, v in table.items()]
            return [(tuple(item["pair"]), item[value]) for item in table]

        return cls(
            environments=envs,
            mechanisms=tuple(d["mechanisms"]),
            results={k: Attribution.from_dict(v) for k, v in entries(d["results"], "attribution")},
            metrics={
                k: float("nan") if v is None else float(v)
                for k, v in entries(d["metrics"], "value")
            },
            metric_name=d.get("metric_name", "metric"),
            higher_is_better=(
                d["higher_is_better"]
                if "higher_is_better" in d
                else _unstored_direction(d.get("metric_name"))
            ),
        )


def _old_pair_key(key: str, environments: Sequence[str]) -> tuple[str, str]:
    """``"train -> deploy"`` split where both sides are environments (names may hold " -> ")."""
    parts = key.split(" -> ")
    splits = [(" -> ".join(parts[:i]), " -> ".join(parts[i:])) for i in range(1, len(parts))]
    known = [(a, b) for a, b in splits if a in environments and b in environments]
    if len(known) != 1:
        raise ValueError(f"cannot tell the two environments of the pair {key!r} apart")
    return known[0]


def _pair_paired(paired: Any, envs: Mapping[str, Environment], a: str, b: str) -> Any:
    """``paired`` for the pair (a, b): node names resolved to the keys under which each
    side holds the other's readings, the environments' keys in ``environments`` when the
    counterfactuals are stored under those (``SyntheticMS.sample(annotate_all=...)``),
    else their names (as :func:`~shiftattr.attribute` reads a list)."""
    if not paired or isinstance(paired, Mapping):
        return paired
    nodes = [paired] if isinstance(paired, str) else list(paired)

    def key(holder: str, other: str) -> str:
        stored = envs[holder].counterfactuals
        return other if other in stored and envs[other].name not in stored else envs[other].name

    return {node: (key(a, b), key(b, a)) for node in nodes}


def _pair_seed(base: int, train: str, deploy: str) -> int:
    """The seed of one (train, deploy) pair: a function of the sweep's seed and the names."""
    return derived_seed(base, f"{train}\0{deploy}")


def attribute_pairs(
    graph: CausalGraph,
    environments: Mapping[str, Environment] | Sequence[Environment],
    scorers: Mapping[str, Scorer],
    *,
    pairs: Sequence[tuple[str, str]] | None = None,
    measure_target: bool = True,
    progress: bool = True,
    metric_name: str = "metric",
    **attribute_kwargs: Any,
) -> PairwiseAttribution:
    """Attribute the metric change of every (train, deploy) pair of environments.

    Parameters
    ----------
    graph : CausalGraph
    environments : mapping of name to Environment, or sequence of Environment
        Sequences are keyed by each environment's ``name``.
    scorers : mapping of str to callable
        For each *training* environment, ``scorer(env) -> per-case metric`` of the
        model trained there (e.g. ``SegmentationAdapter(model_i).score``). Each
        scorer runs once per environment (results are reused across pairs); with
        ``paired=`` or ``method="generative"`` it is also passed to
        :func:`~shiftattr.attribute`, which calls it again on the substituted or
        simulated cases (a ``SegmentationAdapter`` caches what it has scored).
    pairs : sequence of (train, deploy), optional
        Default: every ordered pair of distinct environments whose train side has
        a scorer.
    measure_target : bool, default True
        Score the deploy environment too (needs its labels): fills the metric
        matrix and the closure check. Always done for ``method="mis"``,
        ``"regression"``, ``"mr"`` and ``"generative"``, which use the metric at the
        deploy cases. It is also what lets the default ``method="auto"`` choose
        ``"mr"`` (:func:`~shiftattr.value.choice.resolve_method`): with
        ``measure_target=False`` and no ``method`` it runs ``"iw"``, as before (with
        ``paired`` too, where the scorer, passed on for the substitution, would let
        ``"auto"`` choose ``"mr"``).
    progress : bool, default True
    metric_name : str, default "metric"
    **attribute_kwargs
        Passed to :func:`shiftattr.attribute` (``mechanisms``, ``estimators``,
        ``method``, ``paired``, ``n_bootstrap``, ``higher_is_better``,
        ``random_state``...). ``higher_is_better`` (default: looked up from
        ``metric_name``) is also the result's :attr:`PairwiseAttribution.higher_is_better`. With
        ``paired``, each train environment's scorer is passed as the (callable)
        metric so that cases can be re-scored with the deploy side's paired values;
        every environment must then hold its counterfactuals keyed by the other
        environments' names or under their keys in ``environments`` (as
        :meth:`SyntheticMS.sample(annotate_all=...)
        <shiftattr.datasets.SyntheticMS.sample>` stores them), or give ``paired`` as a
        mapping of keys. With
        ``method="generative"`` the scorer is passed too: it scores simulated cases.

    Returns
    -------
    PairwiseAttribution

    Examples
    --------
    >>> import shiftattr as sa
    >>> scm = sa.datasets.LinearGaussianSCM.example()
    >>> envs = [scm.sample(200, "source", random_state=0), scm.sample(200, "target", random_state=1)]
    >>> pw = sa.attribute_pairs(scm.graph, envs, {"source": scm.metric},
    ...                         n_bootstrap=0, n_folds=3, progress=False, random_state=0)
    >>> pw.pairs
    [('source', 'target')]
    """
    if "known_ratios" in attribute_kwargs:
        raise ValueError(
            "known_ratios is not supported by attribute_pairs: a known ratio belongs to one "
            "(train, deploy) pair and would be applied to every pair, reversed ones "
            "included; call attribute() per pair instead."
        )
    if isinstance(environments, Mapping):
        envs = dict(environments)
    else:
        envs = {}
        for env in environments:
            if env.name in envs:
                raise ValueError(
                    f"two environments are named {env.name!r}; pass a mapping {{name: env}} "
                    "or give them distinct names."
                )
            envs[env.name] = env
    unknown = [k for k in scorers if k not in envs]
    if unknown:
        raise ValueError(f"scorers for unknown environment(s) {unknown}; have {list(envs)}")
    if pairs is None:
        pairs = [(a, b) for a in envs for b in envs if a != b and a in scorers]
    if not pairs:
        raise ValueError(
            f"no (train, deploy) pair to attribute: give scorers for some of {list(envs)} "
            "and at least two environments, or pairs=[(train, deploy), ...]."
        )
    for a, b in pairs:
        if a not in envs or b not in envs:
            raise ValueError(f"pair ({a!r}, {b!r}) names an unknown environment; have {list(envs)}")
        if a == b:
            raise ValueError(
                f"pair ({a!r}, {b!r}) attributes an environment against itself; its diagonal "
                "cell is the in-distribution metric (metric_matrix()), not a pair."
            )
        if a not in scorers:
            raise ValueError(f"pair ({a!r}, {b!r}) needs a scorer for training environment {a!r}")
    cache: dict[tuple[str, str], np.ndarray] = {}

    def score(model_env: str, env_name: str) -> np.ndarray:
        if (model_env, env_name) not in cache:
            cache[model_env, env_name] = np.asarray(scorers[model_env](envs[env_name]), float)
        return cache[model_env, env_name]

    results: dict[tuple[str, str], Attribution] = {}
    metrics: dict[tuple[str, str], float] = {}
    seed = attribute_kwargs.pop("random_state", None)
    from shiftattr.metrics import resolve_direction

    direction = resolve_direction(attribute_kwargs.pop("higher_is_better", None), metric_name)
    # regressions need the metric at the deploy cases; substitution re-scores cases
    if not measure_target:  # no labels on the deploy side: "auto" must not score it
        attribute_kwargs.setdefault("method", "iw")
    need_target = measure_target or attribute_kwargs.get("method") != "iw"
    # substitution and simulation score new cases: they need the scorer itself
    rescore = bool(attribute_kwargs.get("paired")) or attribute_kwargs.get("method") == "generative"
    # each pair's seed comes from the pair's names, so that running one pair alone (e.g.
    # again with a bootstrap) gives the numbers it had in the sweep
    base = int(np.random.default_rng(seed).integers(2**31 - 1))
    paired = attribute_kwargs.pop("paired", None)
    for a, b in tqdm(pairs, desc="pairs", disable=not progress):
        m_s = score(a, a)
        m_t = score(a, b) if need_target else None
        metrics[a, a] = float(np.mean(m_s))
        if m_t is not None:
            metrics[a, b] = float(np.mean(m_t))
        results[a, b] = attribute(
            graph,
            envs[a],
            envs[b],
            metric=scorers[a] if rescore else m_s,
            target_metric=m_t,
            metric_name=metric_name,
            higher_is_better=direction,
            progress=False,
            random_state=_pair_seed(base, a, b),
            paired=_pair_paired(paired, envs, a, b),
            **attribute_kwargs,
        )
    mechs = next(iter(results.values())).mechanisms if results else tuple(graph.mechanisms)
    return PairwiseAttribution(
        environments=tuple(envs),
        mechanisms=mechs,
        results=results,
        metrics=metrics,
        metric_name=metric_name,
        higher_is_better=direction,
    )
