"""Report folders: ``attribution.json``, a CSV table, PNG figures and one HTML page."""

from __future__ import annotations

import base64
import csv
import hashlib
import html
import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from shiftattr.metric_range import describe_metric_range
from shiftattr.results import (
    Attribution,
    _closure_text,
    _ess_all_text,
    _estimator_line,
    _long_labels,
    _name_ticks,
    _num_or_nan,
    ci_label,
    interval_note,
    wording,
)

__all__ = ["TRUTH_KEY", "attribution_fingerprint", "read_truth", "write_report"]

#: Key of ``truth.json`` holding the fingerprint of the ``attribution.json`` it belongs to.
TRUTH_KEY = "attribution_sha256"


def attribution_fingerprint(text: str) -> str:
    """The SHA-256 of an ``attribution.json`` text: ties a ``truth.json`` to its result.

    Parameters
    ----------
    text : str
        The JSON text as :meth:`Attribution.to_json` writes it.

    Returns
    -------
    str
        64 hexadecimal digits.

    Examples
    --------
    >>> attribution_fingerprint('{"mechanisms": ["X"]}')[:12]
    'dd0d738a0164'
    """
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def read_truth(attribution_path: str | Path) -> tuple[dict[str, Any] | None, str | None]:
    """The ``truth.json`` beside ``attribution_path``, if it belongs to that result.

    :func:`write_report` stamps the truth with the fingerprint of the result it wrote
    with it, and removes it when it writes a result without a truth; a ``truth.json``
    whose stamp does not match the ``attribution.json`` (copied or edited files) is not
    used, so a report never shows another run's ground truth as this one's.

    Parameters
    ----------
    attribution_path : str or Path
        An ``attribution.json``.

    Returns
    -------
    truth : dict or None
        The ground truth (``TrueAttribution.to_dict()``), or None.
    note : str or None
        Why a ``truth.json`` that exists was not used, or None.

    Examples
    --------
    >>> import tempfile
    >>> read_truth(Path(tempfile.mkdtemp()) / "attribution.json")
    (None, None)
    """
    path = Path(attribution_path)
    truth_path = path.with_name("truth.json")
    if not truth_path.is_file():
        return None, None
    truth = json.loads(truth_path.read_text(encoding="utf-8"))
    stamp = truth.get(TRUTH_KEY)
    if stamp != attribution_fingerprint(path.read_text(encoding="utf-8")):
        why = "written for another result" if stamp else "not stamped with the result it belongs to"
        return None, f"{truth_path} was not used: it is {why} (rerun to write a matching truth)"
    return truth, None


def _weighted_cases(result: Attribution) -> str:
    """What the ESS fraction is a fraction of: the source's cases, or (``method="mis"``)
    the source's and the target's together."""
    overall = result.diagnostics.get("overall", {})
    n_source, n_weighted = overall.get("n_source"), overall.get("n_weighted")
    if n_source is not None and n_weighted is not None and n_weighted != n_source:
        return "source + target cases"
    return "source cases"


def _figures(result: Attribution, truth: Mapping[str, float] | None, folder: Path) -> list[Path]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    paths = []
    ax = result.plot(truth=truth)
    ax.figure.tight_layout()
    paths.append(folder / "attribution.png")
    ax.figure.savefig(paths[-1], dpi=110)
    plt.close(ax.figure)

    per = result.diagnostics.get("mechanisms", {})
    if per:
        mechs = list(result.mechanisms)
        tall = 3.4 if _long_labels(mechs) else 2.8  # room for tilted names
        fig, (a1, a2) = plt.subplots(1, 2, figsize=(max(7.5, 1.2 * len(mechs) + 1.5), tall))
        xs = range(len(mechs))

        def diag(m: str, key: str) -> float:  # NaN where not computed (null in JSON)
            return _num_or_nan(per.get(m, {}).get(key))

        a1.bar(xs, [diag(m, "auc_joint") for m in mechs], color="#7d3c98")
        a1.axhline(0.5, color="k", lw=0.8, ls="--")
        a1.set_ylim(0.4, 1.0)
        a1.set_title("out-of-fold discriminator AUC", fontsize=9)
        a2.bar(xs, [100 * diag(m, "ess_fraction") for m in mechs], color="#138d75")
        a2.set_ylim(0, 100)
        a2.set_title(f"effective sample size (% of {_weighted_cases(result)})", fontsize=9)
        for a in (a1, a2):
            _name_ticks(a, mechs)
        fig.tight_layout()
        paths.append(folder / "diagnostics.png")
        fig.savefig(paths[-1], dpi=110)
        plt.close(fig)
    return paths


