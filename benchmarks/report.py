"""Write ``benchmarks/RESULTS.md`` from the JSON results in ``benchmarks/results``.

Every number in the report is read from the JSON files; a section whose results are
missing says so. The text that explains a gap is written next to the numbers that show
it, and names the cause found while building the benchmark.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from benchmarks._common import BENCH_DIR, RESULTS_DIR, now_utc, read_json
from benchmarks.plots import LABELS

OUT = BENCH_DIR / "RESULTS.md"


def _f(x: Any, digits: int = 3) -> str:
    """A number with ``digits`` significant digits, or an em dash."""
    if x is None or (isinstance(x, float) and not np.isfinite(x)):
        return "—"
    if isinstance(x, (int, np.integer)) and not isinstance(x, bool):
        return f"{x:,}"
    x = float(x)
    if x == 0:
        return "0"
    if abs(x) >= 1000:
        return f"{x:,.0f}"
    return f"{x:.{digits}g}"


def _table(header: list[str], rows: list[list[Any]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(str(c) for c in r) + " |" for r in rows]
    return "\n".join(lines)


def _secs(x: float | None) -> str:
    return "—" if x is None else f"{_f(x, 3)} s"


def _yes(flag: bool | None) -> str:
    return "—" if flag is None else ("**yes**" if flag else "**no**")


def _run(payload: dict[str, Any], mode: bool = True) -> str:
    """``Run <date> (<mode> mode) at commit <sha>`` with any modified library files."""
    git = payload.get("machine", {}).get("git") or {}
    where = f" at commit `{git['commit']}`" if git.get("commit") else ""
    changed = [*git.get("modified_src_files", []), *git.get("modified_benchmark_files", [])]
    if changed:
        where += " with uncommitted changes to " + ", ".join(f"`{f}`" for f in changed)
    kind = f" ({payload.get('mode')} mode)" if mode and payload.get("mode") else ""
    return f"Run {payload.get('date')}{kind}{where}"


def _machine(payload: dict[str, Any]) -> str:
    m = payload.get("machine", {})
    v = m.get("versions", {})
    load = m.get("load_average_1_5_15")
    peers = ", ".join(
        f"{p} {v.get(p) or 'not installed (skipped)'}" for p in ("dowhy", "shapiq", "monai")
    )
    ident = m.get("cpu_identity") or {}
    cpu = m.get("cpu", "?")
    if ident.get("family") is not None:  # recorded since 2026-12-01
        cpu += (
            f" (family {ident['family']}, model {ident.get('model') or '?'}, "
            f"{ident.get('vector_isa') or '?'}"
            + (
                f", torch kernels {ident['torch_capability']}"
                if ident.get("torch_capability")
                else ""
            )
            + ")"
        )
    return (
        f"{cpu}, {m.get('cpu_count', '?')} logical cores, "
        f"{m.get('memory_gb', '?')} GB RAM, {m.get('platform', '?')}; load average "
        f"(1/5/15 min) at the end of the section: {', '.join(_f(x, 3) for x in load or [])}. "
        f"Python {m.get('python')}, numpy {v.get('numpy')}, scipy {v.get('scipy')}, "
        f"scikit-learn {v.get('scikit-learn')}, torch {v.get('torch')}; peers: {peers}."
    )


# -- 1. accuracy --------------------------------------------------------------------------
def _mae_with_loss_node(runs: list[dict[str, Any]]) -> dict[tuple, float]:
    """Mean over runs of (sum of the mechanisms' absolute errors + |loss node|) / mechanisms.

    Recomputed from the stored per-run errors with
    :func:`benchmarks.accuracy_tabular.mae_with_extra` (runs stored before 2026-11-29 averaged the
    loss node in as one more term).
    """
    from benchmarks.accuracy_tabular import mae_with_extra  # imports the library

    acc: dict[tuple, list[float]] = {}
    for r in runs:
        if r.get("ok") and "loss_node" in r and r.get("abs_errors"):
            value = mae_with_extra(r["abs_errors"], r["loss_node"])
            acc.setdefault((r["scm"], r["n"], r["method"]), []).append(value)
    return {k: float(np.mean(v)) for k, v in acc.items()}


def _mis_counts(acc: dict[str, Any] | None) -> str:
    """One sentence: in how many (SCM, N) cells `method='mis'` (and its oracle-ratio
    ceiling) beats `iw` and DoWhy's graphs ("" when it did not run)."""
    cells: dict[tuple, dict[str, float]] = {}
    for r in (acc or {}).get("summary", []):
        if "mae_mean" in r:
            cells.setdefault((r["scm"], r["n"]), {})[r["method"]] = r["mae_mean"]
    names = ("shiftattr", "shiftattr_mis", "shiftattr_mis_oracle", "dowhy_graphs")
    full = [c for c in cells.values() if all(k in c for k in names)]
    if not full:
        return ""

    def below(a: str, b: str) -> int:
        return sum(c[a] < c[b] for c in full)

    return (
        " Much of that variance comes from weighting the source cases alone: `method='mis'` "
        "weights the source and the target cases together (balance-heuristic weights, the "
        "target's own cases carrying the coalitions near the target). In this run its MAE "
        f"is below `iw`'s in {below('shiftattr_mis', 'shiftattr')} of {len(full)} cells "
        "and below `distribution_change_of_graphs`'s in "
        f"{below('shiftattr_mis', 'dowhy_graphs')}; with exact ratios in "
        f"{below('shiftattr_mis_oracle', 'dowhy_graphs')}, so what separates it from the "
        "peer is the ratio estimators."
    )


def _generative_vs_graphs(acc: dict[str, Any] | None) -> str:
    """One sentence: in how many (SCM, N) cells `method='generative'` beats DoWhy's graphs."""
    summary = (acc or {}).get("summary", [])
    cells = {}
    for r in summary:
        if r["method"] in ("shiftattr_gen", "dowhy_graphs") and "mae_mean" in r:
            cells.setdefault((r["scm"], r["n"]), {})[r["method"]] = r
    both = [c for c in cells.values() if len(c) == 2]
    if not both:
        return "its comparison with DoWhy's graphs is not in this run."
    lower = sum(c["shiftattr_gen"]["mae_mean"] < c["dowhy_graphs"]["mae_mean"] for c in both)
    faster = sum(
        c["shiftattr_gen"]["seconds_median"] <= c["dowhy_graphs"]["seconds_median"] for c in both
    )
    worse = [
        f"{scm}, N = {n}: {_f(c['shiftattr_gen']['mae_mean'])} ± {_f(c['shiftattr_gen']['mae_sd'], 2)}"
        f" against {_f(c['dowhy_graphs']['mae_mean'])} ± {_f(c['dowhy_graphs']['mae_sd'], 2)}"
        for (scm, n), c in cells.items()
        if len(c) == 2 and c["shiftattr_gen"]["mae_mean"] >= c["dowhy_graphs"]["mae_mean"]
    ]
    text = (
        f"in this run its MAE is below that of `distribution_change_of_graphs` in {lower} of "
        f"{len(both)} cells, at or below its time in {faster} (ours includes fitting the "
        "ratios of the importance-weighting estimate it is compared with)."
    )
    if worse:
        text += " Behind: " + "; ".join(worse) + " (mean ± sd over seeds)."
    return text


def _accuracy(acc: dict[str, Any] | None) -> tuple[str, list[str]]:
    if not acc:
        return "## 1. Attribution accuracy on tabular SCMs\n\nNot run.\n", []
    behind: list[str] = []
    cfg, truth, summary = acc["config"], acc["truth"], acc["summary"]
    methods = [m for m in LABELS if any(r["method"] == m for r in summary)]
    out = [
        "## 1. Attribution accuracy on tabular SCMs",
        "",
        f"{_run(acc)}: {len(cfg['scms'])} data-generating processes, "
        f"N = {', '.join(map(str, cfg['sizes']))} cases per environment, seeds "
        f"{cfg['seeds']}; "
        + (
            f"DoWhy MR with gradient boosting on seeds {gb_seeds} only (minutes per run)."
            if (gb_seeds := cfg["method_seeds"].get("dowhy_mr_gb", cfg["seeds"]))
            else "DoWhy MR with gradient boosting is not run in quick mode (minutes per run)."
        ),
        "",
        "**Data-generating processes** (`benchmarks/scms.py`). Each has a fixed model trained "
        "once on 5,000 source cases and a per-case loss; several mechanisms shift at once. "
        "Truth: every coalition's mixed distribution simulated with the same noise draws "
        f"(common random numbers, {_f(cfg['n_truth'])} cases per coalition), exact Shapley values "
        "with `shiftattr.datasets.shapley_from_table` (the linear-Gaussian SCM: closed form).",
        "",
        _table(
            ["SCM", "loss", "shifted", "true values ± MC s.e.", "total ΔM", "process"],
            [
                [
                    name,
                    t["loss"],
                    ", ".join(t["shifted"]),
                    "; ".join(
                        f"{k} {_f(v, 3)}"
                        + (f" ± {_f((t['stderr'] or {}).get(k), 1)}" if t["stderr"] else "")
                        for k, v in t["values"].items()
                    ),
                    _f(t["total"]),
                    t["description"],
                ]
                for name, t in truth.items()
            ],
        ),
        "",
        "Sign: values are `M(source) − M(P_I)` with `M` the mean loss, so a loss that rises "
        "gives negative values. **Methods** (every method sees the same source and target "
        "samples; BLAS limited to one thread, `n_jobs=1` everywhere):",
        "",
        "- `shiftattr`: `attribute(method='iw')` without the target metric (importance "
        "weighting: what the default `method='auto'` runs without it, and the default until "
        "2026-12-02; ClassifierRatio, 5-fold cross-fitting, ExactShapley), `n_bootstrap=0`;",
        "- `shiftattr (oracle ratios)`: the same importance-weighting game with the true "
        "conditional log-ratios: the ceiling of importance weighting at this N;",
        "- `shiftattr (method='mr')`: `attribute(method='mr', target_metric=<measured "
        "target loss>)`, the multiply-robust estimator (nested regressions of the loss along "
        "the topological order, corrected by the same cross-fitted ratios), `n_bootstrap=0`;",
        "- `shiftattr (method='mis')`: `attribute(method='mis', target_metric=<measured "
        "target loss>)`: the same cross-fitted ratios (fitted for every node) weighting the "
        "source and the target cases together with balance-heuristic weights, "
        "`n_bootstrap=0`; `shiftattr (method='mis', oracle ratios)`: that game with the true "
        "log-ratios of every node, its ceiling at this N;",
        "- `shiftattr (method='generative')`: `attribute(method='generative')` with the SCM's "
        "loss as a callable metric: every mechanism fitted as a sampler in each environment "
        "(empirical roots, classifiers for discrete nodes, location-scale noise models), every "
        "coalition simulated with 20,000 cases and common random numbers, the loss scored on "
        "them; `n_bootstrap=0`. Its time includes the ratios of the importance-weighting "
        "estimate it is compared with;",
        "- DoWhy 'change attribution' needs the quantity as a node: the model's loss is added "
        "as a node `loss` whose parents are the model's inputs and the outcome. "
        "`DoWhy MR`: `gcm.distribution_change_robust(causal_model, old, new, 'loss', "
        "method='MR', xfit_folds=5)` with DoWhy's `create_hist_gradient_boost_regressor/"
        "classifier`, or with its default learners (linear / logistic regression); it "
        "factorises the joint in topological order, which for a DAG that holds in both "
        "environments gives the same mechanisms. `DoWhy graphs`: one "
        "`ProbabilisticCausalModel` per environment, mechanisms by "
        "`gcm.auto.assign_causal_mechanisms`, the `loss` node given the exact loss function "
        "as a deterministic mechanism, then `gcm.distribution_change_of_graphs(..., "
        "difference_estimation_func=mean(new) − mean(old), "
        f"num_samples={acc['setup'].get('dowhy_graphs_num_samples')})`. DoWhy's values are "
        "negated to our sign; the value DoWhy gives the (unshifted, deterministic) `loss` node "
        "is an error: it is added to the sum of the mechanisms' absolute errors, which is "
        "divided by the number of mechanisms (until 2026-11-29 it was averaged in as one more "
        "term, which lowered DoWhy's MAE by a fifth to a quarter).",
        "",
    ]
    sizes = sorted({r["n"] for r in summary})
    header = ["SCM", "N", *[LABELS[m] for m in methods]]
    rows_mae, rows_dom, rows_time = [], [], []
    for scm in truth:
        for n in sizes:
            sel = {r["method"]: r for r in summary if r["scm"] == scm and r["n"] == n}
            if not sel:
                continue

            def cell(m: str, key: str, fmt, sel: dict = sel) -> str:
                r = sel.get(m)
                if not r or key not in r:
                    return "skipped" if m not in sel else "failed"
                return fmt(r)

            rows_mae.append(
                [
                    scm,
                    n,
                    *[
                        cell(
                            m,
                            "mae_mean",
                            lambda r: (
                                _f(r["mae_mean"])
                                + (f" ± {_f(r['mae_sd'], 2)}" if r["n_runs"] > 1 else "")
                            ),
                        )
                        for m in methods
                    ],
                ]
            )
            rows_dom.append(
                [
                    scm,
                    n,
                    *[
                        cell(m, "dominant_rate", lambda r: f"{100 * r['dominant_rate']:.0f}%")
                        for m in methods
                    ],
                ]
            )
            rows_time.append(
                [
                    scm,
                    n,
                    *[
                        cell(
                            m,
                            "seconds_median",
                            lambda r: (
                                f"{_f(r['seconds_median'], 2)} s"
                                + (
                                    f" ({_f(r['time_ratio_to_shiftattr'], 2)}×)"
                                    if r.get("time_ratio_to_shiftattr")
                                    else ""
                                )
                            ),
                        )
                        for m in methods
                    ],
                ]
            )
            ours = sel.get("shiftattr", {}).get("mae_mean")
            oracle = sel.get("shiftattr_oracle", {}).get("mae_mean")
            mr = sel.get("shiftattr_mr", {}).get("mae_mean")
            gen = sel.get("shiftattr_gen", {}).get("mae_mean")
            mis = sel.get("shiftattr_mis", {}).get("mae_mean")
            best = min((v for v in (ours, mis, mr, gen) if v is not None), default=None)
            for m in methods:
                r = sel.get(m, {})
                if (
                    m.startswith("dowhy")
                    and ours is not None
                    and r.get("mae_mean") is not None
                    and r["mae_mean"] < ours
                ):
                    behind.append(
                        f"accuracy, {scm}, N = {n}: {LABELS[m]} MAE {_f(r['mae_mean'])} vs "
                        f"shiftattr {_f(ours)} (oracle-ratio ceiling {_f(oracle)}"
                        + (f"; method='mis' {_f(mis)}" if mis is not None else "")
                        + (f"; method='mr' {_f(mr)}" if mr is not None else "")
                        + (f"; method='generative' {_f(gen)}" if gen is not None else "")
                        + ")"
                        + (
                            " — ahead of every shiftattr estimator"
                            if best is not None and r["mae_mean"] < best
                            else ""
                        )
                    )
    out += [
        "**Mean absolute error** of the attributions (mean ± sd over seeds; lower is better):",
        "",
        _table(header, rows_mae),
        "",
        "**Dominant mechanism found** (the largest |estimated| value is the largest |true| one):",
        "",
        _table(header, rows_dom),
        "",
        "**Wall time** per attribution (median over seeds; × = ratio to shiftattr in the same run):",
        "",
        _table(header, rows_time),
        "",
        "![accuracy](results/accuracy_mae.png)",
        "",
        f"**Mean estimate per mechanism** at N = {max(sizes)} (truth in the first column):",
        "",
    ]
    for scm, t in truth.items():
        sel = {r["method"]: r for r in summary if r["scm"] == scm and r["n"] == max(sizes)}
        rows = []
        for mech, v in t["values"].items():
            rows.append(
                [
                    mech,
                    _f(v),
                    *[
                        _f(sel[m]["value_mean"][mech]) if "value_mean" in sel.get(m, {}) else "—"
                        for m in methods
                    ],
                ]
            )
        out += [
            f"*{scm}*",
            "",
            _table(["mechanism", "truth", *[LABELS[m] for m in methods]], rows),
            "",
        ]
    # diagnosis from the shiftattr runs
    diag = []
    for scm in truth:
        for n in sizes:
            runs = [
                r
                for r in acc["runs"]
                if r["scm"] == scm and r["n"] == n and r["method"] == "shiftattr" and r["ok"]
            ]
            if not runs:
                continue
            ess = np.mean([r["diagnostics"]["ess_all_fraction"] for r in runs])
            auc = {
                k: np.mean([r["diagnostics"]["auc_joint"][k] for r in runs])
                for k in runs[0]["diagnostics"]["auc_joint"]
            }
            sel = {r["method"]: r for r in summary if r["scm"] == scm and r["n"] == n}
            diag.append(
                [
                    scm,
                    n,
                    _f(sel.get("shiftattr", {}).get("mae_mean")),
                    _f(sel.get("shiftattr_oracle", {}).get("mae_mean")),
                    f"{100 * ess:.0f}%",
                    ", ".join(f"{k} {v:.2f}" for k, v in auc.items()),
                ]
            )
    out += [
        "**Where the error of shiftattr comes from.** The oracle column is importance weighting "
        "with perfect ratios: its error is the variance of the weighting itself; the rest of "
        "shiftattr's error comes from the estimated ratios.",
        "",
        _table(
            [
                "SCM",
                "N",
                "shiftattr MAE",
                "oracle-ratio MAE",
                "Kish ESS, all mechanisms",
                "out-of-fold AUC of the joint classifiers",
            ],
            diag,
        ),
        "",
    ]
    worst = []
    n_max = max(sizes)
    for scm, t in truth.items():
        sel = {r["method"]: r for r in summary if r["scm"] == scm and r["n"] == n_max}
        ours = sel.get("shiftattr", {})
        if "value_mean" not in ours:
            continue
        mech = max(t["values"], key=lambda k: abs(ours["value_mean"][k] - t["values"][k]))
        runs = [
            r
            for r in acc["runs"]
            if r["scm"] == scm and r["n"] == n_max and r["method"] == "shiftattr" and r["ok"]
        ]
        ess = np.mean([r["diagnostics"]["ess_fraction"][mech] for r in runs])
        auc = f"{np.mean([r['diagnostics']['auc_joint'][mech] for r in runs]):.2f}"
        parents = [r["diagnostics"].get("auc_parents", {}).get(mech) for r in runs]
        if all(p is not None for p in parents):  # recorded since the suite's second version
            auc += f" / {np.mean(parents):.2f}"
        peers = {
            m: sel[m]["value_mean"][mech]
            for m in methods
            if m.startswith("dowhy") and "value_mean" in sel.get(m, {})
        }
        best = min(peers, key=lambda m: abs(peers[m] - t["values"][mech]), default=None)
        worst.append(
            [
                scm,
                mech,
                _f(t["values"][mech]),
                _f(ours["value_mean"][mech]),
                _f(sel.get("shiftattr_oracle", {}).get("value_mean", {}).get(mech)),
                f"{LABELS[best]} {_f(peers[best])}" if best else "—",
                f"{100 * ess:.0f}%",
                auc,
            ]
        )
    out += [
        f"**shiftattr's largest error per SCM** at N = {n_max} (mean over seeds). When the "
        "oracle-ratio estimate is close to the truth and shiftattr's is not, the estimated "
        "ratio missed the shift: its weights stay near one (a high ESS for that mechanism; "
        "the joint classifier's AUC comes from the parents' shift). When both are off, the "
        "weights themselves are too variable at this N.",
        "",
        _table(
            [
                "SCM",
                "mechanism",
                "truth",
                "shiftattr",
                "oracle ratios",
                "closest DoWhy",
                "ESS of the mechanism",
                "AUC of its joint (/ parents) classifier",
            ],
            worst,
        ),
        "",
    ]
    return "\n".join(out), behind


# -- 2. solvers ---------------------------------------------------------------------------
def _solvers(sol: dict[str, Any] | None) -> tuple[str, list[str], list[list[str]]]:
    if not sol:
        return "## 2. Shapley solvers\n\nNot run.\n", [], []
    behind: list[str] = []
    targets: list[list[str]] = []
    rm = sol["rmse"]
    solvers = [s for s in LABELS if s in rm["solvers"]]
    out = [
        "## 2. Shapley solver efficiency",
        "",
        f"{_run(sol)}. **Accuracy at equal budgets**: RMSE against the "
        f"exact values over {rm['n_seeds']} seeds, divided by the RMS of the exact values, at "
        "equal numbers of value-function evaluations (counted by a wrapper around the value "
        "function: coalitions actually evaluated). Our solver and DoWhy's deduplicate "
        "coalitions; shapiq's permutation sampler evaluates `n − 1` per permutation. DoWhy's "
        "budget is set through `num_permutations` (largest value that fits); its "
        "EARLY_STOPPING may stop below the budget (its mean evaluations are in brackets). "
        "`shiftattr` is `PermutationShapley` as shipped (default `sampler='cyclic'`: "
        "antithetic pairs in rounds of rotations of one random order, so that every player "
        "meets a predecessor set of every size once per round); `shiftattr "
        "(sampler='random')` is the same solver with independent shuffles (the earlier "
        "default), `shiftattr (sampler='halton')` with the first permutation of each pair "
        "from a scrambled Halton sequence; `shiftattr (no antithetic)` is an ablation "
        "(random shuffles, no pairs).",
        "",
    ]
    ratio_cols = [
        (key, label)
        for key, label in (
            ("ratio_vs_shapiq_permutation", "default / shapiq perm."),
            ("ratio_random_vs_shapiq_permutation", "random / shapiq perm."),
            ("ratio_halton_vs_shapiq_permutation", "halton / shapiq perm."),
        )
        if any(key in r for g in rm["games"].values() for r in g["budgets"])
    ]
    for name, g in rm["games"].items():
        rows = []
        for r in g["budgets"]:
            cells = []
            for s in solvers:
                c = r.get(s)
                if not isinstance(c, dict) or "rmse" not in c:
                    cells.append("skipped")
                    continue
                txt = _f(c["relative_rmse"])
                if abs(c["mean_evaluations"] - r["budget"]) > 0.05 * r["budget"]:
                    txt += f" ({_f(c['mean_evaluations'], 3)})"
                cells.append(txt)
            for key, _ in ratio_cols:
                ratio = r.get(key)
                cells += [_f(ratio), _yes(None if ratio is None else ratio <= 0.7)]
            rows.append([r["budget"], *cells])
            for s in solvers:
                c, ours = r.get(s), r.get("shiftattr")
                if (
                    s != "shiftattr"
                    and not s.startswith("shiftattr")
                    and isinstance(c, dict)
                    and "rmse" in c
                    and isinstance(ours, dict)
                    and c["rmse"] < ours["rmse"]
                    and c["mean_evaluations"] <= 1.05 * r["budget"]
                ):
                    se = np.hypot(c.get("rmse_se", 0.0), ours.get("rmse_se", 0.0))
                    noise = (
                        " (within 2 s.e. of seed noise)"
                        if ours["rmse"] - c["rmse"] < 2 * se
                        else ""
                    )
                    behind.append(
                        f"solver RMSE, {name}, budget {r['budget']}: {LABELS[s]} "
                        f"{_f(c['relative_rmse'])} vs shiftattr {_f(ours['relative_rmse'])}{noise}"
                    )
        header = ["budget", *[LABELS[s] for s in solvers]]
        for _, label in ratio_cols:
            header += [label, "≤ 0.7?"]
        out += [
            f"*{name}*: {g['description']} (RMS of the exact values {_f(g['values_rms'])}).",
            "",
            _table(header, rows),
            "",
        ]
    t = rm["target"]
    options = [
        (rm[key], label)
        for key, label in (
            ("target_random", "`PermutationShapley(sampler='random')`"),
            ("target_halton", "`PermutationShapley(sampler='halton')`"),
        )
        if rm.get(key) and rm[key]["n_comparisons"]
    ]

    def verdict(tt: dict[str, Any]) -> str:
        return (
            f"**{'met' if tt['met'] else 'not met'}** — {tt['n_met']} of {tt['n_comparisons']} "
            f"(game, budget) pairs meet it; median ratio {_f(tt['median_ratio'])}, worst "
            f"{_f(tt['worst_ratio'])}"
        )

    def measured(tt: dict[str, Any]) -> str:
        return (
            f"{tt['n_met']}/{tt['n_comparisons']} pairs ≤ 0.7; median ratio "
            f"{_f(tt['median_ratio'])}, worst {_f(tt['worst_ratio'])}"
        )

    if t["n_comparisons"]:
        missed = [
            (name, r["budget"], r["ratio_vs_shapiq_permutation"])
            for name, g in rm["games"].items()
            for r in g["budgets"]
            if r.get("ratio_vs_shapiq_permutation", 0) > 0.7
        ]
        out += [
            "**Target: RMSE ≤ 0.7 × shapiq PermutationSamplingSV at equal budget, at every "
            "(game, budget) pair.**",
            "",
            f"- library default, `PermutationShapley()` (`sampler='cyclic'`): {verdict(t)}.",
            *[f"- {label}: {verdict(tt)}." for tt, label in options],
            "",
            "Why the samplers differ: at equal budget independent shuffles draw about as "
            "many permutations as shapiq does (`2(n − 1)` new coalitions per antithetic pair, "
            "`n − 1` per permutation), so `sampler='random'` gains from the antithetic pairs "
            "alone. A permutation and its reverse are strongly anti-correlated for low-order "
            "interactions (a degree-2 game is exact with one pair: hence the large gains on "
            "the importance-weighting games) but not for a unanimity game on `s` players, "
            "whose variance they lower only by `(1 − 2/s)/(1 − 1/s)`. The cyclic rounds add "
            "two things: every player meets a predecessor set of every size exactly once per "
            "round (stratification over the sizes the Shapley value averages over, which is "
            "what a unanimity game's contributions depend on), and the rotations' prefixes "
            "are arcs of one cycle that the reverses share (`3n²/4 − n/2 + 2` evaluations "
            "per round of `n` permutations instead of `n(n − 1) + 2`).",
            "",
        ]
        if missed:
            out += [
                "The default misses at: "
                + ", ".join(f"{n} budget {b} ({_f(x, 2)})" for n, b, x in missed)
                + ".",
                "",
            ]
        met = t["met"]
        measured_default = measured(t)
    else:
        out += ["**Target not measured**: shapiq is not installed (skipped).", ""]
        measured_default, met = "not measured (shapiq not installed)", None
    out += ["![solvers](results/solvers_rmse.png)", ""]
    targets.append(
        [
            "PermutationShapley RMSE ≤ 0.7 × shapiq PermutationSamplingSV at equal budget — "
            "library default (`sampler='cyclic'`)",
            measured_default,
            _yes(met),
        ]
    )
    for tt, label in options:
        targets.append([f"same target, {label} (opt-in)", measured(tt), _yes(tt["met"])])
    out += [
        "**Exact solver time** on the importance-weighting game (`bench_shapley.py`'s data, "
        "the library's `iw_game` value function). Median wall time of round-robin runs; every "
        "ExactShapley run builds a fresh game and pays all `2**n` evaluations; DoWhy's EXACT "
        "calls the same value function one coalition at a time (`n_jobs=1`).",
        "",
    ]
    labels = {
        "shiftattr_exact": "ExactShapley on iw_game (library)",
        "shiftattr_exact_float32": "ExactShapley on iw_game(precision='float32') (library, opt-in)",
        "dowhy_exact": "DoWhy EXACT, same value function",
        "value_fn_batched": "the library's value function alone (`coalition_means`), all "
        "2**n coalitions, one batch",
        "stacked_product_alone": "the kernel's one matrix product alone, on ready-made "
        "weights (the floor)",
        "stacked_product_alone_float32": "the same product in single precision (the floor "
        "of `precision='float32'`)",
        "single_coalition_loop": "the value function, one coalition per call (Python loop)",
        "shiftattr_exact_table_lookup": "ExactShapley on the table of values (solver overhead)",
        "dowhy_exact_table_lookup": "DoWhy EXACT on the table of values (solver overhead)",
    }
    for ex in sol["exact"]:
        threads = ex["blas_threads"]
        rows = [[labels.get(k, k), f"{_f(v, 3)} s"] for k, v in ex["seconds"].items()]
        out += [
            f"*n = {ex['n_players']}, N = {ex['n_samples']:,}, BLAS threads: {threads}, "
            f"{ex['repeats']} repeats*",
            "",
            _table(["what", "median wall time"], rows),
            "",
        ]
        if "speedup_vs_dowhy" in ex:
            out += [
                f"ExactShapley is **{_f(ex['speedup_vs_dowhy'], 3)}×** faster than DoWhy EXACT "
                f"(values agree to {_f(ex['max_abs_difference_dowhy'], 2)}). On a value function "
                f"that costs nothing (table lookup) the solvers' own overhead differs "
                f"{_f(ex['speedup_vs_dowhy_table_lookup'], 3)}×.",
                "",
            ]
            if threads == 1:
                targets.append(
                    [
                        "ExactShapley ≥ 50× faster than DoWhy EXACT (iw game, n = 10, N = 100,000)",
                        f"{_f(ex['speedup_vs_dowhy'], 3)}× (library `iw_game`, blocked "
                        "split-product kernel)",
                        _yes(ex["target"]["met"]),
                    ]
                )
                if "target_float32" in ex:
                    targets.append(
                        [
                            "same target, `iw_game(precision='float32')` (opt-in)",
                            f"{_f(ex['speedup_vs_dowhy_float32'], 3)}× (Shapley values within "
                            f"{_f(ex['max_abs_difference_float32'], 2)} of float64's, largest "
                            f"|value| {_f(ex['max_abs_value'], 2)})",
                            _yes(ex["target_float32"]["met"]),
                        ]
                    )
                if not ex["target"]["met"]:
                    behind.append(
                        f"exact solver (float64 default): {_f(ex['speedup_vs_dowhy'], 3)}× "
                        "faster than DoWhy, target 50×"
                        + (
                            f" (met with `precision='float32'`: "
                            f"{_f(ex['speedup_vs_dowhy_float32'], 3)}×)"
                            if ex.get("target_float32", {}).get("met")
                            else ""
                        )
                    )
        else:
            out += ["DoWhy not installed: the comparison was skipped.", ""]
            if threads == 1:
                targets.append(
                    [
                        "ExactShapley ≥ 50× faster than DoWhy EXACT (iw game, n = 10, N = 100,000)",
                        "not measured (dowhy not installed)",
                        "—",
                    ]
                )
    single = next((e for e in sol["exact"] if e["blas_threads"] == 1), None)
    if single and "dowhy_exact" in single["seconds"]:
        s = single["seconds"]
        need = s["dowhy_exact"] / 50
        verdict = (
            "The target is met."
            if single["target"]["met"]
            else f"The target is missed: 50× needs the exact solve in {_f(need, 2)} s; it takes "
            f"{_f(s['shiftattr_exact'], 2)} s here."
        )
        out += [
            f"{verdict} Where the time goes: DoWhy's time is its 1,024 one-coalition calls "
            f"of the value function (the same calls in a plain Python loop take "
            f"{_f(s['single_coalition_loop'], 3)} s; each costs `N` exponentials and three "
            "reductions); its own solver overhead is the table-lookup row. ExactShapley "
            "evaluates all coalitions in one batch, through the library's split-product "
            f"kernel `coalition_means` ({_f(s['value_fn_batched'], 3)} s for the batch): the "
            "weights factorise over two halves of the mechanisms, so each player's "
            "log-ratios are exponentiated once (`n × N` exponentials), each half's "
            "`2**(n/2)` sub-coalition weights are built by doubling products, and one "
            "matrix product of the stacked numerator and denominator weights gives every "
            "coalition, in cache-sized blocks of cases. That product is `2 × 2**n × N` "
            f"multiply-adds, and alone it took {_f(s.get('stacked_product_alone'), 2)} s "
            f"({_f(single.get('stacked_product_gflops'), 2)} GFLOP/s in double precision): any "
            "exact method needs every coalition's weighted sums, so 50× would leave almost "
            "no time beyond that product. `iw_game(precision='float32')` builds the weights "
            "and runs the product in single precision, adding each block's sums in double: "
            f"{_f(s.get('shiftattr_exact_float32'), 2)} s"
            + (
                f", {_f(single['speedup_vs_dowhy_float32'], 3)}× DoWhy"
                if "speedup_vs_dowhy_float32" in single
                else ""
            )
            + (
                f", with Shapley values within {_f(single['max_abs_difference_float32'], 2)} "
                "of the double-precision ones"
                if "max_abs_difference_float32" in single
                else ""
            )
            + ". It is opt-in: the default keeps exact values to double rounding. "
            + (
                f"In single precision the product alone took "
                f"{_f(s['stacked_product_alone_float32'], 2)} s "
                f"({_f(single.get('stacked_product_gflops_float32'), 2)} GFLOP/s), "
                f"{s['stacked_product_alone_float32'] / need:.0%} of the time 50× allows, "
                "before any weight is built. "
                if "stacked_product_alone_float32" in s
                else ""
            )
            + (
                "In double precision on one core 50× is beyond any method that forms these "
                f"sums here: the product alone takes {s['stacked_product_alone'] / need:.0%} of "
                "the time 50× allows (and every coalition's sums need it). "
                if s.get("stacked_product_alone", 0) > need
                else ""
            )
            + _default_threads_sentence(single, sol["exact"]),
            "",
        ]
    return "\n".join(out), behind, targets


def _default_threads_sentence(single: dict[str, Any], runs: list[dict[str, Any]]) -> str:
    """Section 2: the exact-solver comparison with the libraries' default BLAS threads,
    beside the one-thread run the target is judged on (when it did not run, only which
    comparison the target is judged on)."""
    other = next(
        (e for e in runs if e["blas_threads"] != 1 and "dowhy_exact" in e["seconds"]), None
    )
    if other is None:
        return "One thread on both sides is the comparison the target is judged on."
    one, many = single["seconds"], other["seconds"]
    return (
        f"With the libraries' default BLAS threads (the second table) the ratio is "
        f"{_f(other['speedup_vs_dowhy'], 3)}×: DoWhy took {_f(many['dowhy_exact'], 3)} s "
        f"(one thread: {_f(one['dowhy_exact'], 3)} s) and ExactShapley "
        f"{_f(many['shiftattr_exact'], 2)} s (one thread: {_f(one['shiftattr_exact'], 2)} s). "
        "One thread on both sides is the comparison the target is judged on: this 2-core "
        "machine is shared with other jobs, and a second thread helps whichever side it "
        "happens to be free for."
    )


# -- 3. metrics ---------------------------------------------------------------------------
def _metrics(met: dict[str, Any] | None) -> tuple[str, list[str]]:
    if not met:
        return "## 3. Metric throughput vs MONAI\n\nNot run.\n", []
    shape = "×".join(map(str, met.get("shape", [])))
    out = [
        "## 3. Metric throughput vs MONAI",
        "",
        f"{_run(met, mode=False)} (`benchmarks/bench_metrics.py`, {met.get('n_cases')} pairs of "
        f"{shape} lesion-like masks, {met.get('repeats')} repeats, round-robin medians; MONAI "
        "gets float32 `(B, 1, D, H, W)` tensors built before timing, in chunks of 10; torch "
        f"with {(met.get('monai') or {}).get('torch_threads', 'its default')} threads, numpy "
        "single-threaded by nature here).",
        "",
    ]
    behind = []
    monai = met.get("monai")
    rows = [
        ["shiftattr `dice`, bool batch", _f(met.get("dice_batch_cases_per_s"))],
        ["shiftattr `dice`, per case", _f(met.get("dice_per_case_cases_per_s"))],
    ]
    if isinstance(monai, dict):
        rows += [
            [
                "shiftattr `dice` on MONAI's float tensors",
                _f(monai.get("shiftattr_dice_on_same_float_tensors_cases_per_s")),
            ],
            [
                f"MONAI {monai.get('version')} `compute_dice`",
                _f(monai.get("compute_dice_cases_per_s")),
            ],
            ["plain torch `2Σpr / (Σp + Σr)`", _f(monai.get("plain_torch_sum_dice_cases_per_s"))],
        ]
    rows += [
        ["shiftattr `lesion_f1` (MSSEG-2016)", _f(met.get("lesion_f1_cases_per_s"))],
        ["scipy `ndimage.label` of both masks", _f(met.get("labelling_both_masks_cases_per_s"))],
    ]
    out += [_table(["function", "cases per second"], rows), ""]
    if isinstance(monai, dict):
        ratio = met.get("dice_vs_monai")
        out += [
            f"shiftattr's Dice is **{_f(ratio, 3)}×** MONAI's throughput on its native bool "
            f"input and **{_f(met.get('dice_on_tensors_vs_monai'), 3)}×** on MONAI's float "
            f"tensors; values agree to {_f(monai.get('max_abs_difference_vs_shiftattr'), 2)}. "
            f"Lesion-wise F1 costs {_f(met.get('lesion_f1_over_labelling'), 3)}× the connected-"
            "component labelling it cannot avoid.",
            "",
        ]
        if ratio is not None and ratio < 1:
            behind.append(f"Dice throughput: {_f(ratio)}× MONAI's")
    else:
        out += ["MONAI not installed: the comparison was skipped.", ""]
    out += ["![metrics](results/metrics_throughput.png)", ""]
    return "\n".join(out), behind


# -- 4. scaling ---------------------------------------------------------------------------
def _scaling(sc: dict[str, Any] | None) -> str:
    if not sc:
        return "## 4. Scaling\n\nNot run.\n"
    g, a, m = sc["samples_game"], sc["samples_attribute"], sc["mechanisms"]
    out = [
        "## 4. Scaling",
        "",
        f"{_run(sc)}. BLAS limited to one thread.",
        "",
        f"**Cases, game only** ({g['n_mechanisms']} mechanisms, precomputed log-ratios; median of "
        f"{g['repeats']} runs; peak memory traced by `tracemalloc` in one extra run):",
        "",
        _table(
            ["N", "ExactShapley on iw_game", "peak MB"],
            [
                [
                    _f(r["n_samples"]),
                    f"{_f(r['seconds']['exact'], 3)} s",
                    _f(r["peak_mb"]["exact"], 3),
                ]
                for r in g["rows"]
            ],
        ),
        "",
        f"Log-log slopes, time {_f(g['slope_time']['exact'], 3)} (1 = linear in N); memory "
        f"{_f(g['slope_memory']['exact'], 3)}. The split-product kernel works in cache-sized "
        "blocks of cases, so its work arrays stay near 4 MB whatever N; the memory that "
        "grows is the log-ratios and metric themselves.",
        "",
        f"**Cases, full `attribute()`** ({a['scm']}; {a['settings']}; each run a fresh "
        "subprocess; memory = peak resident memory above the baseline after loading the data):",
        "",
        _table(
            ["N per environment", "runs", "median time", "peak RSS increase"],
            [
                [
                    _f(r["n_samples"]),
                    r["runs"],
                    f"{_f(r['seconds'], 3)} s",
                    f"{_f(r['peak_rss_increase_mb'], 3)} MB",
                ]
                for r in a["rows"]
            ],
        ),
        "",
        f"Log-log slope of time {_f(a['slope_time'], 3)}, of memory {_f(a['slope_memory'], 3)}. "
        "At small N the time is dominated by a constant: 20 classifier fits per node set "
        "(each of the four candidate classifiers once per fold; the choice and the Platt "
        "calibration use the pooled out-of-fold log-odds), each gradient-boosting fit paying "
        "150 iterations of Python-level tree-growing overhead whatever N.",
        "",
        f"**Mechanisms** (N = {m['n_samples']:,}; median of {m['repeats']} runs):",
        "",
        _table(
            [
                "n",
                "ExactShapley",
                "evaluations",
                "PermutationShapley (64 perm.)",
                "evaluations",
            ],
            [
                [
                    r["n_mechanisms"],
                    _secs(r["seconds"].get("exact")),
                    _f(r["evaluations"].get("exact")),
                    _secs(r["seconds"].get("permutation_64")),
                    _f(r["evaluations"].get("permutation_64")),
                ]
                for r in m["rows"]
            ],
        ),
        "",
        "Growth: "
        + "; ".join(
            f"{k}: ×{_f(v['factor_per_mechanism'], 3)} per added mechanism (log-log slope "
            f"{_f(v['loglog_slope'], 3)})"
            for k, v in m["growth"].items()
        )
        + ". Exact enumeration needs `2**n` coalitions; with the split-product kernel they "
        "cost `n × N` exponentials, `2 × 2**(n/2) × N` multiplications and `2 × 2**n × N` "
        "multiply-adds in BLAS, so the time grows by less than ×2 per mechanism until the "
        "products dominate. Permutation "
        "sampling grows polynomially (`n + 1` coalitions per permutation); the kernel keeps "
        "the products for its batches up to 16 half-pairs per coalition.",
        "",
        "![scaling with N](results/scaling_samples.png)",
        "![scaling with mechanisms](results/scaling_mechanisms.png)",
        "",
    ]
    if sc.get("bootstrap"):
        out += _scaling_bootstrap(sc["bootstrap"])
    return "\n".join(out)


def _scaling_bootstrap(b: dict[str, Any]) -> list[str]:
    return [
        f"**Fixed bootstrap** ({b['n_bootstrap']} replicates on fitted values; median of "
        f"{b['repeats']} runs): the library's route with the exact solver (every coalition's "
        "value on a chunk of resamples at once, all replicates' Shapley values from one table) "
        "against one game per replicate (the route of any other solver). `iw`: the game data "
        "above; `mr`: `LinearGaussianSCM.example()` fitted with linear learners.",
        "",
        _table(
            [
                "method",
                "mechanisms",
                "N",
                "batched",
                "one game per replicate",
                "speed-up",
                "largest difference",
            ],
            [
                [
                    r["method"],
                    r["n_mechanisms"],
                    _f(r["n_samples"]),
                    _secs(r["seconds"]["batched"]),
                    _secs(r["seconds"]["per_replicate"]),
                    f"{_f(r['speedup'], 3)}×",
                    f"{r['max_abs_difference']:.1e}",
                ]
                for r in b["rows"]
            ],
        ),
        "",
        "`iw` already evaluated each replicate's coalitions in one batch, so it gains "
        "least; `mr` evaluated every coalition of every replicate in Python.",
        "",
    ]


#: Time and memory of every stage of a run per volume shape, written by
#: ``bench_volume_scaling.py``.
VOLUME_SCALING_NAME = "volume_scaling"


def _shape_label(shape: list[int]) -> str:
    return "×".join(map(str, shape))


def _volume_scaling(vs: dict[str, Any] | None) -> str:
    """Section 4b: seconds per case and peak memory of each stage per volume shape."""
    if not vs or not vs.get("rows"):
        return ""
    cfg = vs["config"]
    shapes = [list(s) for s in cfg["shapes"]]
    several_n = len(cfg["n"]) > 1
    keys = list(dict.fromkeys((r["stage"], r["n"]) for r in vs["rows"]))
    cell = {(r["stage"], r["n"], tuple(r["shape"])): r for r in vs["rows"]}

    def text(stage: str, n: int, shape: list[int]) -> str:
        r = cell.get((stage, n, tuple(shape)))
        if r is None:
            pooled = cell.get(("cnn_epoch", n, tuple(shape)))
            if stage == "cnn_epoch_unpooled" and pooled and pooled["downsample"] == [1, 1, 1]:
                return "as `cnn_epoch`"
            return "—"
        return f"{_f(r['seconds_per_case'], 3)} s; {_f(r['peak_above_baseline_gb'], 2)} GB"

    def exponent(stage: str, n: int) -> str:
        rs = sorted(
            (r for r in vs["rows"] if r["stage"] == stage and r["n"] == n),
            key=lambda r: r["voxels"],
        )
        if len(rs) < 2 or rs[0]["voxels"] == rs[-1]["voxels"]:
            return "—"
        a, b = rs[0], rs[-1]
        slope = np.log(b["seconds_per_case"] / a["seconds_per_case"]) / np.log(
            b["voxels"] / a["voxels"]
        )
        return f"{_f(float(slope), 2)} ({_shape_label(a['shape'])} → {_shape_label(b['shape'])})"

    rows = [
        [f"`{stage}`" + (f" (n = {n})" if several_n else "")]
        + [text(stage, n, shape) for shape in shapes]
        + [exponent(stage, n)]
        for stage, n in keys
    ]
    n_text = " and ".join(str(n) for n in cfg["n"])
    if all(r.get("peak_method") == "reset high-water mark" for r in vs["rows"]):
        peak_note = (
            "the high-water mark reset to the resident memory at the baseline, so each "
            "peak is the stage's own"
        )
    else:  # the runs before the reset, or a platform without /proc/self/clear_refs
        peak_note = (
            "the process's high-water mark: the discriminator's stages build their 2 × "
            f"{cfg['cnn_n']} cases from the {n_text}, and a fit that stays below that "
            "copy's peak shows 0"
        )
    return "\n".join(
        [
            "### 4b. Time and memory of each stage of a run at scan sizes",
            "",
            f"{_run(vs, mode=False)}: "
            f"`{vs.get('command', 'benchmarks/bench_volume_scaling.py').strip()}`"
            f"; every stage in a fresh one-thread process on {n_text} simulated cases (the "
            f"discriminator's one epoch on {cfg['cnn_n']} + {cfg['cnn_n']} cases: the whole "
            "fit's time per case), seconds per case and peak resident memory above the "
            f"process's baseline after its imports and data ({peak_note}); the last column "
            "is the growth exponent of the time per case against the voxel count "
            "(1 = proportional).",
            "",
            _table(
                ["stage", *(_shape_label(s) for s in shapes), "time exponent"],
                rows,
            ),
            "",
        ]
    )


#: Peak memory of the image statistics with and without bounded batches, written by
#: ``bench_image_statistics_memory.py``.
IMAGE_STATISTICS_MEMORY_NAME = "image_statistics_memory"


def _image_statistics_memory(ism: dict[str, Any] | None) -> str:
    """Section 4c: peak memory of ``image_statistics`` with its batches bounded and in one
    batch, on a few volumes of a real scan's size."""
    if not ism or not ism.get("rows"):
        return ""
    shape = _shape_label(ism["shape"])
    return "\n".join(
        [
            f"### 4c. Memory of the image statistics at {shape}",
            "",
            f"{_run(ism, mode=False)}: `benchmarks/bench_image_statistics_memory.py --shape "
            f"{' '.join(map(str, ism['shape']))} --n {ism['n']}`; `image_statistics` of "
            f"{ism['n']} float32 volumes of noise, each configuration in a fresh one-thread "
            "process, with the library's batches bounded in bytes and with every case in one "
            "batch (before the bound); peak resident memory above the baseline (the volumes "
            f"included); same statistics in both: {_yes(ism.get('same_statistics'))}.",
            "",
            _table(
                ["configuration", "cases per batch", "peak above baseline", "time"],
                [
                    [
                        r["configuration"],
                        r["cases_per_batch"],
                        f"{_f(r['peak_above_baseline_gb'], 3)} GB",
                        _secs(r["seconds"]),
                    ]
                    for r in ism["rows"]
                ],
            ),
            "",
        ]
    )


#: Saved predictions attributed with and without their saved probabilities, written by
#: ``bench_saved_probabilities.py``.
SAVED_PROBABILITIES_NAME = "saved_probabilities"


def _saved_probabilities(sp: dict[str, Any] | None) -> str:
    """Section 5f: what the probabilities saved beside the masks change."""
    if not sp or not sp.get("summary"):
        return ""
    shape = "×".join(str(v) for v in sp["shape"])
    return "\n".join(
        [
            "### 5f. Saved predictions with and without their saved probabilities",
            "",
            f"{_run(sp, mode=False)}: `benchmarks/bench_saved_probabilities.py --seeds "
            f"{sp['seeds']}`. Per seed a U-Net trained on centre 01 / annotator 1 "
            f"({sp['epochs']} epochs, {shape}) and post-processing (components under 3 "
            "voxels removed) form the pipeline; its saved masks are attributed by "
            "`SavedPredictions` with the probabilities saved beside them and without "
            f"(the masks only), {sp['n']} cases a side, the image statistics plus the output "
            f'features in the ratios, `"iw"`, {sp["replicates"]} refit replicates; the truth is the '
            f"simulator's for the same pipeline ({sp['truth_n']} cases per coalition). Per "
            "shift, over the seeds and both mechanisms:",
            "",
            _table(
                [
                    "shift",
                    "variant",
                    "runs",
                    "MAE",
                    "CIs cover the truth",
                    "dominant right",
                    "runs warned",
                    "seconds per run",
                ],
                [
                    [
                        r["shift"],
                        r["variant"],
                        r["runs"],
                        _f(r["mae"], 3),
                        _pct(r["coverage"]),
                        _pct(r["dominant_right"]),
                        r["warned_runs"],
                        _secs(r["seconds"]),
                    ]
                    for r in sp["summary"]
                ],
            ),
            "",
            _saved_probabilities_paired(sp["rows"]),
            "",
            *_saved_probabilities_checks(sp),
        ]
    )


def _saved_probabilities_checks(sp: dict[str, Any]) -> list[str]:
    """Section 5f's second part: the check of saved probabilities against the masks."""
    checks, own = sp.get("checks"), sp.get("own_contrast") or {}
    if not checks or not own.get("cases"):
        return []
    return [
        "The check of the probabilities against the masks (`MIN_PROBABILITY_CONTRAST`, "
        "0.1): over the pipeline's own files, each case's mean probability inside its "
        f"saved mask less that outside it was at least {_f(own['min'], 3)} (1st "
        f"percentile {_f(own['p01'], 3)}, median {_f(own['median'], 3)}; {own['cases']:,} "
        "cases whose mask is neither empty nor full). What the scorer did with each "
        "environment's probabilities mixed up (refused, or accepted with some cases named "
        "in a warning):",
        "",
        _table(
            ["probabilities", "environments", "refused", "cases warned of, where accepted"],
            [
                [
                    c["mixup"],
                    c["environments"],
                    c["refused"],
                    f"{c['warned_cases']} of {c['judged_cases_accepted']}"
                    if c["environments"] > c["refused"]
                    else "–",
                ]
                for c in checks
            ],
        ),
        "",
    ]


def _saved_probabilities_paired(rows: list[dict[str, Any]]) -> str:
    """How often, seed by seed, the probabilities lowered the error, and the runs' worst
    ("" unless both variants ran for some seed and shift)."""
    with_, without = "with probabilities", "masks only"
    runs: dict[tuple, dict[str, float]] = {}
    for r in rows:
        err = sum(abs(r["values"][m] - r["truth"][m]) for m in r["values"]) / len(r["values"])
        runs.setdefault((r["seed"], r["shift"]), {})[r["variant"]] = err
    pairs = [v for v in runs.values() if with_ in v and without in v]
    if not pairs:
        return ""
    better = sum(v[with_] < v[without] for v in pairs)
    close = sum(abs(v[with_] - v[without]) < 0.002 for v in pairs)
    return (
        f"Paired by seed and shift, the probabilities lowered the run's mean absolute error "
        f"(over both mechanisms) in {better} of {len(pairs)} runs, and {close} pairs differed "
        f"by less than 0.002; the largest run error was {_f(max(v[with_] for v in pairs), 3)} "
        f"with them and {_f(max(v[without] for v in pairs), 3)} without."
    )


#: The ``metric_beyond_source`` warning's false alarms and its target case, written by
#: ``bench_metric_range.py``.
METRIC_RANGE_NAME = "metric_range"


def _metric_range(mr: dict[str, Any] | None) -> str:
    """Section 1b: the ``metric_beyond_source`` warning under alike environments, and on
    the graph whose outcome noise doubles."""
    if not mr or not mr.get("false_alarms"):
        return ""
    rates = [r["rate"] for r in mr["false_alarms"]]
    nd = mr["noise_doubles"]
    return "\n".join(
        [
            "### 1b. Target metric beyond the source's range (`metric_beyond_source`)",
            "",
            f"{_run(mr, mode=False)}: `benchmarks/bench_metric_range.py --reps {mr['reps']} "
            f"--seeds {nd['seeds']}`. How often the warning fires when both environments' "
            f"metrics come from one distribution ({mr['reps']:,} pairs per cell; its level "
            f"is 1 %: {_f(100 * min(rates), 2)}–{_f(100 * max(rates), 2)} % over the cells):",
            "",
            _table(
                ["distribution", "source cases", "target cases", "fires"],
                [
                    [r["distribution"], r["n_source"], r["n_target"], f"{_f(100 * r['rate'], 2)} %"]
                    for r in mr["false_alarms"]
                ],
            ),
            "",
            "A linear-Gaussian graph `Z -> X -> Y` whose outcome noise doubles at the target "
            f"(squared error of a fixed model; the truth of `Y` is {_f(nd['truth'], 3)}), "
            f"{nd['n_source']} source and {nd['n_target']} target cases, {nd['seeds']} seeds, "
            "no bootstrap: the error of `Y`'s value, how often `metric_beyond_source` fires "
            '(it is raised for `"iw"` only), how often another warning does, and how '
            "often it fires with no other warning:",
            "",
            _table(
                ["variant", "RMS error", "mean error", "fires", "other warning", "fires alone"],
                [
                    [
                        f"`{r['variant']}`",
                        _f(r["rms_error"], 3),
                        _f(r["mean_error"], 3),
                        _pct(r["beyond_rate"]),
                        _pct(r["other_warning_rate"]),
                        _pct(r["beyond_alone_rate"]),
                    ]
                    for r in nd["rows"]
                ],
            ),
            "",
        ]
    )


#: Where the refit bootstrap's replicates sit against the point estimate, written by
#: ``bench_refit_centering.py``.
REFIT_CENTERING_NAME = "refit_centering"

#: The intervals section 1c compares, as it names them.
_RC_INTERVALS = {
    "percentile": "percentile (reported for `iw`)",
    "basic": "basic (2θ̂ − q)",
    "normal": "normal, centred on θ̂",
    "normal_bc": "normal, bias-corrected",
}


def _misses_cell(m: dict[str, int] | None) -> str:
    """``"j of k"``: of the k values whose reported interval missed, j in warned runs."""
    return "—" if not m else f"{m['warned']} of {m['misses']}"


def _rc_provenance(rc: dict[str, Any]) -> str:
    """Where section 1c's runs come from: each part's date, commit and command when they
    ran side by side (``--combine``), with their seconds summed."""
    parts = rc.get("parts") or [rc]

    def one(p: dict[str, Any]) -> str:
        commit = (p.get("git") or {}).get("commit")
        return (
            f"{p.get('finished') or p.get('date')}"
            + (f" at commit `{commit}`" if commit else "")
            + f": `{p['command']}` ({_f(p['seconds'], 3)} s)"
        )

    if len(parts) == 1:
        return f"Run {one(parts[0])}. "
    return (
        f"Run in {len(parts)} processes side by side ("
        + "; ".join(one(p) for p in parts)
        + "; combined with `--combine`). "
    )


def _refit_centering(rc: dict[str, Any] | None) -> str:
    """Section 1c: how far refit-bootstrap replicates sit from the point estimate, and
    each interval's coverage of the truth on the tabular SCMs."""
    if not rc or rc.get("partial") or rc.get("mode") == "quick":
        return ""  # a run still going, cut short, or the quick check (not evidence)
    if not rc.get("summary", {}).get("overall"):
        return ""
    cfg, summ = rc["config"], rc["summary"]

    def row(label: list[Any], s: dict[str, Any]) -> list[Any]:
        se = s.get("shift_toward_zero_se")
        return [
            *label,
            s["n_rows"],
            _f(s["shift_toward_zero_mean"], 2) + (f" ± {_f(se, 1)}" if se else ""),
            _pct(s["shrunk_share"]),
            _f(s["error_along_truth_mean"], 2),
            *(_pct(s["coverage"].get(k)) for k in _RC_INTERVALS),
            _f(s["width_mean"]["percentile"], 2),
            _f(s["width_mean"]["normal"], 2),
            _misses_cell(s.get("misses_warned")),
        ]

    head = [
        "mechanism values",
        "replicates' shift towards 0 (sd of the replicates)",
        "replicate mean nearer 0 than θ̂",
        "θ̂'s error along the truth's sign",
        *(f"coverage: {v}" for v in _RC_INTERVALS.values()),
        "width: percentile",
        "width: normal",
        "misses of the reported interval with a warning",
    ]
    rows = [row([s["scm"], s["n"], f"`{s['method']}`"], s) for s in summ["by_scm_n_method"]]
    rows += [row(["all", s["n"], f"`{s['method']}`"], s) for s in summ["by_n_method"]]
    # one method's rows: variants of one estimator (iw, iw+check) repeat its values
    o = next((s for s in summ.get("by_method", []) if s["method"] == "iw"), summ["overall"])
    return "\n".join(
        [
            "### 1c. Where refit-bootstrap replicates sit against the estimate",
            "",
            _rc_provenance(rc)
            + f"The SCMs of section 1 and its samples, N = {', '.join(map(str, cfg['sizes']))}, "
            f"seeds {cfg['seeds']}, `attribute(..., bootstrap='refit', "
            f"n_bootstrap={cfg['n_bootstrap']}, n_folds={cfg['n_folds']})`; each mechanism "
            "value θ̂ of each run is a row, and its replicates are the result's "
            "`bootstrap_values`. A replicate refits the ratio classifiers on a resample, "
            "which holds about 63 % distinct cases: if that flattens them, the replicates sit "
            "nearer zero than θ̂ and the percentile interval leans towards zero. The shift is "
            "(mean of the replicates − θ̂) / their sd, signed so that positive is towards "
            "zero (± its standard error over runs); θ̂'s error is sign(truth) × (θ̂ − truth), "
            "negative when θ̂ is nearer zero than the truth. Four 95 % intervals from the "
            "same replicates: the percentile one (what `method='iw'` reports), the basic "
            "one (reflected around θ̂, which undoes a shift of the replicates), θ̂ ± 1.96 sd, "
            "and 2θ̂ − mean ± 1.96 sd. `iw+check` is `iw` with every check it has: the "
            "measured target loss (`closure_error`) and `cross_check=True` "
            "(`methods_disagree`). The last column counts, of the values whose reported "
            "interval missed the truth, those of runs that carried any warning:",
            "",
            _table(["SCM", "N", "method", *head], rows),
            "",
            f"Over the {o['n_rows']} values of `{o.get('method', 'every method')}` the "
            "replicates' mean sat "
            f"{_f(abs(o['shift_toward_zero_mean']), 2)} sd "
            + ("nearer to" if o["shift_toward_zero_mean"] > 0 else "further from")
            + f" zero than θ̂ (nearer for {_pct(o['shrunk_share'])} of the values), and θ̂ erred by "
            f"{_f(o['error_along_truth_mean'], 2)} along the truth's sign. The percentile "
            f"interval held the truth for {_pct(o['coverage']['percentile'])}, the basic one "
            f"for {_pct(o['coverage']['basic'])}, θ̂ ± 1.96 sd for "
            f"{_pct(o['coverage']['normal'])} and the bias-corrected normal one for "
            f"{_pct(o['coverage']['normal_bc'])}.",
            "",
        ]
    )


# -- 5. synthetic MS ----------------------------------------------------------------------
_MS_MECHS = ("D", "X", "Y")
_MS_TARGET_NAMES = {
    "MAE <= 0.01 Dice (mean over runs)": "MAE ≤ 0.01 Dice",
    "dominant mechanism right in >= 95 % of runs": "dominant mechanism right in ≥ 95 % of runs",
    "95 % CIs cover the truth in >= 90 %": "95 % CIs cover the truth in ≥ 90 %",
    "every run with error > 0.02 flagged by the diagnostics": (
        "every run with error > 0.02 flagged by the diagnostics"
    ),
    "every run with error > 0.02 flagged, with attribute(tolerance=0.02)": (
        "same, counting the `imprecise` warnings of `tolerance=0.02`"
    ),
}


def _pct(x: float | None) -> str:
    return "—" if x is None else f"{100 * x:.0f}%"


def _env_label(env: dict[str, Any]) -> str:
    return f"{env['center']}/{env['annotator']}/{env['population']}"


def _ms_rescored(r: dict[str, Any]) -> str:
    """One sentence on a ``--rescore`` of the stored runs."""
    computed = r.get("computed", r["scenarios"])
    what = (
        f"the truths of {len(computed)} scenarios recomputed to MC s.e. ≤ "
        f"{r['truth_se_target']} (at most {_f(r['truth_n_max'])} cases) and every stored run "
        "scored against them"
        if computed
        else "truths reused, every stored run scored again by the current scoring rules"
    )
    return (
        f" Re-scored on {r['date'][:10]} (`{r['command']}`, {_f(r['seconds'], 3)} s): {what}; "
        "estimates, intervals and warnings are those of the runs as made."
    )


def _ms_target_cell(row: dict[str, Any]) -> str:
    name, value = row["target"], row["measured"]
    if value is None:
        return "not measured"
    cell = f"{_f(value, 3)} Dice" if name.startswith("MAE") else _pct(value)
    if row.get("false_alarms") is not None:
        cell += f" (false alarms: {_pct(row['false_alarms'])} of the runs with error ≤ 0.02)"
    return cell


#: The command line's defaults as the synthetic-MS benchmark runs them: (label, variant).
MS_DEFAULTS = (
    ("`shiftattr run`, unpaired (`mis`)", "mis+ext+outputs+refit+biasaware"),
    (
        "`shiftattr run`, `paired = ['Y']` (`mr` over both samples)",
        "mr+pooled+ext+outputs+both+refit+biasaware+paired",
    ),
)


def _confidently_wrong(runs: list[dict[str, Any]], threshold: float = 0.02) -> str:
    """Runs erring by more than ``threshold`` with no warning and an interval that misses
    its truth, as "k of n": the failure the user cannot see (a run whose every interval
    holds the truth reports its error honestly even unwarned)."""
    bad = [
        r
        for r in runs
        if r["max_abs_error"] > threshold and not r["flagged"] and not all(r["covered"].values())
    ]
    return f"{len(bad)} of {len(runs)}"


def _reader_noise(runs: list[dict[str, Any]]) -> str:
    """How the extra readings of paired runs were drawn, from the simulator version each
    run records (runs before the field existed drew with version 1): simulator 1 gave
    every reader of a case the observed annotator's noise, which made paired estimates
    look more precise than two real readers allow."""
    paired = [r for r in runs if r["estimator"].endswith("+paired")]
    if not paired:
        return "not used"
    versions = {int(r.get("simulator_version", 1)) for r in paired}
    if versions == {1}:
        return "shared (simulator 1)"
    if 1 in versions:
        return "mixed: " + ", ".join(f"simulator {v}" for v in sorted(versions))
    return "own per reader (simulator " + ", ".join(map(str, sorted(versions))) + ")"


def _reader_noise_paragraph(ms: dict[str, Any]) -> list[str]:
    """One paragraph naming, per paired variant and N, how its second readings were drawn
    (:func:`_reader_noise`); empty when no paired variant ran."""
    groups: dict[tuple[str, int], list[dict[str, Any]]] = {}
    for r in ms.get("runs", []):
        if r["estimator"].endswith("+paired"):
            groups.setdefault((r["estimator"], r["n"]), []).append(r)
    if not groups:
        return []
    order = {e: i for i, e in enumerate(ms["config"].get("estimators_run", []))}
    parts = [
        f"`{e}` N = {n}: {_reader_noise(runs)}"
        for (e, n), runs in sorted(groups.items(), key=lambda kv: (order.get(kv[0][0], 0), kv[0]))
    ]
    return [
        "**Reading noise of the second reader in the paired runs.** Simulator 1 gave every "
        "extra reader of a case the observed annotator's own reading noise, so the per-case "
        "difference between two readers, on which paired estimation rests, was less noisy "
        "than between two people; simulator 2 draws each reader's noise on its own (the "
        "truths are unchanged). Redrawn, the paired default's MAE rose at N = 100 and not "
        "at N = 300 (section 5d), so simulator 1's paired figures flatter small samples. "
        + "; ".join(parts)
        + ".",
        "",
    ]


def _ms_defaults_targets(
    ms: dict[str, Any] | None, shipped: dict[str, Any] | None = None
) -> list[str]:
    """Issue 4's four targets for the command line's defaults as they run (refit
    bootstrap, bias-aware interval), per N: the rows a user of the command line needs
    from the long tables below; from section 5's runs and, where they ran, from section
    5d's on the segmenters the repository holds (``shipped``)."""
    rows = []
    for payload, segmenters in (
        (ms, "section 5's (weights not kept)"),
        (shipped, "kept in the repository (section 5d)"),
    ):
        if not payload:
            continue
        threshold = payload.get("config", {}).get("error_flag_threshold", 0.02)
        for label, e in MS_DEFAULTS:
            by_n: dict[int, dict[str, dict[str, Any]]] = {}
            for r in payload.get("targets", []):
                if r["estimator"] == e and "n" in r and r["target"] in _MS_MAIN_TARGETS:
                    by_n.setdefault(r["n"], {})[r["target"]] = r
            runs = [r for r in payload.get("runs", []) if r.get("ok") and r["estimator"] == e]
            for n, got in sorted(by_n.items()):
                cells = [
                    _ms_target_cell(got[t]) + (" ✓" if got[t]["met"] else " ✗") if t in got else "—"
                    for t in _MS_MAIN_TARGETS
                ]
                at_n = [r for r in runs if r["n"] == n]
                wrong = _confidently_wrong(at_n, threshold)
                rows.append(
                    [label, f"`{e}`", segmenters, _reader_noise(at_n), n, len(at_n), *cells, wrong]
                )
    if not rows:
        return []
    return [
        "**The command line's defaults against issue 4's targets** (synthetic MS, as they "
        "run: refit bootstrap, bias-aware interval; the paired default only on the "
        "scenarios whose annotators differ; ✓ met, ✗ not; every estimator's rows follow). "
        "The segmenters column says which trainings of the same U-Net recipe were "
        "attributed: section 5's, whose weights were not kept, or those the repository "
        "holds (section 5d), on which the rows can be rerun. "
        "The reading-noise column says how the second reader of each case was drawn for "
        "the paired rows: simulator 1 gave it the observed annotator's own noise (two "
        "readers moved together), which made paired estimates look more precise than two "
        "real readers allow at N = 100 (section 5d); simulator 2 draws each reader's noise "
        "on its own. "
        "The last column counts the runs that showed a wrong number with confidence: an "
        "error above 0.02, no warning, and an interval that misses the truth:",
        "",
        _table(
            [
                "default",
                "variant",
                "segmenters",
                "reading noise of the second reader",
                "N",
                "runs",
                *(_MS_TARGET_NAMES[t] for t in _MS_MAIN_TARGETS),
                "confidently wrong",
            ],
            rows,
        ),
        "",
    ]


def _ms_paired_setup(ms: dict[str, Any]) -> list[str]:
    """The paragraph on the paired variants (``<method>+paired``), if any ran."""
    paired = [e for e in ms["config"]["estimators_run"] if e.endswith("+paired")]
    if not paired:
        return []
    na = ms.get("not_applicable") or {}
    merged = ms.get("merged") or []
    text = (
        "**Paired variants** ("
        + ", ".join(f"`{e}`" for e in paired)
        + "): the same method with paired counterfactual substitution of the annotation "
        "mechanism, as `shiftattr.pipeline` does it: the source is sampled with "
        "`annotate_all=[<target annotator>]` and the target with "
        "`annotate_all=[<source annotator>]` (every case also read by the other side's "
        "annotator; `D`, `X`, `Y` unchanged, so the samples are those of the unpaired runs), "
        "and `attribute` gets `paired={'Y': ('annotator-<target>', 'annotator-<source>')}` "
        "with the callable `metric=adapter.score`. They run only where the annotators differ"
    )
    scen = {s for v in na.values() for s in v.get("scenarios", [])}
    scen |= {
        name
        for name, sc in ms["scenarios"].items()
        if sc["source"]["annotator"] == sc["target"]["annotator"]
    }
    scen = sorted(scen, key=list(ms["scenarios"]).index)
    text += (
        f"; not applicable (recorded as such, not as failures) to {', '.join(scen)}."
        if scen
        else "."
    )
    if merged:
        text += (
            " Merged into the results afterwards (`--merge`: only these runs added, every "
            "other run kept): "
            + "; ".join(
                f"`{m['command']}` ({m['n_runs']} runs"
                + (f", {m['date']}" if m.get("date") else "")
                + (f"; {m['note']}" if m.get("note") else "")
                + ")"
                for m in merged
            )
            + "."
        )
    return [text, "", *_reader_noise_paragraph(ms)]


def _only_sizes(ms: dict[str, Any], estimator: str) -> str:
    """``"N = 1000"`` when ``estimator`` ran at only some of the sample sizes the results
    hold, else ``""``."""
    ran = _sizes_run(ms, estimator)
    if ran >= {r["n"] for r in ms["runs"]}:
        return ""
    return "N = " + ", ".join(map(str, sorted(ran)))


def _sizes_run(ms: dict[str, Any], estimator: str) -> set[int]:
    """The sample sizes at which ``estimator`` ran."""
    return {r["n"] for r in ms["runs"] if r["estimator"] == estimator}


#: The name mark of the extended-image-statistics variants.
_EXT = "+ext"


def _variant_pairs(ok: list[dict[str, Any]], suffix: str) -> list[tuple[str, str]]:
    """``(method, method + suffix)`` for every variant that ran beside its base method.

    A base that is itself an extended-statistics variant (``iw+ext`` for
    ``iw+ext+outputs``, ``mis+ext+outputs`` for ``mis+ext+outputs+refit``) is left to
    the extended-statistics tables."""
    ran = dict.fromkeys(r["estimator"] for r in ok)
    return [
        (e[: -len(suffix)], e)
        for e in ran
        if e.endswith(suffix)
        and e[: -len(suffix)] in ran
        and (suffix == _EXT or _EXT not in e[: -len(suffix)])
    ]


def _ms_paired_comparison(ms: dict[str, Any]) -> list[str]:
    """Paired vs unpaired on the same samples: MAE of Y and over D, X, Y, per scenario."""
    ok = [r for r in ms["runs"] if r.get("ok")]
    pairs = _variant_pairs(ok, "+paired")
    if not pairs:
        return []
    cols = [e for pair in pairs for e in pair]

    def cell(rs: list[dict[str, Any]], e: str, key: str) -> str:
        vals = [r["abs_error"]["Y"] if key == "Y" else r["mae"] for r in rs if r["estimator"] == e]
        return _f(float(np.mean(vals))) if vals else "—"

    rows = []
    scen = [
        s
        for s in ms["scenarios"]
        if any(r["scenario"] == s and r["estimator"] in {p for _, p in pairs} for r in ok)
    ]
    groups = (
        [(s, n) for s in scen for n in ms["config"]["sizes"]]
        + [("all of these", n) for n in ms["config"]["sizes"]]
        + [("all of these", "all")]
    )
    for s, n in groups:
        rs = [
            r
            for r in ok
            if (r["scenario"] == s or (s == "all of these" and r["scenario"] in scen))
            and (n == "all" or r["n"] == n)
        ]
        if not any(r["estimator"] in cols for r in rs):
            continue
        rows.append(
            [s if s != "all of these" else "**all of these**", n]
            + [cell(rs, e, "Y") for e in cols]
            + [cell(rs, e, "all") for e in cols]
        )
    return [
        "**Paired vs unpaired** (same samples; scenarios where the annotators differ). "
        "Mean absolute error over seeds, of the Y value alone and over D, X, Y:",
        "",
        _table(
            ["scenario", "N"] + [f"Y error, `{e}`" for e in cols] + [f"MAE, `{e}`" for e in cols],
            rows,
        ),
        "",
    ]


def _by_statistic(label: str, n: Any, cells: list[tuple[str, ...]]) -> list[Any]:
    """A table row: ``label``, ``n``, then each statistic for every column in turn."""
    return [label, n] + [c[i] for i in range(len(cells[0])) for c in cells]


def _by_statistic_header(statistics: tuple[str, ...], cols: list[str]) -> list[str]:
    """The header of :func:`_by_statistic` rows."""
    return ["scenario", "N"] + [f"{s}, `{e}`" for s in statistics for e in cols]


def _variant_comparison(
    ms: dict[str, Any],
    suffix: str,
    statistics: tuple[str, ...],
    intro: str,
    columns: list[str] | None = None,
) -> list[str]:
    """Every method beside its ``<method><suffix>`` variant, on the same samples.

    Only the (scenario, N, seed) that every column ran count; rows per scenario and N,
    then over all of these per N (when there are several) and in all. Each name in
    ``statistics`` is a key of ``_VARIANT_STATISTICS``. ``columns``: compare these
    estimators instead (those that ran; at least two), ``suffix`` unused.
    """
    ok = [r for r in ms.get("runs", []) if r.get("ok")]
    if columns is not None:
        ran = {r["estimator"] for r in ok}
        cols = [e for e in columns if e in ran]
        if len(cols) < 2:
            return []
    else:
        pairs = _variant_pairs(ok, suffix)
        if not pairs:
            return []
        cols = [e for pair in pairs for e in pair]

    def cell(rs: list[dict[str, Any]]) -> tuple[str, ...]:
        return tuple(_VARIANT_STATISTICS[name](rs) for name in statistics)

    def key(r: dict[str, Any]) -> tuple:
        return r["scenario"], r["n"], r["seed"]

    shared = set.intersection(*({key(r) for r in ok if r["estimator"] == e} for e in cols))
    if not shared:
        return []
    runs = [r for r in ok if key(r) in shared]
    sizes = sorted({k[1] for k in shared})
    groups = [(s, n) for s in ms["scenarios"] for n in sizes]
    groups += [("all of these", n) for n in (sizes if len(sizes) > 1 else [])]
    rows = []
    for s, n in [*groups, ("all of these", "all")]:
        rs = [
            r
            for r in runs
            if (s == "all of these" or r["scenario"] == s) and (n == "all" or r["n"] == n)
        ]
        if rs:
            label = "**all of these**" if s == "all of these" else s
            rows.append(
                _by_statistic(
                    label, n, [cell([r for r in rs if r["estimator"] == e]) for e in cols]
                )
            )
    return [intro, "", _table(_by_statistic_header(statistics, cols), rows), ""]


def _coverage(rs: list[dict[str, Any]]) -> str:
    cov = [c for r in rs for c in r.get("covered", {}).values() if c is not None]
    return _pct(float(np.mean(cov))) if cov else "—"


def _ci_width(rs: list[dict[str, Any]]) -> str:
    width = [hi - lo for r in rs for lo, hi in r["ci"].values() if np.isfinite(hi - lo)]
    return _f(float(np.mean(width)), 2) if width else "—"


def _dominant(rs: list[dict[str, Any]]) -> str:
    dom = [r["dominant_right"] for r in rs if r.get("dominant_right") is not None]
    return _pct(float(np.mean(dom))) if dom else "—"


def _flagged(rs: list[dict[str, Any]], erring: bool) -> str:
    """Runs carrying a warning among those erring by more than the threshold (``erring``)
    or among the others."""
    sel = [r for r in rs if bool(r.get("error_above_threshold")) == erring]
    return f"{sum(bool(r.get('flagged')) for r in sel)} of {len(sel)}"


def _split_unstable(rs: list[dict[str, Any]]) -> str:
    hits = sum(c.startswith("split_unstable") for r in rs for c in r.get("warnings", []))
    return f"{hits} of {sum(len(r['values']) for r in rs)}"


def _split_ratio(rs: list[dict[str, Any]]) -> str:
    """Median s.d. between fold splits over the bootstrap s.e., from the widening factors
    the runs recorded (``sqrt(factor^2 - 1)``); "—" for runs that recorded none."""
    f = [
        v
        for r in rs
        for v in ((r.get("repeats") or {}).get("interval_factor") or {}).values()
        if v is not None and np.isfinite(v)
    ]
    return _f(float(np.median(np.sqrt(np.square(f) - 1.0))), 2) if f else "—"


def _biasaware_coverage(rs: list[dict[str, Any]]) -> str:
    """Coverage of the bias-aware interval rebuilt from what each run recorded (value,
    bootstrap s.e., ``bias_bound``): "—" for runs without a bound."""
    from shiftattr.bias_aware import bias_aware_interval

    rows = [
        (v, r["bias_bound"][m], r["stderr"][m], r["truth"][m])
        for r in rs
        if r.get("bias_bound")
        for m, v in r["values"].items()
    ]
    if not rows:
        return "—"
    value, bound, se, truth = np.array(rows, dtype=float).T
    iv = bias_aware_interval(value, bound, se)
    return _pct(float(np.mean((iv.low <= truth) & (truth <= iv.high))))


def _separated(rs: list[dict[str, Any]]) -> str:
    """Runs whose largest attributed drop has an interval above every other mechanism's
    (``Attribution.dominant_settled``), and how many of those the truth's largest drop
    (a positive one: a separated mechanism in the null scenario counts as wrong) agrees
    with."""
    from shiftattr.results import dominant_separated

    sep = right = 0
    for r in rs:
        if dominant_separated(r["values"], r["ci"]):
            top, truth = max(r["values"], key=r["values"].get), r["truth"]
            sep += 1
            right += truth[top] == max(truth.values()) and truth[top] > 0  # a real drop
    return f"{sep} of {len(rs)} ({right} right)"


def _total_error(rs: list[dict[str, Any]], observed: bool = False) -> str:
    """Root mean square over runs of the values' sum minus the truth's (the whole change's
    error), or with ``observed`` of the change the two samples show (mean source Dice minus
    mean target Dice) minus the truth's: what an estimator that closes on the samples'
    means, as ``mr`` does, carries into its values whatever its regressions."""
    err = [
        (r["source_dice"] - r["target_dice"] if observed else sum(r["values"].values()))
        - sum(r["truth"].values())
        for r in rs
    ]
    return _f(float(np.sqrt(np.mean(np.square(err)))), 2)


#: Issue 4's four targets, as the benchmark names them (the ``tolerance`` variant aside).
_MS_MAIN_TARGETS = tuple(list(_MS_TARGET_NAMES)[:4])


def _ms_closest(ms: dict[str, Any]) -> list[str]:
    """Section 5: the (estimator, N) with estimated ratios that meet at least three of the
    four targets, and which one each misses (none meets all four unless said)."""
    met: dict[tuple[str, int], dict[str, bool]] = {}
    for r in ms.get("targets", []):
        if "n" in r and r["target"] in _MS_MAIN_TARGETS and not _oracle_variant(r["estimator"]):
            met.setdefault((r["estimator"], r["n"]), {})[r["target"]] = bool(r["met"])
    close = [(k, v) for k, v in met.items() if len(v) == 4 and sum(v.values()) >= 3]
    if not close:
        return []
    parts = []
    for (e, n), v in sorted(close, key=lambda kv: (kv[0][1], kv[0][0])):
        missed = [_MS_TARGET_NAMES[t] for t, ok in v.items() if not ok]
        parts.append(
            f"`{e}` at N = {n} (" + (f"misses: {missed[0]}" if missed else "**all four**") + ")"
        )
    return [
        "- Closest to the targets without the simulator's exact ratios (at least three of "
        "the four met at one N; the `+oracle` variants left out, the `+paired` ones "
        "substitute the observed readings of `Y`): " + "; ".join(parts) + "."
    ]


def _oracle_variant(estimator: str) -> bool:
    """Whether ``estimator`` was given any exact ratio (``+oracle`` or ``+oracle-<node>``)."""
    return "+oracle" in estimator


def _ms_observed_change(ms: dict[str, Any], estimator: str) -> list[str]:
    """Section 5: how far the change the two samples show is from the truth's, and how
    closely ``estimator``'s values sum to it (``mr`` closes on the samples' means)."""
    rs = [r for r in ms["runs"] if r.get("ok") and r["estimator"] == estimator]
    sizes = sorted({r["n"] for r in rs})
    if not sizes:
        return []

    def closure(sel: list[dict[str, Any]]) -> float:
        gap = [sum(r["values"].values()) - (r["source_dice"] - r["target_dice"]) for r in sel]
        return float(np.max(np.abs(gap)))

    per_n = "; ".join(
        f"N = {n}: {_total_error([r for r in rs if r['n'] == n], observed=True)}" for n in sizes
    )
    return [
        "The change the two samples show (source mean Dice minus target mean Dice) misses "
        f"the truth's whole change by (rms over the `{estimator}` runs) {per_n}. "
        f"`{estimator}`'s values sum to it to within {_f(closure(rs), 2)}: `mr` closes on "
        "the samples' means, so that sampling error is a floor of its total's error "
        "whatever its regressions and ratios, and it lands on the mechanisms (in `null`, "
        "where nothing shifted, mostly on `Y`). `iw` estimates the target's mean from the "
        "weighted source cases and `mis` from both samples, so neither is bound to it.",
        "",
    ]


#: The statistics a variant comparison can show, each of a column's runs in one cell.
_VARIANT_STATISTICS: dict[str, Callable[[list[dict[str, Any]]], str]] = {
    "MAE": lambda rs: _f(float(np.mean([r["mae"] for r in rs]))),
    "dominant": _dominant,
    "coverage": _coverage,
    "mean CI width": _ci_width,
    "coverage, bias-aware interval": _biasaware_coverage,
    "largest drop separated by the intervals (right)": _separated,
    "flagged of error > 0.02": lambda rs: _flagged(rs, True),
    "flagged of error <= 0.02": lambda rs: _flagged(rs, False),
    "split_unstable of (run, mechanism)": _split_unstable,
    "median split s.d. / bootstrap s.e.": _split_ratio,
    "time": lambda rs: f"{_f(float(np.median([r['seconds'] for r in rs])), 2)} s",
    "total's error (rms)": _total_error,
    "X's mean signed error": lambda rs: _f(
        float(np.mean([r["values"]["X"] - r["truth"]["X"] for r in rs]))
    ),
}


#: The usual statistics of a comparison table plus the bias-aware interval's coverage.
_WITH_BIASAWARE_COVERAGE = (
    "MAE",
    "dominant",
    "coverage",
    "coverage, bias-aware interval",
    "flagged of error > 0.02",
    "time",
)

#: The tables comparing a method with its ``<method><suffix>`` variant on the same
#: samples: suffix -> (statistics, the paragraph introducing the table).
_VARIANT_TABLES: dict[str, tuple[tuple[str, ...], str]] = {
    # Refit vs fixed bootstrap on the same samples and point estimates: CI coverage, width.
    "+refit": (
        ("coverage", "mean CI width", "time"),
        "**Refit vs fixed bootstrap** (the same samples and point estimates; only the "
        "intervals differ: `<method>+refit` refits every ratio estimator, and for `mr` every "
        "regression, in each bootstrap replicate). Over the (scenario, N, seed) where the "
        "refit variant ran: CI coverage of the truth over (run, mechanism), mean CI width "
        "and median time of a run:",
    ),
    # Image ratios with and without the model's outputs, on the same samples.
    "+outputs": (
        ("MAE", "dominant", "coverage"),
        "**The model's outputs in the image ratios** (`<method>+outputs`: both image ratio "
        "estimators get `ImageStatsRatio(extra_features={'X': adapter.output_features})`, "
        "the features `mr`'s regressions see; same samples, folds and bootstrap). Over the "
        "(scenario, N, seed) every column ran: MAE over D, X, Y, dominant mechanism right, "
        "CI coverage:",
    ),
    # One fold assignment vs several (``n_repeats``), on the same samples.
    "+repeats": (
        (
            "MAE",
            "coverage",
            "flagged of error > 0.02",
            "split_unstable of (run, mechanism)",
            "median split s.d. / bootstrap s.e.",
            "time",
        ),
        "**Repeated cross-fitting** (`<method>+repeats`: `attribute(n_repeats=5)`, five fold "
        "assignments, the first the plain run's; values averaged, the fixed-bootstrap "
        "interval widened by their spread, `split_unstable` when the spread exceeds the "
        "bootstrap standard error). Over the (scenario, N, seed) every column ran: MAE over "
        "D, X, Y, CI coverage, runs erring by more than 0.02 that carried a warning, "
        "`split_unstable` warnings, the median ratio of the s.d. between splits to the "
        "bootstrap s.e. (from the widening factor each run recorded; the first N = 300 "
        "runs predate that record), median time of a run:",
    ),
    # The bootstrap interval vs the bias-aware one, on the same point estimates.
    "+biasaware": (
        (
            "coverage",
            "mean CI width",
            "largest drop separated by the intervals (right)",
            "flagged of error > 0.02",
            "time",
        ),
        "**Bias-aware intervals** (`<method>+biasaware`: `attribute(interval='bias_aware')`, "
        "the same samples, folds and point estimates; the interval `value ± se * cv(b / se)` "
        "also covers a bias up to `b`, the distance to importance weighting with the same "
        "ratios). Every other run reports the bootstrap interval (`interval='bootstrap'`, "
        "passed explicitly since the library's default for `mr` became the bias-aware one: "
        "the `mr+biasaware` rows are what `attribute(method='mr')` reports; "
        "`regression` keeps the bootstrap interval by default). Over the "
        "(scenario, N, seed) every column ran: CI coverage of the truth over (run, "
        "mechanism), mean CI width, runs erring by more than 0.02 that carried a warning, "
        "median time of a run:",
    ),
    # Nested regressions fitted on one environment vs pooled over both.
    "+pooled": (
        (
            "MAE",
            "dominant",
            "coverage",
            "coverage, bias-aware interval",
            "largest drop separated by the intervals (right)",
            "flagged of error > 0.02",
            "time",
        ),
        "**Pooled regressions** (`<method>+pooled`: `attribute(pooled_regressions=True)`, "
        "every nested regression fitted on both environments' cases, the other one's "
        "weighted by the conditional ratio of the regression's level; the same samples, "
        "folds and ratios, bootstrap interval). Over the (scenario, N, seed) every column "
        "ran: MAE over D, X, Y, dominant mechanism right, CI coverage, the coverage of the "
        "bias-aware interval rebuilt from each run's value, bootstrap s.e. and recorded "
        "bias bound (the interval `attribute` reports by default for `mr`; the plain `mr` "
        "runs recorded no bound, the `mr+biasaware` table has theirs), runs erring by more "
        "than 0.02 that carried a warning, median time of a run:",
    ),
    # Regressions on the model's output summaries vs a CNN on the voxels.
    "+cnn": (
        _WITH_BIASAWARE_COVERAGE,
        "**CNN regressions** (`mr+pooled+cnn`: `attribute(features={'X': raw_features('X')}, "
        "regressor=CNNRegressor(image_shape))`, the nested regressions reading the image's "
        "voxels with a small convolutional network instead of the model's output summaries; "
        "the same samples, folds, ratios and pooling as `mr+pooled`, bootstrap interval). "
        "Over the (scenario, N, seed) both ran: MAE over D, X, Y, dominant mechanism right, "
        "CI coverage, the coverage of the bias-aware interval rebuilt from each run's bound, "
        "runs erring by more than 0.02 that carried a warning, median time of a run:",
    ),
    # Estimated ratios vs the simulator's true ones, on the same samples.
    "+oracle": (
        (
            "MAE",
            "dominant",
            "coverage",
            "flagged of error > 0.02",
            "time",
        ),
        "**Oracle ratios** (`<method>+oracle`: `attribute(known_ratios=...)` with every "
        "mechanism's true log-ratio from `SyntheticMS.true_log_ratio`, the densities of the "
        "simulator's hidden per-case draws, instead of estimated ratios; the same samples, "
        "folds and regressions, bootstrap interval). The difference to `<method>` is the "
        "ratio estimators' share of the error; what remains is the estimator's own "
        "(weight variance, regression error). Over the (scenario, N, seed) every column "
        "ran: MAE over D, X, Y, dominant mechanism right, CI coverage, runs erring by more "
        "than 0.02 that carried a warning, median time of a run:",
    ),
    # Conditional ratios as the difference of two classifiers vs one offset model.
    "+offset": (
        ("MAE", "dominant", "coverage", "flagged of error > 0.02", "time"),
        "**Offset conditional ratios** (`<method>+offset`: `attribute(conditional_ratios="
        "'offset')`, each mechanism's conditional ratio one penalised logistic model on the "
        "joint set's features whose logit starts from the parents' cross-fitted log-ratio, "
        "instead of the joint classifier's log-ratio minus the parents'; the same samples "
        "and folds). Over the (scenario, N, seed) every column ran: MAE over D, X, Y, "
        "dominant mechanism right, CI coverage (`mr+pooled` bootstrap interval), runs "
        "erring by more than 0.02 that carried a warning, median time of a run:",
    ),
    # Basic vs extended image statistics in the image ratio estimators.
    "+ext": (
        ("MAE", "dominant", "coverage", "flagged of error > 0.02", "time"),
        "**Extended image statistics** (`<method>+ext`: both image ratio estimators "
        "`ImageStatsRatio(statistics='extended')`, the basic statistics plus image-quality "
        "measures: tissue contrasts, SNR, non-uniformity, sharpness per axis, lesion "
        "contrast-to-noise, with linear-logistic candidates beside the quadratic ones and "
        "gradient boosting; the same samples and folds). Over the (scenario, N, seed) every "
        "column ran: MAE over D, X, Y, dominant mechanism right, CI coverage (`mr+pooled` "
        "bootstrap interval), runs erring by more than 0.02 that carried a warning, median "
        "time of a run:",
    ),
    # Importance weighting alone vs cross-checked by the regression estimate.
    "+check": (
        ("MAE", "flagged of error > 0.02", "flagged of error <= 0.02", "time"),
        "**Cross-checked importance weighting** (`iw+check`: `attribute(cross_check=True)`, "
        "the plain regression estimate fitted beside `iw` and `methods_disagree` raised "
        "where the two differ beyond the bootstrap interval of their difference; the same "
        "samples, folds, ratios and values). Over the (scenario, N, seed) both ran: MAE over "
        "D, X, Y (identical by construction), runs erring by more than 0.02 that carried a "
        "warning, runs erring by at most 0.02 that carried one (false alarms), median time "
        "of a run:",
    ),
}


#: Tables comparing named estimators on the same samples: name -> (columns, intro).
_COLUMN_TABLES: dict[str, tuple[list[str], str]] = {
    # Balance-heuristic weighting of both samples beside source-only weighting and the
    # library's mr on images.
    "mis": (
        ["iw", "mis", "mr+pooled"],
        "**Both samples weighted** (`mis`: `attribute(method='mis')`, the same kind of ratio "
        "estimators fitted for D, X and Y, weighting the source and the target cases together "
        "with balance-heuristic weights, `p_I / (n_s p_s + n_t p_t)`; `iw` weights the source "
        "cases alone; `mr+pooled` is what `method='mr'` does here by default). Over the "
        "(scenario, N, seed) every column ran: MAE over D, X, Y, dominant mechanism right, CI "
        "coverage, runs erring by more than 0.02 that carried a warning, median time of a run:",
    ),
    # The model's output summaries in the ratio estimators, with basic or extended statistics.
    "ext+outputs": (
        ["iw+outputs", "iw+ext+outputs", "mis+outputs", "mis+ext+outputs"],
        "**Extended statistics with the model's outputs** (`<method>+ext+outputs` beside "
        "`<method>+outputs`: both image ratio estimators also see the model's output "
        "summaries, `extra_features={'X': adapter.output_features}`, beside the basic or the "
        "extended statistics). Over the (scenario, N, seed) every column ran: MAE over D, X, "
        "Y, dominant mechanism right, CI coverage, runs erring by more than 0.02 that carried "
        "a warning, median time of a run:",
    ),
    # Offset conditional ratios on the extended statistics.
    "ext+offset": (
        ["iw+ext", "iw+ext+offset", "mis+ext", "mis+ext+offset"],
        "**Offset conditional ratios with extended statistics** (`<method>+ext+offset` "
        "beside `<method>+ext`: `ImageStatsRatio(statistics='extended')` and "
        "`attribute(conditional_ratios='offset')`, each conditional ratio one penalised "
        "logistic model on the joint set's statistics starting from the parents' "
        "log-ratio). Over the (scenario, N, seed) every column ran: MAE over D, X, Y, "
        "dominant mechanism right, CI coverage, runs erring by more than 0.02 that carried "
        "a warning, median time of a run:",
    ),
    # The image's contrast at the mask in the annotation ratio, with extended statistics.
    "ext+mic": (
        ["iw+ext", "iw+ext+mic", "mis+ext", "mis+ext+mic"],
        "**Mask-image contrast with extended statistics** (`<method>+ext+mic` beside "
        "`<method>+ext`: the mask statistics also hold the image's contrast inside, at and "
        "around the mask, `ImageStatsRatio(statistics='extended', mask_image_contrast=True)`; "
        "with the basic statistics that contrast carried the scanner's shift into the "
        "annotation mechanism). Over the (scenario, N, seed) every column ran: MAE over D, "
        "X, Y, dominant mechanism right, CI coverage, runs erring by more than 0.02 that "
        "carried a warning, median time of a run:",
    ),
    # The refit bootstrap on the extended statistics: what attribute() reports by default.
    "ext+refit": (
        [
            "iw+ext",
            "iw+ext+refit",
            "mis+ext",
            "mis+ext+refit",
            "mis+ext+outputs",
            "mis+ext+outputs+refit",
            "iw+ext+outputs",
            "iw+ext+outputs+refit",
        ],
        "**Refit vs fixed bootstrap with extended statistics** (`<method>+ext+refit` beside "
        "`<method>+ext`: the same samples, folds and point estimates; every bootstrap "
        "replicate refits every ratio estimator, as `attribute()` does by default, "
        "`bootstrap='refit'`, and the pipeline and the command line with the image "
        "statistics since 2026-11-30, `attribution.bootstrap = 'auto'`). Over the "
        "(scenario, N, seed) every column ran: CI coverage of the truth over (run, "
        "mechanism); the coverage of the bias-aware interval (`interval='bias_aware'`) "
        "rebuilt from each run's recorded bound and standard error, for the runs that "
        "record one (`mis`; `iw` has none, its bound is the distance to itself); mean CI "
        "width, runs erring by more than 0.02 that carried a warning "
        "(the fixed-bootstrap runs predate `shift_not_separated`), median time of a run "
        "(`iw+ext+refit` and `mis+ext+refit` were run before the image statistics were "
        "cached across replicates, the `+outputs+refit` runs after; `iw+ext+outputs+refit` "
        "is what the command line ran by default from 2026-11-30 until that evening, "
        "`mis+ext+outputs+refit` with the bias-aware interval what it runs since):",
    ),
    # Features in the direction the metric varies: a negative result, kept as a record.
    "ext+outputs+prognostic": (
        [
            "iw+ext+outputs",
            "iw+ext+outputs+selfdice",
            "iw+ext+outputs+metric",
            "iw+ext+outputs+selfdice+metric",
            "mis+ext+outputs",
            "mis+ext+outputs+selfdice",
            "mis+ext+outputs+metric",
            "mis+ext+outputs+selfdice+metric",
        ],
        "**Features in the metric's direction** (opt-in variants of `<method>+ext+outputs`, "
        "same samples and folds: `+selfdice`, the image's features also hold the model's Dice "
        "against its own probabilities, a label-free guess of the Dice; `+metric`, the "
        "annotation ratio's joint set also sees the per-case Dice, "
        "`extra_features={'Y': adapter.score}`). The question: do the weights under-correct "
        "because the classifiers do not see the direction the Dice varies in? Not here. "
        "`+selfdice` changed little; `+metric` helped some annotation shifts and put "
        "spurious values on `Y` in scanner shifts, because the parents' statistics do not "
        "capture the whole scanner shift and the Dice carries what they miss into the "
        "annotation's conditional ratio. Over the (scenario, N, seed) every column ran: MAE "
        "over D, X, Y, CI coverage (fixed bootstrap), runs erring by more than 0.02 that "
        "carried a warning:",
    ),
    # The image's contrast at the predicted lesions among the image ratios' features.
    "ext+outputs+contrast": (
        ["mis+ext+outputs+refit+biasaware", "mis+ext+outputs+contrast"],
        "**Contrast at the predicted lesions** (opt-in `mis+ext+outputs+contrast`: both image "
        "ratio estimators also see the benchmark's `lesion_contrast`, the image's "
        "contrast against the surrounding tissue and its edge sharpness per axis at the "
        "model's predicted lesions, beside the model's output summaries; fixed bootstrap. "
        "Beside the command line's unpaired default `mis+ext+outputs+refit+biasaware` at "
        "N = 100 and 300, and beside `mis+ext+outputs`, its point estimates, at N = 1000 "
        "(the table after this one); same samples and folds). The "
        "question: lesion contrast and slice blur are the scanner parameters the image "
        "features recover least (section 5e), and the scanner's value comes out short; do "
        "features measured where the lesions are close that gap? In part: the signed error of "
        "`X` shrinks in every scanner-only scenario at every N, and at N = 1000 the MAE "
        "falls in most scenarios; at N = 100 and 300 it does not, `all_three` and "
        "`little_overlap` losing there what the scanner shifts gain (as a scratch run at "
        "N = 300 had found before, see `docs/estimators.md`). Opt-in, not in the "
        "library. Over the (scenario, N, seed) both "
        "ran: MAE over D, X, Y, dominant mechanism, the mean signed error of `X` "
        "(estimate minus truth; negative: the scanner's share comes out short):",
    ),
    "ext+outputs+contrast-1000": (
        ["mis+ext+outputs", "mis+ext+outputs+contrast"],
        "The same at N = 1000, beside `mis+ext+outputs` (the default's point estimates):",
    ),
    # Which estimated ratio costs how much: the true ratio of one mechanism at a time.
    "oracle-node": (
        [
            "mis+ext+outputs",
            "mis+ext+outputs+oracle-D",
            "mis+ext+outputs+oracle-X",
            "mis+ext+outputs+oracle-Y",
            "mis+oracle",
        ],
        "**Which ratio costs how much** (opt-in `mis+ext+outputs+oracle-<node>`: the true "
        "ratio of that mechanism from `SyntheticMS.true_log_ratio`, the other two estimated "
        "as in `mis+ext+outputs`; `mis+oracle`: all three true). The MAE a column gains over "
        "`mis+ext+outputs` is what that mechanism's estimated ratio costs. Over the "
        "(scenario, N, seed) every column ran: MAE over D, X, Y, dominant mechanism right, CI "
        "coverage (fixed bootstrap):",
    ),
    # MR with the model's outputs in its ratios, against the iw the command line ran.
    "mr+outputs": (
        ["iw+ext+outputs", "mr+pooled+ext", "mr+pooled+ext+outputs", "mis+ext+outputs"],
        "**MR with the outputs in its ratios, and what the values sum to** "
        "(`mr+pooled+ext+outputs`: `mr+pooled+ext` whose image ratio estimators also see the "
        "model's output summaries, as `iw+ext+outputs`'s do; its regressions read them "
        "already). Over the (scenario, N, seed) every column ran: MAE over D, X, Y, "
        "dominant mechanism right, CI coverage (fixed bootstrap), and the root mean square "
        "error of the values' sum against the truth's whole change:",
    ),
    # The CNN discriminator against the image statistics.
    "cnnratio": (
        ["iw", "iw+cnnratio", "mis", "mis+cnnratio", "mis+ext+outputs"],
        "**CNN discriminators against the image statistics** (opt-in `<method>+cnnratio`: "
        "the image ratios of `X` and `Y` from `CNNDiscriminator` with the command line's "
        "`image_estimator = 'cnn'` settings, `DiscriminatorConfig`'s defaults; beside the "
        "basic statistics `<method>` and the command line's default with the statistics, "
        "`mis+ext+outputs`). Over the (scenario, N, seed) every column ran: MAE over D, X, Y, "
        "dominant mechanism right, CI coverage (fixed bootstrap), the coverage of the bias-aware "
        "interval rebuilt from each run's recorded bound and standard error (`mis` only), runs "
        "erring by more than 0.02 that carried a warning, median time of a run:",
    ),
    # MR with every term over both samples, beside MR over each environment's own cases.
    "mr+both": (
        [
            "iw+ext+outputs",
            "mis+ext+outputs",
            "mr+pooled+ext",
            "mr+pooled+ext+both",
            "mr+pooled+ext+outputs",
            "mr+pooled+ext+outputs+both",
        ],
        "**MR over both samples** (opt-in `mr+...+both`: `attribute(both_samples=True)`, "
        "every term of the multiply-robust sum taken over the source and the target cases "
        "together with balance-heuristic weights, beside the same runs over each "
        "environment's own cases; the same samples, folds, ratios and regressions). Over the "
        "(scenario, N, seed) every column ran: MAE over D, X, Y, dominant mechanism right, CI "
        "coverage (fixed bootstrap), the coverage of the bias-aware interval rebuilt from "
        "each run's recorded bound (for `+both`, the larger distance to `iw` and to `mr` over "
        "own cases) and standard error, runs erring by more than 0.02 that carried a warning, "
        "median time of a run:",
    ),
    "mr+both+paired": (
        [
            "iw+ext+outputs+paired",
            "mr+paired",
            "mr+pooled+ext+outputs+paired",
            "mr+pooled+ext+outputs+both+paired",
            "mr+pooled+ext+outputs+both",
        ],
        "**MR over both samples with paired annotations** (opt-in "
        "`mr+pooled+ext+outputs+both+paired`: `D` and `X` averaged over both samples, `Y` "
        "substituted by the other annotator's reading of the same images; beside the same "
        "runs over own cases, `mr+pooled+ext+outputs+paired`, the first paired variant, "
        "`mr+paired` with the basic statistics and unpooled regressions, and the unpaired "
        "`mr+pooled+ext+outputs+both`, and `iw+ext+outputs+paired`, what the command line "
        "ran with paired annotations before; only the scenarios whose annotators differ):",
    ),
    # What the command line reports, refit bootstrap and bias-aware interval included.
    "defaults": (
        ["mis+ext+outputs", "mis+ext+outputs+refit+biasaware"],
        "**The command line's default without paired annotations, as it runs** (opt-in "
        "`mis+ext+outputs+refit+biasaware`: `attribution.method = 'auto'` resolves to `mis`, "
        "the extended statistics with the model's outputs, the refit bootstrap and the "
        "bias-aware interval, so `coverage` here is that interval's; beside "
        "`mis+ext+outputs`, the same point estimates with the fixed bootstrap's interval. "
        "The benchmark's {n_folds} folds and {n_bootstrap} replicates; the command line's "
        "are 5 and 200):",
    ),
    "defaults+paired": (
        ["mr+pooled+ext+outputs+both+paired", "mr+pooled+ext+outputs+both+refit+biasaware+paired"],
        "**The command line's default with paired annotations, as it runs** (opt-in "
        "`mr+pooled+ext+outputs+both+refit+biasaware+paired`: `paired = ['Y']` makes "
        "`method = 'auto'` resolve to `mr` over both samples with the outputs in its ratios; "
        "the refit bootstrap and the bias-aware interval, so `coverage` here is that "
        "interval's; beside the same point estimates with the fixed bootstrap's interval; "
        "{n_folds} folds and {n_bootstrap} replicates; only the scenarios whose annotators "
        "differ):",
    ),
    "mr+both+oracle": (
        ["iw+oracle", "mis+oracle", "mr+oracle", "mr+both+oracle"],
        "**MR over both samples with the true ratios** (opt-in `mr+both+oracle`: `mr+oracle` "
        "with `both_samples=True`; basic image statistics in the regressions' features, "
        "unpooled regressions, as `mr+oracle`):",
    ),
    # The same with more cases: mis only (iw+cnnratio ran at N = 300 only).
    "cnnratio-mis": (
        ["mis", "mis+cnnratio", "mis+ext+outputs"],
        "**CNN discriminators with `mis` at N = 300 and 1000** (as above, `mis` only: "
        "`mis+cnnratio` also ran at N = 1000, on seeds 0 and 1):",
    ),
}

#: What the default tables show: the coverage column is the interval each run reports.
_DEFAULTS_STATISTICS = (
    "MAE",
    "dominant",
    "coverage",
    "mean CI width",
    "flagged of error > 0.02",
    "time",
)

#: The statistics of a ``_COLUMN_TABLES`` table when they are not the usual ones.
_COLUMN_TABLE_STATISTICS: dict[str, tuple[str, ...]] = {
    "ext+refit": (
        "coverage",
        "coverage, bias-aware interval",
        "mean CI width",
        "flagged of error > 0.02",
        "time",
    ),
    "ext+outputs+prognostic": ("MAE", "coverage", "flagged of error > 0.02"),
    "ext+outputs+contrast": ("MAE", "dominant", "X's mean signed error"),
    "ext+outputs+contrast-1000": ("MAE", "dominant", "X's mean signed error"),
    "oracle-node": ("MAE", "dominant", "coverage"),
    "mr+outputs": (
        "MAE",
        "dominant",
        "coverage",
        "total's error (rms)",
    ),
    "cnnratio": _WITH_BIASAWARE_COVERAGE,
    "cnnratio-mis": _WITH_BIASAWARE_COVERAGE,
    "mr+both": _WITH_BIASAWARE_COVERAGE,
    "mr+both+oracle": _WITH_BIASAWARE_COVERAGE,
    "mr+both+paired": _WITH_BIASAWARE_COVERAGE,
    "defaults": _DEFAULTS_STATISTICS,
    "defaults+paired": _DEFAULTS_STATISTICS,
}


def _ms_column_table(ms: dict[str, Any], name: str) -> list[str]:
    """The estimators of ``_COLUMN_TABLES[name]`` side by side on the same samples."""
    columns, intro = _COLUMN_TABLES[name]
    for key in ("n_folds", "n_bootstrap"):  # the settings the runs used, where an intro names them
        intro = intro.replace("{" + key + "}", str(ms["config"].get(key, "?")))
    stats = _COLUMN_TABLE_STATISTICS.get(
        name, ("MAE", "dominant", "coverage", "flagged of error > 0.02", "time")
    )
    return _variant_comparison(ms, "", stats, intro, columns=columns)


def _ms_variant_table(ms: dict[str, Any], suffix: str) -> list[str]:
    """The comparison table of the ``<method><suffix>`` variants (see ``_VARIANT_TABLES``)."""
    statistics, intro = _VARIANT_TABLES[suffix]
    return _variant_comparison(ms, suffix, statistics, intro)


#: What the MR variants of the MR-vs-IW targets are in the library's terms: since
#: 2026-11-30 ``attribute(method="mr")`` pools its regressions on images by default.
_MR_VARIANT_NOTES = {
    "mr": " (regressions unpooled: the default before 2026-11-30)",
    "mr+pooled": " (what `method='mr'` does on images by default since 2026-11-30, "
    "`pooled_regressions='auto'`; basic image statistics)",
    "mr+pooled+ext": " (pooled regressions and extended image statistics: both "
    "estimators as the library runs them by default since 2026-11-30)",
}

#: The same for a (MR, IW) pair whose IW side needs saying too.
_MR_PAIR_NOTES = {
    ("mr+pooled+ext", "iw+ext+outputs"): " (the library's `method='mr'` on images; against "
    "`iw` as the command line ran it from 2026-11-30, with the model's outputs in the "
    "image ratios, until `mis` replaced it that evening)",
    ("mr+pooled+ext+outputs", "iw+ext+outputs"): " (`method='mr'` on images with the "
    "model's outputs in its image ratios too, as the command line's `iw` has them; opt-in)",
}


def _ratio_interval(row: dict[str, Any]) -> str:
    """`` (95 % over seeds: lo–hi)`` of a ``mr_vs_iw`` row, "" where not recorded."""
    if not row.get("ratio_interval"):
        return ""
    lo, hi = row["ratio_interval"]
    return f" (95 % over seeds: {_f(lo, 3)}–{_f(hi, 3)})"


def _ms_mr_vs_iw(ms: dict[str, Any], label: str = "Synthetic MS") -> list[list[str]]:
    """Targets rows: IW's MAE over MR's (``mr_vs_iw`` of the benchmark's JSON)."""
    return [
        [
            f"{label}, N = {r['n']}: `{r['mr']}`"
            f"{_MR_PAIR_NOTES.get((r['mr'], r['iw']), _MR_VARIANT_NOTES.get(r['mr'], ''))} MAE "
            f"at least {r['target_ratio']:g}× lower than `{r['iw']}`'s",
            f"{_f(r['ratio'], 3)}×{_ratio_interval(r)} ({r['n_runs']} runs each)",
            _yes(r["met"]),
        ]
        for r in ms.get("mr_vs_iw", [])
    ]


def _point_estimate_sentence(
    seeds: list[int], counts: dict[str, Any], cells: list[dict[str, Any]], key: str
) -> str:
    """Section 6: how often the point estimate alone (no bootstrap) took a tenth of
    DoWhy MR's time, with the per-cell ratios under ``key`` ("" if it did not run)."""
    if not counts.get("cells_with_point_estimate"):
        return ""
    return (
        "; the point estimate alone (`n_bootstrap=0`, as DoWhy computes no intervals; seeds "
        f"{seeds}) is within 1/10 of DoWhy MR's time in "
        f"{counts.get('cells_time_met_point_estimate')} of "
        f"{counts.get('cells_with_point_estimate')} cells: time ratios "
        + "; ".join(f"{c['scm']} N={c['n']} {_f(c[key], 2)}" for c in cells if key in c)
    )


#: The synthetic-MS run at the simulator's default volume (32³), written by
#: ``bench_synthetic_ms.py --shape 32 ... --out <folder>`` and copied here.
MS32_NAME = "synthetic_ms_32"


def _ms_beside(
    extra: dict[str, Any], ms: dict[str, Any] | None, name: str, about: str, ref_label: str
) -> list[str]:
    """The lines of a synthetic-MS results file ``results/<name>.json`` stored beside
    section 5's: how it ran (then ``about``) with its merges, the truth table, the
    estimator table (each estimator beside section 5's runs of the same estimator and N,
    in column ``ref_label``) and IW's MAE over MR's."""
    cfg = extra["config"]
    intro = (
        f"{_run(extra)}: `{extra.get('command')}` ({_f(extra.get('seconds'), 3)} s; "
        f"written to a scratch folder and copied to `results/{name}.json`). "
        f"{len(extra['scenarios'])} scenarios, N = {', '.join(map(str, cfg['sizes']))}, "
        f"seeds {cfg['seeds']}, {cfg['n_folds']} folds, {cfg['n_bootstrap']} "
        f"fixed-bootstrap replicates, {'×'.join(map(str, cfg['shape']))} volumes; truth to "
        f"a Monte-Carlo s.e. of {cfg['truth_se_target']} Dice or {_f(cfg['truth_n_max'])} "
        f"cases. {about}"
    )
    sizes = cfg["sizes"]
    n = sizes[0] if len(sizes) == 1 else None
    by_ref = {
        (r["estimator"], r.get("n")): r for r in (ms or {}).get("overall", []) if r.get("n_ok")
    }
    rows = []
    for r in extra["overall"]:  # per (estimator, N); the rows over all sizes are left out
        if not r.get("n_ok") or "n" not in r or (n is not None and r["n"] != n):
            continue
        ref = by_ref.get((r["estimator"], r.get("n")))
        rows.append(
            [
                f"`{r['estimator']}`",
                str(r.get("n")),
                str(r["n_ok"]),
                f"{_f(r['mae_mean'], 3)} ± {_f(r['mae_sd'], 2)}",
                _pct(r["dominant_rate"]),
                _pct(r["coverage"]),
                _pct(r["flagged_when_error_above"]),
                _pct(r["flagged_when_error_below"]),
                f"{_f(r['seconds_median'], 3 if r['seconds_median'] >= 100 else 2)} s",
                "—"
                if ref is None
                else f"{_f(ref['mae_mean'], 3)}; {_pct(ref['dominant_rate'])}; "
                f"{_pct(ref['coverage'])}",
            ]
        )
    truths = [
        [
            name,
            ", ".join(sc["shifted"]) or "none",
            "; ".join(
                f"{m} {sc['truth']['values'][m]:+.3f} ± {sc['truth']['stderr'][m]:.3f}"
                for m in ("D", "X", "Y")
            ),
            f"{_f(sc['truth']['source_metric'], 3)} → {_f(sc['truth']['target_metric'], 3)}",
        ]
        for name, sc in extra["scenarios"].items()
    ]
    ratio = "; ".join(
        f"`{r['mr']}` vs `{r['iw']}` at N = {r['n']}: {_f(r['ratio'], 3)}×"
        f"{_ratio_interval(r)} ({r['n_runs']} runs each)"
        for r in extra.get("mr_vs_iw", [])
    )
    merged = "".join(
        f" Merged into these results: `{mg['command']}` ({mg['n_runs']} runs, {mg['date']}"
        + (f"; {mg['note']}" if mg.get("note") else "")
        + ")."
        for mg in extra.get("merged", [])
    )
    return [
        intro + merged,
        "",
        _table(["scenario", "shifted", "truth ± MC s.e.", "Dice source → target"], truths),
        "",
        _table(
            [
                "estimator",
                "N",
                "runs",
                "MAE ± sd",
                "dominant right",
                "95 % CI covers",
                "flagged (error > 0.02)",
                "false alarms",
                "median time",
                ref_label,
            ],
            rows,
        ),
        "",
        f"IW's MAE over MR's: {ratio}." if ratio else "",
        "",
    ]


def _synthetic_ms_32(ms32: dict[str, Any] | None, ms: dict[str, Any] | None) -> str:
    """Section 5b: the same targets at 32³, beside section 5's 16³ runs at the same N."""
    if not ms32 or "overall" not in ms32:
        return ""
    cfg = ms32["config"]
    shape = "×".join(map(str, cfg["shape"]))
    shape16 = "×".join(map(str, (ms or {}).get("config", {}).get("shape", ["?"])))
    return "\n".join(
        [
            f"### 5b. The same at {shape} (the simulator's default volume)",
            "",
            *_ms_beside(
                ms32,
                ms,
                MS32_NAME,
                "One U-Net per source center, trained as in section 5 but on these volumes. "
                "`mr` has unpooled regressions, `mr+pooled` is what `method='mr'` does on "
                "images by default; both report the bootstrap interval here.",
                f"{shape16}, same N: MAE; dominant; coverage",
            ),
        ]
    )


#: The synthetic-MS runs on the segmenters whose weights the repository holds
#: (``benchmarks/results/cache/``), written by ``bench_synthetic_ms.py ... --out <folder>``
#: and copied here: where every new 16³ variant is measured.
MS_SHIPPED_NAME = "synthetic_ms_shipped"


def _weights(payload: dict[str, Any] | None) -> str:
    per = ((payload or {}).get("model") or {}).get("per_center") or {}
    return ", ".join(f"centre {c} `{m.get('weights_sha256_16')}`" for c, m in sorted(per.items()))


def _synthetic_ms_shipped(extra: dict[str, Any] | None, ms: dict[str, Any] | None) -> str:
    """Section 5d: runs on the segmenters the repository holds, beside section 5's runs
    (made on other weights of the same training recipe) of the same estimator and N."""
    if not extra or "overall" not in extra:
        return ""
    cfg = extra["config"]
    shape = "×".join(map(str, cfg["shape"]))
    return "\n".join(
        [
            "### 5d. Synthetic MS on the segmenters the repository holds",
            "",
            "Section 5's runs were made on U-Nets whose weights were cached but not kept "
            f"({_weights(ms) or 'not recorded'}). Training them again with the same recipe "
            "and seeds on another CPU generation gives other weights, so those runs cannot "
            "be extended "
            "from a fresh checkout. The weights of these runs are in the repository "
            f"(`benchmarks/results/cache/`, {_weights(extra)}); every new {shape} variant "
            "is measured here, on truths recomputed for these models, beside the baselines "
            "it is compared with.",
            "",
            *_reader_noise_paragraph(extra),
            *_ms_beside(
                extra,
                ms,
                MS_SHIPPED_NAME,
                f"The estimator names are section 5's. Machine: {_machine(extra)}",
                "section 5 (other weights), same N: MAE; dominant; coverage",
            ),
            *_ms_column_table(extra, "ext+outputs+contrast"),
            *_ms_column_table(extra, "ext+outputs+contrast-1000"),
        ]
    )


#: What the acquisition ratio's features see of a scanner shift, written by
#: ``bench_ratio_information.py``.
RATIO_INFORMATION_NAME = "ratio_information"

#: The weights of ``bench_ratio_information.py``, as the report names them.
_RATIO_WEIGHTS = {
    "features": "estimated from the ratio's features",
    "balanced": "the same, raised to the balancing exponent",
    "latent": "same classifier on the hidden log parameters",
    "true": "the simulator's true ratio",
}


def _ratio_information(ri: dict[str, Any] | None) -> str:
    """Section 5e: how much of each hidden acquisition parameter the acquisition ratio's
    features recover, and what the weights built on them miss of the Dice change."""
    if not ri or not ri.get("summary"):
        return ""
    cfg = ri["config"]
    summary = ri["summary"]
    names = sorted(summary[0]["parameters"])

    def cell(p: dict[str, Any]) -> str:
        return (
            f"{_f(p['r2'], 2)} ({_f(p.get('r2_within'), 2)}); {_f(p['corr_metric'], 2)}; "
            f"{_f(p['shift'], 2)}"
        )

    param_rows = [[f"`{k}`"] + [cell(row["parameters"][k]) for row in summary] for k in names]
    weight_rows = [
        [
            row["scenario"],
            f"{_f(row['source_metric'], 3)} → {_f(row['target_metric'], 3)}",
            label,
            f"{row['weights'][w]['gap']:+.4f}"
            + (
                f" ± {row['weights'][w]['gap_se']:.4f}"
                if row["weights"][w]["gap_se"] is not None
                else ""
            ),
            _f(row["weights"][w]["corr_true"], 2),
            _f(row["weights"][w]["slope_true"], 2),
            _pct(row["weights"][w]["ess"]),
        ]
        for row in summary
        for w, label in _RATIO_WEIGHTS.items()
        if w in row["weights"]
    ]
    alphas = "; ".join(f"{row['scenario']} {_f(row['alpha_balance'], 3)}" for row in summary)
    return "\n".join(
        [
            "### 5e. What the acquisition ratio sees of a scanner shift",
            "",
            f"{_run(ri, mode=False)}: `{ri['command'].strip()}` ({_f(ri['seconds'], 3)} s). "
            "Machine: "
            f"{_machine(ri)} The scanner-only scenarios of the synthetic-MS benchmark, on "
            "section 5d's segmenters and on the samples the benchmark draws for the same "
            f"scenario, N and seed (N = {cfg['n']} per environment, seeds {cfg['seeds']}, "
            f"{cfg['n_folds']} folds). The features are those the command line's image "
            "ratio uses: the extended image statistics and the model's output summaries. "
            "Per hidden acquisition parameter (its log, drawn per case by the simulator), "
            "per scenario: the cross-validated R² with which the features recover it, over "
            "both environments' cases pooled (which also credits telling the environments "
            "apart) and, in brackets, within each environment (averaged); its correlation "
            "with the model's Dice in the source; and how far the scanner moves it "
            "(difference of means over the root mean of the two variances). Means over "
            "seeds:",
            "",
            _table(
                [
                    "parameter",
                    *(f"{row['scenario']}: R² (within); corr with Dice; shift" for row in summary),
                ],
                param_rows,
            ),
            "",
            "What importance weighting with each set of weights misses of the Dice change "
            "(the source's Dice weighted to the target minus the target's mean Dice; mean ± "
            "s.e. over seeds), and how the log-ratio follows the simulator's true one "
            "(correlation; slope of a regression on it; the true ratio also weighs noise "
            "the image cannot reveal, so even ideal observed-data weights have a slope "
            "below 1):",
            "",
            _table(
                [
                    "scenario",
                    "Dice source → target",
                    "weights",
                    "transport gap",
                    "corr with true",
                    "slope",
                    "ESS",
                ],
                weight_rows,
            ),
            "",
            "The exponent that balances the features' log-ratio on itself: a log-ratio "
            "shrunk by a factor c needs 1/c, above 1; noise in the out-of-fold log-ratio "
            "pulls it below 1. It tests one moment along the ratio's own direction, so a "
            f"value near or below 1 rules out a plain shrinkage, not a missing direction: "
            f"{alphas}.",
            "",
        ]
    )


#: Estimators shown in the table of the ``shift_not_separated`` rule: weighting
#: estimators with fixed-ratio intervals and difference conditional ratios (the library
#: applies it to other such variants too, e.g. ``+mic`` or ``+repeats``; never to
#: offset-fitted ratios, refit intervals or ``mr``).
_NOT_SEPARATED_ESTIMATORS = ("iw", "iw+ext", "iw+outputs", "mis", "mis+ext", "mis+ext+outputs")


def _ms_not_separated(ms: dict[str, Any]) -> list[str]:
    """The ``shift_not_separated`` rule applied to the recorded runs of the weighting
    estimators (their AUCs and intervals are stored), beside the warnings they raised."""
    from shiftattr.attribution import not_separated_mechanisms

    rows = []
    for est in _NOT_SEPARATED_ESTIMATORS:
        rs = [r for r in ms.get("runs", []) if r.get("ok") and r["estimator"] == est]
        if not rs or "auc_parents" not in rs[0]:
            continue
        hits = {}
        for i, r in enumerate(rs):
            diag = {
                m: {"auc_joint": r["auc_joint"][m], "auc_parents": r["auc_parents"][m]}
                for m in r["values"]
                if r["auc_joint"].get(m) is not None
            }
            ci = {
                m: (lo, hi) for m, (lo, hi) in r["ci"].items() if lo is not None and hi is not None
            }
            found = not_separated_mechanisms(ci, diag)
            if found:
                hits[i] = found
        pairs = [(rs[i], m) for i, found in hits.items() for m in found]
        missed = sum(r["covered"][m] is False for r, m in pairs)
        near0 = sum(abs(r["truth"][m]) < 0.005 for r, m in pairs)
        erring = [i for i, r in enumerate(rs) if r["error_above_threshold"]]
        good = [i for i, r in enumerate(rs) if not r["error_above_threshold"]]
        before = sum(rs[i]["flagged"] for i in erring)
        after = sum(rs[i]["flagged"] or i in hits for i in erring)
        alarms = sum(rs[i]["flagged"] for i in good)
        alarms_after = sum(rs[i]["flagged"] or i in hits for i in good)
        rows.append(
            [
                f"`{est}`",
                str(len(rs)),
                str(len(pairs)),
                f"{missed} ({near0})",
                f"{before} → {after} of {len(erring)}",
                f"{alarms} → {alarms_after} of {len(good)}",
            ]
        )
    if not rows:
        return []
    return [
        "**The `shift_not_separated` rule on these runs.** Added to `attribute` after the "
        "runs were made: with `method='iw'` or `'mis'` and fixed-ratio intervals, a "
        "mechanism whose interval excludes 0 although its node set's out-of-fold AUC is "
        "not above its parents' (offset-fitted conditional ratios exempt) "
        "(`shiftattr.attribution.not_separated_mechanisms`). The runs store those AUCs and "
        "intervals, so the rule is applied to them here; the flagged columns elsewhere in "
        "this section are the warnings the runs raised.",
        "",
        _table(
            [
                "estimator",
                "runs",
                "(run, mechanism) pairs it flags",
                "of which the interval missed the truth; (of all flagged, truth within 0.005 of 0)",
                "runs erring by > 0.02 with a warning, before → with it",
                "false alarms (runs erring by ≤ 0.02), before → with it",
            ],
            rows,
        ),
        "",
    ]


DEMO_SEEDS_NAME = "demo_seeds"


def _demo_seeds(ds: dict[str, Any] | None) -> str:
    """Section 5c: the demo's own configuration over several data seeds."""
    if not ds or not ds.get("summary"):
        return ""
    cfg = ds["config"]
    demo = cfg.get("demo_settings") or {}
    seeds = [str(s) for s in cfg["seeds"]]
    rows = [
        [
            f"`{r['method']}`",
            r["statistics"],
            r["bootstrap"],
            str(r["n_runs"]),
            f"{_f(r['mae_mean'], 3)} ({_f(r['mae_median'], 3)})",
            " / ".join(f"{v:.3f}" for v in r["mae_by_seed"].values()),
            _pct(r["dominant_rate"]),
            _pct(r["coverage"]),
            _pct(r.get("coverage_bias_aware")),
            str(r["n_sign_wrong"]),
            f"{r['n_error_above']}; {_pct(r['flagged_when_error_above'])}",
        ]
        for r in ds["summary"]
    ]
    se = [v for r in ds.get("runs", []) for v in r["truth_stderr"].values() if v > 0]
    setup = (
        f" ({'×'.join(map(str, demo['shape']))} volumes, {demo['n_source']} source and "
        f"{demo['n_target']} target cases, a U-Net trained on {demo['train_n']} other "
        f"source cases, truth from {demo['truth_n']} cases per coalition)"
        if demo
        else ""
    )
    return "\n".join(
        [
            "### 5c. The demo's configuration across data seeds",
            "",
            "Runs"
            + (f" ({cfg['note']})" if cfg.get("note") else "")
            + ": "
            + "; ".join(
                f"`{c['command']}` ({c['n_runs']} runs, {_f(c['seconds'], 3)} s; "
                + _run({"date": c.get("date"), "machine": {"git": c.get("git")}}).replace(
                    "Run ", "run ", 1
                )
                + ")"
                for c in ds["commands"]
            )
            + f". `shiftattr demo` is one draw of experiment B{setup}. This reruns its "
            "configuration through `shiftattr.pipeline.run` with the simulator seeds "
            f"{', '.join(seeds)} (`data.random_state`; seed 0 is the demo), each value "
            "estimator and each setting of `attribution.image_statistics` (set explicitly "
            "in every run, as is the bootstrap: fixed with 200 replicates, the demo's until "
            "2026-11-30, or refit with 50, the demo's since; so the library's defaults do "
            "not matter; `extended+outputs`: "
            "the extended statistics with `attribution.ratio_outputs = true`, the model's "
            "output summaries in the image ratios); per seed one U-Net "
            "and one truth serve every configuration."
            + (
                f" The truth's Monte-Carlo s.e. on the shifted mechanism is {min(se):.3f} to "
                f"{max(se):.3f}, so single errors below that are noise of the truth."
                if se
                else ""
            ),
            "",
            _table(
                [
                    "method",
                    "statistics",
                    "bootstrap",
                    "runs",
                    "MAE mean (median)",
                    f"MAE per seed ({', '.join(seeds)})",
                    "dominant right",
                    "95 % CI covers",
                    "bias-aware CI covers",
                    "runs with a wrong sign",
                    "runs with error > 0.02; flagged",
                ],
                rows,
            ),
            "",
            'Bias-aware CI: the interval of `attribution.interval = "bias_aware"` '
            "(the bootstrap standard error widened by the distance to importance weighting), "
            "which every run with another method computes and records beside its bootstrap "
            "interval; — for `iw` and for runs recorded before it was.",
            "",
            "A wrong sign: a mechanism whose true value exceeds 0.02 plus twice its "
            "Monte-Carlo s.e. in size is estimated with the opposite sign.",
            "",
        ]
    )


def _synthetic_ms(ms: dict[str, Any] | None, script_exists: bool) -> tuple[str, list[list[str]]]:
    """Section 5, and its rows for the report's targets table."""
    head = "## 5. Synthetic MS validation\n\n"
    if not script_exists or not ms or ms.get("status") == "not yet measured" or "runs" not in ms:
        return head + (
            "**Not yet measured.** `benchmarks/bench_synthetic_ms.py` has not written "
            "`results/synthetic_ms.json` yet; `run.py --only synthetic_ms` runs it. No numbers "
            "are reported.\n"
        ), []
    cfg, model = ms["config"], ms["model"]
    skipped = ms.get("skipped") or {}
    out = [
        "## 5. Synthetic MS validation",
        "",
        f"{_run(ms)}: `{ms.get('command', 'bench_synthetic_ms.py')}`, "
        f"{_f(ms.get('seconds'), 3)} s in all. {len(ms['scenarios'])} scenarios of "
        "`shiftattr.datasets.SyntheticMS` ("
        + "×".join(map(str, cfg["shape"]))
        + f" volumes), N = {', '.join(map(str, cfg['sizes']))} cases per environment, seeds "
        f"{cfg['seeds']}, estimators run: {', '.join(cfg['estimators_run'])}"
        + (
            "; skipped (not failed): "
            + "; ".join(f"`{e}` ({r})" for e, r in sorted(skipped.items()))
            if skipped
            else ""
        )
        + ".",
        "",
        "**Setup.** Graph " + cfg["graph"] + "; mechanisms D (population), X (acquisition), "
        "Y (annotation). Every run draws fresh source and target samples and calls "
        "`shiftattr.attribute(..., method=<estimator>, "
        "estimators={'X': ImageStatsRatio(statistics='basic'), 'Y': ...}, "
        f"n_folds={cfg['n_folds']}, n_bootstrap={cfg['n_bootstrap']}, "
        f"bootstrap='{cfg['bootstrap']}')` (D: the default ClassifierRatio; the basic image "
        "statistics, the library's default until 2026-11-30, pinned: the extended ones, "
        "its default since, are the `+ext` variants), with the measured "
        "target Dice as `target_metric` (closure check; `regression` and `mr` also regress "
        "on it). `regression` and `mr` get `features={'X': adapter.output_features}` (the "
        "model's own output per case: predicted volume, confidence, boundary uncertainty, "
        "components; the library's image statistics for the other nodes) and the library's "
        "default regressors. The fixed bootstrap holds the cross-fitted ratios and "
        "regressions fixed: for `iw` its intervals leave out the ratio estimators' own "
        "variance.",
        "",
        *_ms_paired_setup(ms),
        "**Model (the fixed segmenter).** One small `UNet3D` (channels "
        f"{tuple(model['settings']['channels'])}) per source center, trained once by "
        f"`train_segmentation_model` on {model['settings']['n_train']} cases "
        f"({model['settings']['train_data']}, {model['settings']['epochs']} epochs) and "
        "cached in `benchmarks/results/cache/` (the file name encodes every training "
        "setting; this section's weights were not kept, see section 5d). A trained U-Net "
        "rather than a threshold segmenter, so that the "
        "Dice reacts to contrast, noise, blur and lesion size the way a real model's does. "
        f"Scored by `SegmentationAdapter` ({model['settings']['metric']}). "
        + "; ".join(
            f"center {c}: {info['how']}"
            + (
                f" (training took {_f(info['train_seconds'], 3)} s)"
                if info.get("train_seconds")
                else f" ({_f(info['seconds'], 3)} s)"
            )
            for c, info in model["per_center"].items()
        )
        + ".",
        "",
        "**Truth.** `SyntheticMS.true_attribution` with the same model: all eight coalitions "
        "simulated with common random numbers, in independent batches until every Monte-Carlo "
        f"s.e. is below {cfg['truth_se_target']} Dice or {_f(cfg['truth_n_max'])} cases are "
        "used; stored per scenario in the JSON with a key of everything it depends on, and "
        "reused by `--reuse-truth` (which `run.py` passes) when the key matches."
        + "".join(_ms_rescored(r) for r in ms.get("rescored") or []),
        "",
    ]
    rows = []
    for name, s in ms["scenarios"].items():
        t = s["truth"]
        rows.append(
            [
                name,
                s["kind"],
                f"{_env_label(s['source'])} → {_env_label(s['target'])}",
                ", ".join(s["shifted"]) or "none",
                *[f"{t['values'][m]:+.3f} ± {t['stderr'][m]:.3f}" for m in _MS_MECHS],
                f"{t['source_metric']:.3f} → {t['target_metric']:.3f}",
                t["dominant"] or "none clear",
                f"{_f(t['n'])} ({s.get('truth_how', '?')})",
            ]
        )
    out += [
        "**Scenarios** (center/annotator/population; custom specs: center `far`, annotator "
        "`strong-under`, population `older-low-load`, defined in the script). True Shapley "
        "values ± MC s.e., in Dice points of drop (positive = the shift lowers the Dice):",
        "",
        _table(
            [
                "scenario",
                "kind",
                "source → target",
                "shifted",
                "D true",
                "X true",
                "Y true",
                "Dice source → target",
                "dominant",
                "truth cases",
            ],
            rows,
        ),
        "",
    ]
    summary = [r for r in ms["summary"] if r.get("n_ok")]
    rows = []
    for r in summary:
        n_above = r["n_error_above"]
        flagged = (
            "no run > 0.02"
            if not n_above
            else f"{_pct(r['flagged_when_error_above'])} of {n_above}"
        )
        auc = r.get("auc_joint_mean") or {}
        rows.append(
            [
                r["scenario"],
                r["estimator"],
                r["n"],
                _f(r["mae_mean"]) + (f" ± {_f(r['mae_sd'], 2)}" if r.get("mae_sd") else ""),
                _f(r["max_abs_error"]),
                ", ".join(f"{m} {r['value_mean'][m]:+.3f}" for m in _MS_MECHS),
                _pct(r["dominant_rate"]) if r["n_dominant_defined"] else "n/a",
                _pct(r["coverage"]),
                flagged,
                _pct(r["flagged_when_error_below"]),
                _pct(r["ess_all_fraction_mean"]),
                ", ".join(f"{m} {auc[m]:.2f}" for m in _MS_MECHS if auc.get(m) is not None),
                f"{_f(r['seconds_median'], 3)} s",
            ]
        )
    failed = [r for r in ms["runs"] if not r.get("ok")]
    out += _ms_paired_comparison(ms)
    out += _ms_column_table(ms, "mis")
    for suffix in _VARIANT_TABLES:
        out += _ms_variant_table(ms, suffix)
    out += _ms_column_table(ms, "ext+outputs")
    out += _ms_column_table(ms, "ext+mic")
    out += _ms_column_table(ms, "ext+offset")
    out += _ms_column_table(ms, "ext+refit")
    out += _ms_column_table(ms, "ext+outputs+prognostic")
    out += _ms_column_table(ms, "mr+outputs")
    out += _ms_observed_change(ms, "mr+pooled+ext")
    out += _ms_column_table(ms, "oracle-node")
    out += _ms_column_table(ms, "cnnratio")
    out += _ms_column_table(ms, "cnnratio-mis")
    out += _ms_column_table(ms, "mr+both")
    out += _ms_column_table(ms, "mr+both+oracle")
    out += _ms_column_table(ms, "mr+both+paired")
    out += _ms_column_table(ms, "defaults")
    out += _ms_column_table(ms, "defaults+paired")
    out += _ms_not_separated(ms)
    out += [
        "**Per scenario and estimator** (over seeds). MAE: mean over runs of the mean "
        "absolute error over D, X, Y; dominant: the largest |estimate| is the truth's "
        "largest (n/a when the truth has no clear dominant: largest |value| not 2 s.e. "
        "above the second, or below 0.005); coverage: share of (run, mechanism) whose 95 % "
        "CI holds the truth, unshifted mechanisms (truth exactly 0) included; flagged: share "
        "of runs whose largest error exceeds 0.02 that `attribute` warned about (any "
        "warning it raised: `low_ess`, `separable`, `closure_error`, `shift_not_seen`, "
        "`truncated`, `methods_disagree`, `narrow_interval`, and `split_unstable` for the "
        "`+repeats` variants; not `imprecise`, which these runs did not ask for); false alarms: share of runs with error ≤ 0.02 that were "
        "warned about anyway.",
        "",
        _table(
            [
                "scenario",
                "estimator",
                "N",
                "MAE",
                "max error",
                "mean estimate",
                "dominant right",
                "CI coverage",
                "flagged when error > 0.02",
                "false alarms",
                "Kish ESS (all)",
                "AUC of the joint classifiers",
                "median time",
            ],
            rows,
        ),
        "",
    ]
    if failed:
        out += [
            f"**{len(failed)} run(s) failed** (recorded in the JSON with their traceback): "
            + "; ".join(
                f"{r['scenario']} {r['estimator']} N = {r['n']} seed {r['seed']}: {r['error']}"
                for r in failed[:5]
            ),
            "",
        ]
    # targets
    trows, top_rows = [], []
    one_n = len(cfg["sizes"]) == 1
    for r in ms.get("targets", []):
        if one_n and "n" in r:  # the same numbers as the all-N row
            continue
        group = f"{r['estimator']}" + (
            f", N = {r['n']}" if "n" in r else f", N = {cfg['sizes'][0]}" if one_n else ", all N"
        )
        met = _yes(r["met"])
        trows.append(
            [
                _MS_TARGET_NAMES.get(r["target"], r["target"]),
                group,
                _ms_target_cell(r),
                met,
            ]
        )
        if "n" not in r:
            only = _only_sizes(ms, r["estimator"])
            top_rows.append(
                [
                    f"Synthetic MS ({ms.get('mode')} run, {r['estimator']}"
                    + (f", {only} only" if only else "")
                    + "): "
                    + _MS_TARGET_NAMES.get(r["target"], r["target"]),
                    _ms_target_cell(r),
                    met,
                ]
            )
    top_rows += _ms_mr_vs_iw(ms)
    for e, reason in sorted(skipped.items()):
        top_rows.append([f"Synthetic MS, estimator `{e}`", f"skipped: {reason}", "—"])
    overall = {r["estimator"]: r for r in ms.get("overall", []) if "n" not in r and r.get("n_ok")}
    plain = []
    for e, g in overall.items():
        mets = [r for r in ms.get("targets", []) if r["estimator"] == e and "n" not in r]
        ok = [_MS_TARGET_NAMES.get(r["target"], r["target"]) for r in mets if r["met"]]
        bad = [_MS_TARGET_NAMES.get(r["target"], r["target"]) for r in mets if r["met"] is False]
        only = sorted({r["scenario"] for r in ms["runs"] if r["estimator"] == e})
        caveats = {
            "+paired": f" (only the {len(only)} scenarios where the annotators differ: not "
            "comparable with the unpaired rows; see the paired tables)",
            "+refit": f" (only {len(only)} scenario(s), refit bootstrap: compare with the "
            "refit-vs-fixed table, not with the rows above)",
            "+repeats": " (only N = "
            + ", ".join(str(n) for n in sorted(_sizes_run(ms, e)))
            + ": compare with the repeated cross-fitting table, not with the rows above)",
        }
        caveat = next((c for suffix, c in caveats.items() if e.endswith(suffix)), "")
        only = _only_sizes(ms, e)
        if not caveat and only:
            caveat = f" (only {only})"
        plain.append(
            f"- `{e}` over all {g['n_ok']} runs"
            + caveat
            + ": "
            + (f"met: {'; '.join(ok)}. " if ok else "no target met. ")
            + (f"**Not met: {'; '.join(bad)}.**" if bad else "Every target met.")
            + (
                f" MAE over the {g['n_unflagged']} runs without any warning: "
                f"{_f(g['mae_unflagged'], 3)}."
                if g.get("mae_unflagged") is not None
                else ""
            )
        )
    truth_se = max(
        (se for s in ms["scenarios"].values() for se in s["truth"]["stderr"].values()),
        default=None,
    )
    facts = []
    if truth_se is not None:
        facts.append(
            f"- Truth precision: the largest MC s.e. of a true value is {_f(truth_se, 2)} Dice; "
            "errors of that order are not resolved"
            + (" (quick mode simulates few truth cases)." if ms.get("mode") == "quick" else ".")
        )
    for scen, what in (
        ("null", "Null scenario (nothing shifts, every true value 0)"),
        ("little_overlap", "Little-overlap scenario"),
    ):
        rs = [r for r in ms["runs"] if r["scenario"] == scen and r.get("ok")]
        if not rs:
            continue
        per = []
        for e in dict.fromkeys(r["estimator"] for r in rs):
            er = [r for r in rs if r["estimator"] == e]
            worst = max(er, key=lambda r: r["max_abs_error"])
            mech = max(_MS_MECHS, key=lambda m: worst["abs_error"][m])
            per.append(
                f"`{e}` largest error {_f(worst['max_abs_error'], 2)} (on {mech}), "
                f"flagged in {sum(r['flagged'] for r in er)}/{len(er)} runs"
            )
        facts.append(f"- {what}: " + "; ".join(per) + ".")
    out += [*facts, ""] if facts else []
    plain += _ms_closest(ms)
    out += [
        "**Targets** (issue 4), per estimator over every scenario and seed"
        + ("" if one_n else ", then per N")
        + ":",
        "",
        _table(["target", "estimator", "measured", "met?"], trows),
        "",
        *plain,
        "",
        "![synthetic MS: estimated vs true](results/synthetic_ms.png)",
        "",
    ]
    return "\n".join(out), top_rows


# -- 6. value estimators ------------------------------------------------------------------
_VE_LABELS = {
    "iw": "shiftattr IW",
    "mis": "shiftattr MIS (both samples weighted)",
    "regression": "shiftattr regression",
    "mr": "shiftattr MR",
    "mr_biasaware": "shiftattr MR, bias-aware interval",
    "regression_biasaware": "shiftattr regression, bias-aware interval",
    "mis_biasaware": "shiftattr MIS, bias-aware interval",
    "mr_pooled": "shiftattr MR, pooled regressions",
    "mr_linear": "shiftattr MR, linear learners (DoWhy's class)",
    "iw_oracle": "shiftattr IW, true ratios",
    "mis_oracle": "shiftattr MIS, true ratios",
    "mr_oracle": "shiftattr MR, true ratios",
    "mr_both": "shiftattr MR over both samples, bias-aware interval",
    "mr_both_oracle": "shiftattr MR over both samples, true ratios, bias-aware interval",
    "mr_point": "shiftattr MR, no bootstrap (timing)",
    "mr_linear_point": "shiftattr MR, linear learners, no bootstrap (timing)",
    "dowhy_mr_default": "DoWhy MR (default learners)",
    "dowhy_mr_gb": "DoWhy MR (gradient boosting)",
}


def _dowhy_timed(ve: dict[str, Any]) -> str:
    """When the DoWhy MR (default learners) times of section 6 were measured: by the last
    merge that re-ran them, else by the first run."""
    for g in reversed(ve.get("merged", [])):
        if "dowhy_mr_default" in g["methods"]:
            return f"{g['date']} (that merge)"
    return f"{ve['date']} (the first run)"


def _ve_interval_summary(runs: list[dict[str, Any]]) -> list[str]:
    """One line per method with intervals: mean MAE over runs, then coverage and mean
    width over every (run, mechanism), per N and in all."""
    lines = []
    for method, label in _VE_LABELS.items():
        rs = [r for r in runs if r.get("ok") and r["method"] == method and r.get("covered")]
        if not rs:
            continue
        cells = []
        for n in [*sorted({r["n"] for r in rs}), "all"]:
            sel = [r for r in rs if n == "all" or r["n"] == n]
            cov = [c for r in sel for c in r["covered"].values()]
            width = [hi - lo for r in sel for lo, hi in r["ci"].values()]
            where = "all N" if n == "all" else f"N = {n}"
            mae = [r["mae"] for r in sel if "mae" in r]
            cells.append(
                f"{where}: "
                + (f"MAE {_f(float(np.mean(mae)), 3)}, " if mae else "")
                + f"{_pct(float(np.mean(cov)))}, {_f(float(np.mean(width)), 2)}"
            )
        lines.append(f"- {label}: " + "; ".join(cells))
    if not lines:
        return []
    return [
        "**By method** (mean MAE over runs; coverage of the truth and mean CI width over "
        "every (run, mechanism)):",
        "",
        *lines,
        "",
    ]


def _value_estimators(ve: dict[str, Any] | None) -> str:
    """Section 6: IW vs regression vs MR vs DoWhy's MR on the tabular SCMs."""
    title = "## 6. Value estimators: IW vs regression vs MR vs DoWhy MR (tabular SCMs)"
    if not ve:
        return f"{title}\n\nNot run.\n"
    cfg, summary, tg = ve["config"], ve["summary"], ve.get("targets", {})
    runs = ve.get("runs", [])
    with_loss = _mae_with_loss_node(runs)
    seeds_run = sorted({r["seed"] for r in runs})
    sizes_run = sorted({r["n"] for r in runs})
    ran = cfg.get("seeds_run", {})  # the seeds each method actually ran on
    gb_seeds = ran.get("dowhy_mr_gb", [])
    out = [
        title,
        "",
        f"{_run(ve)}"
        + (
            " — **partial: interrupted, only the cells below finished**"
            if ve.get("partial")
            else ""
        )
        + "".join(
            f"; {', '.join(f'`{m}`' for m in g['methods'])} merged {g['date']} at commit "
            f"`{g['commit']}` (their times measured then)"
            for g in ve.get("merged", [])
        )
        + f". Machine: {_machine(ve)}"
        + f" Every time ratio divides by DoWhy MR (default learners) times measured "
        f"{_dowhy_timed(ve)}"
        + f". SCMs {', '.join(f'`{s}`' for s in cfg['scms'])} (section 1), N = "
        f"{', '.join(map(str, sizes_run))} cases per environment, seeds {seeds_run}. "
        "Samples are drawn with section 1's seeding; every method sees the same ones. shiftattr: `attribute(method=..., "
        f"target_metric=<measured target loss>, n_bootstrap={cfg['n_bootstrap']}, "
        "bootstrap='fixed', n_folds=5, random_state=seed)`; DoWhy: "
        "`gcm.distribution_change_robust(method='MR', xfit_folds=5)` with the loss as a node "
        "(see section 1), "
        + (
            f"default learners on every seed, gradient boosting on seeds {gb_seeds}."
            if gb_seeds
            else "default learners only (gradient boosting, ~1 min per run, not run here)."
        )
        + " Truth: section 1's simulated values ("
        + ", ".join(sorted({t.get("from", "?") for t in ve["truth"].values()}))
        + "). MAE is over the SCM's mechanisms for every method (DoWhy's value for its extra "
        "`loss` node, truth 0, is left out; the last column adds it). Coverage: fraction of "
        "(run, mechanism) pairs whose 95 % interval holds the truth (DoWhy gives no "
        "intervals). Time: median wall seconds of one call including the bootstrap; ratio to "
        "DoWhy MR (default learners) at the same (SCM, N). BLAS one thread, `n_jobs=1`.",
        "",
        _table(
            [
                "SCM",
                "N",
                "method",
                "runs",
                "MAE mean ± sd",
                "dominant right",
                "CI coverage",
                "median time",
                "time / DoWhy MR",
                "warnings",
                "MAE incl. loss node",
            ],
            [
                [
                    r["scm"],
                    r["n"],
                    _VE_LABELS.get(r["method"], r["method"]),
                    r["n_runs"]
                    if not r.get("n_failed")
                    else f"{r['n_runs']} ({r['n_failed']} failed)",
                    f"{_f(r.get('mae_mean'), 3)} ± {_f(r.get('mae_sd'), 2)}",
                    _pct(r.get("dominant_rate")),
                    _pct(r.get("coverage")),
                    _secs(r.get("seconds_median")),
                    _f(r.get("time_ratio_to_dowhy_mr"), 3),
                    ", ".join(r.get("warnings") or []) or "—",
                    _f(with_loss.get((r["scm"], r["n"], r["method"])), 3),
                ]
                for r in summary
            ],
        ),
        "",
    ]
    out += _ve_interval_summary(runs)
    iw, dw, gb, lin = (
        tg.get(k, {})
        for k in ("mr_vs_iw", "mr_vs_dowhy_mr", "mr_vs_dowhy_mr_gb", "mr_linear_vs_dowhy_mr")
    )
    cells = tg.get("per_cell", [])
    if cells:
        out += [
            "**Targets.**",
            "",
            f"- MR vs IW (the 2× target is the MS world's; here only the ratio is reported): MR's "
            f"MAE / IW's MAE, geometric mean over cells {_f(iw.get('geomean_mae_ratio'), 3)}; "
            f"MR at least 2× lower in {iw.get('cells_2x_lower')} of {iw.get('cells')} "
            "(SCM, N) cells. Per cell: "
            + "; ".join(f"{c['scm']} N={c['n']} {_f(c.get('mr_over_iw_mae'), 2)}" for c in cells)
            + ".",
            f"- MR's MAE ≤ DoWhy MR's (default learners) at ≤ 1/10 of its time: "
            f"{'**met**' if dw.get('met') else '**not met**'} — MAE ≤ DoWhy's in "
            f"{dw.get('cells_mae_met')} of {dw.get('cells')} cells, time ≤ 1/10 in "
            f"{dw.get('cells_time_met')} of {dw.get('cells')}, both in "
            f"{dw.get('cells_both_met')}. Per cell (MAE ratio, time ratio): "
            + "; ".join(
                f"{c['scm']} N={c['n']} {_f(c.get('mr_over_dowhy_mae'), 2)}, "
                f"{_f(c.get('mr_over_dowhy_time'), 2)}"
                for c in cells
                if "mr_over_dowhy_mae" in c
            )
            + f". The MR time includes its {cfg['n_bootstrap']} bootstrap replicates (DoWhy "
            "computes no intervals)"
            + _point_estimate_sentence(
                ran.get("mr_point", []), dw, cells, "mr_point_over_dowhy_time"
            )
            + ".",
        ]
        if lin.get("cells"):
            out += [
                "- The same comparison with shiftattr's MR on DoWhy's learner class "
                "(`mr_linear`: logistic-regression ratios, ridge nested regressions; "
                f"{cfg['n_bootstrap']} bootstrap replicates included): MAE ≤ DoWhy MR's "
                f"(default learners) in {lin['cells_mae_met']} of {lin['cells']} cells; "
                f"faster in {lin['cells_faster']}, at ≤ 1/10 of its time in "
                f"{lin['cells_time_met']}; median time ratio "
                f"{_f(lin.get('median_time_ratio'), 2)}. Per cell (MAE ratio, time ratio): "
                + "; ".join(
                    f"{c['scm']} N={c['n']} {_f(c['linear_over_dowhy_mae'], 2)}, "
                    f"{_f(c.get('linear_over_dowhy_time'), 2)}"
                    for c in cells
                    if c.get("linear_over_dowhy_mae") is not None
                )
                + _point_estimate_sentence(
                    ran.get("mr_linear_point", []), lin, cells, "linear_point_over_dowhy_time"
                )
                + ". With the same learner class, what shiftattr saves is the refitting: it "
                "fits each ratio and regression once per mechanism and environment, DoWhy "
                "refits them for every coalition. The learners are the library's closed "
                "forms (`StandardisedLogisticRegression`, `StandardisedRidgeCV`: the same "
                "models as scikit-learn's pipelines without their per-call validation), the "
                "fixed bootstrap solves all replicates together, and the thread limits no "
                "longer rescan the process's libraries per fit; what remains at N = 1000 is "
                "mostly the bootstrap's resampling of every coalition's correction.",
            ]
        if gb.get("cells"):
            out += [
                f"- Against DoWhy MR with gradient boosting (seeds {gb_seeds}; MR's MAE is "
                f"its mean over seeds {ran.get('mr', [])}): MR's MAE ≤ "
                f"its MAE in {gb['cells_mae_met']} of {gb['cells']} cells, time ≤ 1/10 in "
                f"{gb['cells_time_met']}, both in {gb['cells_both_met']}: "
                f"{'**met**' if gb['cells_both_met'] == gb['cells'] else '**not met**'}. "
                "Per cell (MAE ratio, time ratio with bootstrap, point estimate only): "
                + "; ".join(
                    f"{c['scm']} N={c['n']} {_f(c['mr_over_dowhy_gb_mae'], 2)}, "
                    f"{_f(c['mr_over_dowhy_gb_time'], 2)}, "
                    f"{_f(c.get('mr_point_over_dowhy_gb_time'), 2)}"
                    for c in cells
                    if c.get("mr_over_dowhy_gb_mae") is not None
                )
                + ".",
            ]
        out += [""]
    return "\n".join(out)


# -- the whole report ---------------------------------------------------------------------
def write(results_dir: Path = RESULTS_DIR, out: Path = OUT, run_log: dict | None = None) -> Path:
    """Write RESULTS.md from whatever results exist; returns its path."""
    acc = read_json("accuracy_tabular", results_dir)
    sol = read_json("solvers", results_dir)
    met = read_json("metrics", results_dir)
    sc = read_json("scaling", results_dir)
    ms = read_json("synthetic_ms", results_dir)
    ve = read_json("value_estimators", results_dir)
    from benchmarks.synthetic_ms import SCRIPT

    acc_txt, behind_acc = _accuracy(acc)
    sol_txt, behind_sol, targets = _solvers(sol)
    exact1 = next((e for e in sol["exact"] if e["blas_threads"] == 1), None) if sol else None
    met_txt, behind_met = _metrics(met)
    ms_txt, ms_targets = _synthetic_ms(ms, SCRIPT.exists())
    ms32_txt = _synthetic_ms_32(read_json(MS32_NAME, results_dir), ms)
    shipped = read_json(MS_SHIPPED_NAME, results_dir)
    shipped_txt = _synthetic_ms_shipped(shipped, ms)
    demo_txt = _demo_seeds(read_json(DEMO_SEEDS_NAME, results_dir))
    info_txt = _ratio_information(read_json(RATIO_INFORMATION_NAME, results_dir))
    volume_txt = _volume_scaling(read_json(VOLUME_SCALING_NAME, results_dir))
    stats_memory_txt = _image_statistics_memory(
        read_json(IMAGE_STATISTICS_MEMORY_NAME, results_dir)
    )
    range_txt = _metric_range(read_json(METRIC_RANGE_NAME, results_dir))
    centering_txt = _refit_centering(read_json(REFIT_CENTERING_NAME, results_dir))
    probabilities_txt = _saved_probabilities(read_json(SAVED_PROBABILITIES_NAME, results_dir))
    targets = targets + ms_targets
    if shipped:
        targets += _ms_mr_vs_iw(shipped, "Synthetic MS on the segmenters kept (section 5d)")
    newest = max((p for p in (acc, sol, sc) if p), key=lambda p: p["date"], default=None)
    header = [
        "# shiftattr benchmarks against the peers",
        "",
        f"Written by `benchmarks/run.py` on {now_utc()} (UTC) from the results in "
        "`benchmarks/results/*.json`; each section gives the date of its own run."
        + (
            f" Last invocation: `{run_log['command']}` ({run_log['mode']} mode, "
            f"{_f(run_log['seconds'], 3)} s; sections run: {', '.join(run_log['sections'])})."
            if run_log
            else ""
        ),
        "",
        f"**Machine.** {_machine(newest) if newest else 'unknown'}",
        "",
        "**Timing rules.** Every time is a median over repeated runs; compared functions run "
        "round-robin in the same process so that they see the same load; comparisons are ratios "
        "to the peer measured in the same run. BLAS is limited to one thread for every side: "
        "this 2-core machine is shared with other jobs, and multi-threaded BLAS there measures "
        "thread contention rather than the code.",
        "",
        "## Targets",
        "",
        *_ms_defaults_targets(ms, shipped),
        _table(["target", "measured", "met?"], targets) if targets else "No target measured.",
        "",
    ]
    behind = behind_acc + behind_sol + behind_met
    gaps = [
        "## Where shiftattr is behind a peer, why, and what would close the gap",
        "",
    ]
    if behind:
        gaps += [f"- {b}" for b in behind]
        gaps += [
            "",
            "Causes found:",
            "",
            "- **Attribution accuracy (importance weighting vs DoWhy's generative and "
            "multiply-robust estimators).** The default, `method='iw'`, estimates every "
            "coalition by reweighting the source cases. Where a mechanism's shift moves the "
            "loss through cases that are rare in the source (the outcome mechanism, wide "
            "covariate shifts), the weights are heavy-tailed: the oracle-ratio column shows the "
            "error that remains even with perfect ratios, and the ESS column how few cases "
            "carry the estimate."
            + _mis_counts(acc)
            + " Estimated ratios add error on top where a conditional shift is "
            "subtle for a classifier (AUC near 0.5) but large for the loss (a concept shift of "
            "the outcome). DoWhy's `distribution_change_of_graphs` fits each mechanism and "
            "simulates new cases instead: no weight variance, biased only where a fitted "
            "mechanism is wrong. `method='generative'` is that route for tabular graphs, with "
            "coupled random numbers across coalitions, heteroscedastic noise models and "
            "one-standard-error model choice; "
            + _generative_vs_graphs(acc)
            + " The default stays importance weighting because it is the estimator that "
            "works for image nodes (a scan cannot be simulated from a fitted mechanism); for "
            "tabular graphs with a callable metric, "
            "`method='generative'` (or `'mr'`, which is robust to a wrong regression where the "
            "ratio is right) is the choice.",
            "- **Permutation sampling vs DoWhy's Halton permutations.** DoWhy draws permutations "
            "as the argsort of a Halton sequence (quasi-random); on unanimity games with "
            "high-order interactions that stratifies the players' relative orders better than "
            "independent antithetic pairs (`PermutationShapley(sampler='random')`). The "
            "library's default, `sampler='cyclic'`, stratifies by predecessor-set size and "
            "shares coalitions between rotations; where DoWhy's sampler is still ahead in "
            "section 2 it is listed above with its seed noise.",
            "- **Exact solver vs DoWhy EXACT.** See section 2: the cost is the value function; "
            "DoWhy pays `2**n` single evaluations, we pay one batched split-product evaluation. "
            "Its one stacked matrix product (`2 × 2**n × N` multiply-adds for all numerators "
            "and denominators) is the floor of any exact method that needs every coalition's "
            "ratio of sums"
            + (
                f"; on one shared core it ran at {_f(exact1['stacked_product_gflops'], 2)} GFLOP/s"
                if exact1 and "stacked_product_gflops" in exact1
                else ""
            )
            + ". The library's kernel already computes them in cache-sized blocks of cases"
            + (
                f"; 50× needs the exact solve {_f(50 / exact1['speedup_vs_dowhy'], 2)}× "
                "faster than measured here in double precision"
                if exact1 and "speedup_vs_dowhy" in exact1
                else ""
            )
            + (
                f". In single precision (`iw_game(precision='float32')`, opt-in) it is "
                f"{_f(exact1['speedup_vs_dowhy_float32'], 3)}× DoWhy, with Shapley values "
                f"within {_f(exact1['max_abs_difference_float32'], 2)} of double precision's."
                if exact1 and "speedup_vs_dowhy_float32" in exact1
                else "."
            ),
        ]
    else:
        gaps += ["No figure where a peer is ahead in these results."]
    gaps += [""]
    body = [
        acc_txt,
        *([range_txt] if range_txt else []),
        *([centering_txt] if centering_txt else []),
        sol_txt,
        met_txt,
        _scaling(sc),
        *([volume_txt] if volume_txt else []),
        *([stats_memory_txt] if stats_memory_txt else []),
        ms_txt,
        ms32_txt,
        demo_txt,
        *([shipped_txt] if shipped_txt else []),
        *([info_txt] if info_txt else []),
        *([probabilities_txt] if probabilities_txt else []),
        _value_estimators(ve),
        "\n".join(gaps),
        "## Reproduce",
        "",
        "```bash",
        "make bench                                   # installs the bench extra, runs --quick",
        ".venv/bin/python benchmarks/run.py            # full suite: ~40 min on 2 quiet cores, more under load",
        ".venv/bin/python -m benchmarks --only solvers --quick",
        "PYTHONPATH=. .venv/bin/python benchmarks/bench_demo_seeds.py --seeds 0 1 2 3 4 5 6 7 8 9 10 11"
        "   # section 5c, ~8 min",
        "PYTHONPATH=. .venv/bin/python benchmarks/bench_ratio_information.py   # section 5e, ~10 min",
        "PYTHONPATH=. .venv/bin/python benchmarks/bench_saved_probabilities.py   # section 5f",
        "```",
        "",
    ]
    out.write_text("\n".join(header) + "\n" + "\n".join(body))
    return out
