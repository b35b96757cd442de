"""PNG figures of the benchmark results (matplotlib, Agg backend), one function per figure."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from benchmarks._common import RESULTS_DIR, read_json

LABELS = {
    "shiftattr": "shiftattr",
    "shiftattr_oracle": "shiftattr (oracle ratios)",
    "shiftattr_mis": "shiftattr (method='mis')",
    "shiftattr_mis_oracle": "shiftattr (method='mis', oracle ratios)",
    "shiftattr_mr": "shiftattr (method='mr')",
    "shiftattr_gen": "shiftattr (method='generative')",
    "dowhy_mr_gb": "DoWhy MR (gradient boosting)",
    "dowhy_mr_default": "DoWhy MR (default learners)",
    "dowhy_graphs": "DoWhy distribution_change_of_graphs",
    "shiftattr_random": "shiftattr (sampler='random')",
    "shiftattr_plain": "shiftattr (no antithetic)",
    "shiftattr_halton": "shiftattr (sampler='halton')",
    "shapiq_permutation": "shapiq PermutationSamplingSV",
    "shapiq_kernelshap": "shapiq KernelSHAP",
    "dowhy_permutation": "DoWhy PERMUTATION",
    "dowhy_early_stopping": "DoWhy EARLY_STOPPING",
}


def _plt():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def plot_accuracy(acc: dict[str, Any], out: Path) -> Path:
    """Mean MAE (± sd over seeds) per SCM and method, one panel per sample size."""
    plt = _plt()
    rows = [r for r in acc["summary"] if "mae_mean" in r]
    sizes = sorted({r["n"] for r in rows})
    scms = list(acc["truth"])
    methods = [m for m in LABELS if any(r["method"] == m for r in rows)]
    fig, axes = plt.subplots(1, len(sizes), figsize=(6 * len(sizes), 4.2), squeeze=False)
    width = 0.8 / max(len(methods), 1)
    for ax, n in zip(axes[0], sizes):
        for j, method in enumerate(methods):
            means, sds = [], []
            for scm in scms:
                r = next(
                    (r for r in rows if (r["scm"], r["n"], r["method"]) == (scm, n, method)), None
                )
                means.append(r["mae_mean"] if r else np.nan)
                sds.append(r["mae_sd"] if r else 0.0)
            x = np.arange(len(scms)) + (j - (len(methods) - 1) / 2) * width
            ax.bar(x, means, width, yerr=sds, label=LABELS[method], capsize=2)
        ax.set_xticks(np.arange(len(scms)), scms, rotation=15)
        ax.set_ylabel("MAE of the attributions (loss units)")
        ax.set_title(f"N = {n} cases per environment")
    axes[0][0].legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(out, dpi=110)
    plt.close(fig)
    return out


def plot_solvers(sol: dict[str, Any], out: Path) -> Path:
    """Relative RMSE vs evaluation budget per game and solver (log-log)."""
    plt = _plt()
    games = sol["rmse"]["games"]
    fig, axes = plt.subplots(1, len(games), figsize=(4.5 * len(games), 4), squeeze=False)
    for ax, (name, g) in zip(axes[0], games.items()):
        for solver in LABELS:
            pts = [
                (r[solver]["mean_evaluations"], r[solver]["relative_rmse"])
                for r in g["budgets"]
                if isinstance(r.get(solver), dict) and "rmse" in r[solver]
            ]
            if pts:
                x, y = zip(*pts)
                style = (
                    "--"
                    if solver in ("shiftattr_halton", "shiftattr_plain", "shiftattr_random")
                    else "-"
                )
                ax.loglog(x, y, style, marker="o", label=LABELS[solver])
        ax.set_xlabel("value-function evaluations")
        ax.set_ylabel("RMSE / RMS of the exact values")
        ax.set_title(name)
    axes[0][0].legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(out, dpi=110)
    plt.close(fig)
    return out


def plot_scaling(sc: dict[str, Any], out_samples: Path, out_mechs: Path) -> list[Path]:
    """Time and memory vs cases; time vs mechanisms; fitted slopes in the legends."""
    plt = _plt()
    g, a, m = sc["samples_game"], sc["samples_attribute"], sc["mechanisms"]
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(11, 4))
    xs = [r["n_samples"] for r in g["rows"]]
    for key, label in (("exact", "ExactShapley on iw_game"),):
        ax1.loglog(
            xs,
            [r["seconds"][key] for r in g["rows"]],
            marker="o",
            label=f"{label} (slope {g['slope_time'][key]:.2f})",
        )
        ax2.loglog(
            xs,
            [r["peak_mb"][key] for r in g["rows"]],
            marker="o",
            label=f"{label} (slope {g['slope_memory'][key]:.2f})",
        )
    xa = [r["n_samples"] for r in a["rows"]]
    ax1.loglog(
        xa,
        [r["seconds"] for r in a["rows"]],
        marker="s",
        label=f"attribute() with classifier fits (slope {a['slope_time']:.2f})",
    )
    ax2.loglog(
        xa,
        [max(r["peak_rss_increase_mb"], 1e-3) for r in a["rows"]],
        marker="s",
        label=f"attribute(), peak RSS increase (slope {a['slope_memory']:.2f})",
    )
    ax1.set_xlabel("cases N")
    ax1.set_ylabel("seconds (median)")
    ax2.set_xlabel("cases N")
    ax2.set_ylabel("peak memory (MB)")
    ax1.legend(fontsize=7)
    ax2.legend(fontsize=7)
    ax1.set_title(f"time vs N ({g['n_mechanisms']} mechanisms for the game)")
    ax2.set_title("memory vs N")
    fig.tight_layout()
    fig.savefig(out_samples, dpi=110)
    plt.close(fig)

    fig, ax = plt.subplots(figsize=(6, 4))
    for key, label in (
        ("exact", "ExactShapley"),
        ("permutation_64", "PermutationShapley, 64 permutations"),
    ):
        pts = [(r["n_mechanisms"], r["seconds"][key]) for r in m["rows"] if key in r["seconds"]]
        if not pts:
            continue
        ns, ts = zip(*pts)
        grow = m["growth"].get(key, {})
        ax.semilogy(
            ns,
            ts,
            marker="o",
            label=f"{label} (x{grow.get('factor_per_mechanism', np.nan):.2f}/mechanism, "
            f"log-log slope {grow.get('loglog_slope', np.nan):.1f})",
        )
    ax.set_xlabel("mechanisms n")
    ax.set_ylabel("seconds (median)")
    ax.set_title(f"time vs mechanisms (N = {m['n_samples']:,})")
    ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(out_mechs, dpi=110)
    plt.close(fig)
    return [out_samples, out_mechs]


def plot_metrics(met: dict[str, Any], out: Path) -> Path:
    """Dice throughput (cases per second) of shiftattr and MONAI."""
    plt = _plt()
    bars = {
        "shiftattr dice (bool batch)": met.get("dice_batch_cases_per_s"),
        "shiftattr dice (per case)": met.get("dice_per_case_cases_per_s"),
    }
    monai = met.get("monai")
    if isinstance(monai, dict):
        bars["shiftattr dice (float tensors)"] = monai.get(
            "shiftattr_dice_on_same_float_tensors_cases_per_s"
        )
        bars["MONAI compute_dice"] = monai.get("compute_dice_cases_per_s")
        bars["plain torch sum Dice"] = monai.get("plain_torch_sum_dice_cases_per_s")
    bars = {k: v for k, v in bars.items() if v}
    fig, ax = plt.subplots(figsize=(7, 3.5))
    ax.barh(list(bars), list(bars.values()))
    ax.set_xscale("log")
    ax.set_xlabel("cases per second (higher is better)")
    shape = "x".join(map(str, met.get("shape", [])))
    ax.set_title(f"Dice throughput, {met.get('n_cases')} cases of {shape}")
    fig.tight_layout()
    fig.savefig(out, dpi=110)
    plt.close(fig)
    return out


def make_all(results_dir: Path = RESULTS_DIR) -> list[Path]:
    """Every figure whose results exist; returns the files written."""
    made: list[Path] = []
    acc = read_json("accuracy_tabular", results_dir)
    if acc and acc.get("summary"):
        made.append(plot_accuracy(acc, results_dir / "accuracy_mae.png"))
    sol = read_json("solvers", results_dir)
    if sol:
        made.append(plot_solvers(sol, results_dir / "solvers_rmse.png"))
    sc = read_json("scaling", results_dir)
    if sc:
        made += plot_scaling(
            sc, results_dir / "scaling_samples.png", results_dir / "scaling_mechanisms.png"
        )
    met = read_json("metrics", results_dir)
    if met:
        made.append(plot_metrics(met, results_dir / "metrics_throughput.png"))
    return made