def write_report(
    result: Attribution,
    folder: str | Path,
    truth: Mapping[str, Any] | None = None,
    title: str | None = None,
    figures: bool = True,
    remove_stale_truth: bool = True,
) -> Path:
    """Write a report folder for ``result`` and return the HTML page's path.

    Writes ``attribution.json`` (re-readable with :meth:`Attribution.from_json`),
    ``attribution.csv`` (one row per mechanism), ``attribution.png`` and
    ``diagnostics.png`` (when matplotlib is installed), ``truth.json`` (when a ground
    truth is given, stamped with the result's fingerprint, see :func:`read_truth`; a
    ``truth.json`` already in the folder is removed when none is given, unless
    ``remove_stale_truth`` is False) and a
    self-contained ``report.html`` (figures embedded), all text in UTF-8. The page words the values as :meth:`Attribution.summary` does (its sign
    note follows :attr:`Attribution.higher_is_better`) and shows the same closure check
    (with its interval), effective sample size and value-estimator line.

    Parameters
    ----------
    result : Attribution
    folder : str or Path
        Created if missing; files in it with these names are replaced.
    truth : mapping, optional
        Ground truth as ``TrueAttribution.to_dict()`` (needs ``"values"``), shown
        beside the estimates with the error.
    title : str, optional
        Default ``"shiftattr: source → target (metric)"`` from the result's settings, as
        ``shiftattr run`` writes it and ``shiftattr report`` rebuilds it.
    figures : bool, default True
        Draw PNG figures (needs matplotlib).
    remove_stale_truth : bool, default True
        Without ``truth``, remove a ``truth.json`` already in the folder (an earlier
        run's). False keeps it: :func:`read_truth` will not pair it with this result
        unless its stamp matches (``shiftattr report`` keeps one it could not use).

    Returns
    -------
    pathlib.Path
        The HTML report.

    Examples
    --------
    >>> import tempfile
    >>> res = Attribution(mechanisms=("X",), values={"X": 0.1}, ci={"X": (0.05, 0.15)},
    ...                   stderr={"X": 0.02}, source_metric=0.8, estimated_target_metric=0.7)
    >>> page = write_report(res, tempfile.mkdtemp(), figures=False)
    >>> page.name
    'report.html'
    """
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    text = result.to_json(folder / "attribution.json")
    truth_values = dict(truth["values"]) if truth else None
    if truth:
        stamped = {**dict(truth), TRUTH_KEY: attribution_fingerprint(text)}
        (folder / "truth.json").write_text(
            json.dumps(stamped, indent=2, default=str), encoding="utf-8"
        )
    elif remove_stale_truth:  # a truth left by an earlier run here is not this result's
        (folder / "truth.json").unlink(missing_ok=True)
    rows = result.to_records()
    for r in rows:
        r["truth"] = truth_values.get(r["mechanism"]) if truth_values else None
        r["error"] = None if r["truth"] is None else r["value"] - r["truth"]
    with open(folder / "attribution.csv", "w", newline="", encoding="utf-8") as fh:
        writer = csv.DictWriter(fh, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    images = []
    if figures:
        try:
            images = _figures(result, truth_values, folder)
        except ImportError:
            images = []
    page = folder / "report.html"
    page.write_text(_html(result, rows, images, truth, title), encoding="utf-8")
    return page


def _num(x: Any, fmt: str = "{:+.4f}") -> str:
    if x is None:
        return "—"
    try:
        if x != x:  # NaN
            return "—"
        return fmt.format(x)
    except (TypeError, ValueError):
        return html.escape(str(x))


def _html(
    result: Attribution,
    rows: list[dict[str, Any]],
    images: list[Path],
    truth: Mapping[str, Any] | None,
    title: str | None,
) -> str:
    s = result.settings
    name = html.escape(result.metric_name)
    title = html.escape(
        title
        or f"shiftattr: {s.get('source', 'source')} → {s.get('target', 'target')} "
        f"({result.metric_name})"
    )
    head = [
        "mechanism",
        "value",
        ci_label(s),
        "truth",
        "error",
        "AUC joint",
        "AUC parents",
        "ESS",
        "max w",
        "Pareto k",
    ]
    body = []
    for r in rows:
        body.append(
            "<tr>"
            + "".join(
                f"<td>{c}</td>"
                for c in (
                    html.escape(r["mechanism"]),
                    _num(r["value"]),
                    f"[{_num(r['ci_low'])}, {_num(r['ci_high'])}]",
                    _num(r["truth"]),
                    _num(r["error"]),
                    _num(r["auc_joint"], "{:.3f}"),
                    _num(r["auc_parents"], "{:.3f}"),
                    _num(r["ess"], "{:.0f}"),
                    _num(r["max_weight"], "{:.1f}"),
                    _num(r.get("pareto_k"), "{:.2f}"),
                )
            )
            + "</tr>"
        )
    imgs = "".join(
        f'<img alt="{p.stem}" src="data:image/png;base64,'
        f'{base64.b64encode(p.read_bytes()).decode()}">'
        for p in images
    )
    warns = (
        "<ul>"
        + "".join(
            f"<li><b>{html.escape(w['code'])}</b>: {html.escape(w['message'])}</li>"
            for w in result.warnings
        )
        + "</ul>"
        if result.warnings
        else "<p>No diagnostic warnings.</p>"
    )
    words = wording(result.higher_is_better, result.metric_name)
    measured = (
        ""
        if result.measured_target_metric is None
        else f"<li>{name} on target, measured: {result.measured_target_metric:.4f} "
        f"({html.escape(_closure_text(result))})</li>"
    )
    ess_all = _ess_all_text(result.diagnostics.get("overall", {}))
    ess_line = (
        "" if ess_all is None else f"<li>ESS, all mechanisms shifted: {html.escape(ess_all)}</li>"
    )
    beyond = describe_metric_range(result.diagnostics.get("metric_range"), result.metric_name)
    if beyond is not None:
        ess_line = f"<li>beyond the source's range: {html.escape(beyond)}</li>" + ess_line
    estimator = html.escape(_estimator_line(s, result.diagnostics.get("estimator", {})))
    truth_line = (
        ""
        if not truth
        else f"<li>ground truth from direct simulation (n = {truth.get('n', '—')} per "
        "coalition, common random numbers)</li>"
    )
    settings = html.escape(json.dumps(s, indent=2, default=str))
    fixed = interval_note(s)
    note = "" if fixed is None else f"<li><b>Note</b>: {html.escape(fixed)}.</li>"
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>{title}</title>
<style>
body {{ font-family: system-ui, sans-serif; max-width: 980px; margin: 2em auto; color: #222; }}
table {{ border-collapse: collapse; }} td, th {{ border: 1px solid #bbb; padding: 4px 8px; text-align: right; }}
th {{ background: #eee; }} td:first-child {{ text-align: left; }}
img {{ max-width: 100%; margin: 0.5em 0; }} pre {{ background: #f6f6f6; padding: 1em; overflow: auto; }}
</style></head><body>
<h1>{title}</h1>
<p><i>{html.escape(words.sign_note)}.</i> Metric: {name}.</p>
<table><tr>{"".join(f"<th>{h}</th>" for h in head)}</tr>{"".join(body)}</table>
<ul>
<li>{name} on source: {result.source_metric:.4f}</li>
<li>{name} on target, estimated (all mechanisms shifted): {result.estimated_target_metric:.4f}
({words.total} {_num(result.total)})</li>
{measured}{ess_line}<li>{estimator}</li>{truth_line}{note}
</ul>
<h2>Figures</h2>{imgs or "<p>(matplotlib not installed: no figures)</p>"}
<h2>Warnings</h2>{warns}
<h2>Settings</h2><pre>{settings}</pre>
</body></html>
"""
