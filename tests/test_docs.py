"""The documentation: it builds without warnings, lists every public name, and what it
states (code snippets, configuration example, the closed-form check) holds."""

from __future__ import annotations

import importlib
import importlib.util
import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[1]
DOCS = ROOT / "docs"

#: Modules whose ``__all__`` must be fully covered by docs/api.rst.
PUBLIC_MODULES = [
    "shiftattr",
    "shiftattr.attribution",
    "shiftattr.results",
    "shiftattr.weighting",
    "shiftattr.pairwise",
    "shiftattr.ratios",
    "shiftattr.shapley",
    "shiftattr.datasets",
    "shiftattr.value",
    "shiftattr.datasets.synthetic_ms",
    "shiftattr.metrics",
    "shiftattr.segmentation",
    "shiftattr.config",
    "shiftattr.report",
    "shiftattr.pipeline",
    "shiftattr.cli",
]

#: Pages the built HTML must contain.
KEY_PAGES = [
    "index.html",
    "getting_started.html",
    "method.html",
    "estimators.html",
    "validation.html",
    "tutorials/scanner_shift.html",
    "tutorials/annotator_shift.html",
    "tutorials/your_data.html",
    "api.html",
    "changelog.html",
    "references.html",
    "auto_examples/index.html",
    "auto_examples/plot_tabular_quickstart.html",
    "auto_examples/plot_experiment_a.html",
    "auto_examples/plot_experiment_b.html",
    "auto_examples/plot_saved_predictions.html",
    "generated/shiftattr.attribute.html",
    "generated/shiftattr.Attribution.html",
    "generated/shiftattr.ratios.CNNDiscriminator.html",
    "generated/shiftattr.segmentation.SegmentationAdapter.html",
]


def _has(*modules: str) -> bool:
    return all(importlib.util.find_spec(m) is not None for m in modules)


def _documented_names() -> set[str]:
    """Fully qualified names listed in the autosummary tables of docs/api.rst."""
    names: set[str] = set()
    module = None
    in_table = False
    for line in (DOCS / "api.rst").read_text().splitlines():
        m = re.match(r"\.\. currentmodule:: (\S+)", line)
        if m:
            module = m.group(1)
            continue
        if line.startswith(".. autosummary::"):
            in_table = True
            continue
        if in_table:
            stripped = line.strip()
            if not stripped or stripped.startswith(":"):
                continue
            if not line.startswith("   "):
                in_table = False
                continue
            names.add(f"{module}.{stripped.lstrip('~')}")
    return names


def _resolve(fullname: str):
    parts = fullname.split(".")
    for i in range(len(parts), 0, -1):
        try:
            obj = importlib.import_module(".".join(parts[:i]))
        except ImportError:
            continue
        for attr in parts[i:]:
            obj = getattr(obj, attr)
        return obj
    raise ImportError(fullname)


def _code_blocks(page: Path, language: str) -> list[str]:
    return re.findall(rf"```{language}\n(.*?)```", page.read_text(), flags=re.S)


def test_written_pages_hold_no_control_characters():
    """A backslash escape eaten on the way in (``\\tanh`` written as a tab and "anh") is
    invisible in an editor and renders as broken maths."""
    pages = [*DOCS.rglob("*.md"), ROOT / "README.md", ROOT / "CHANGELOG.md"]
    pages = [p for p in pages if "_build" not in p.parts]
    bad = [
        f"{p.relative_to(ROOT)}:{i}"
        for p in pages
        for i, line in enumerate(p.read_text(encoding="utf-8").split("\n"), 1)
        if re.search(r"[\x00-\x08\x0b-\x1f\x7f\x85\u2028\u2029]|\t", line.rstrip("\r"))
    ]
    assert not bad, f"control characters (a tab, or an escape like \\t or \\f eaten) at {bad}"


def test_api_reference_lists_every_public_name():
    documented = {name: _resolve(name) for name in _documented_names()}
    ids = {id(obj) for obj in documented.values()}
    missing = []
    for modname in PUBLIC_MODULES:
        if modname == "shiftattr.segmentation" and not _has("torch"):
            continue
        module = importlib.import_module(modname)
        for name in getattr(module, "__all__", []):
            obj = getattr(module, name)
            if name == "__version__" or type(obj).__name__ == "module":
                continue
            if f"{modname}.{name}" not in documented and id(obj) not in ids:
                missing.append(f"{modname}.{name}")
    assert not missing, f"public names missing from docs/api.rst: {missing}"


def test_toml_example_of_the_tutorial_is_a_valid_configuration():
    from shiftattr.config import load_config

    if sys.version_info >= (3, 11):
        import tomllib
    else:  # pragma: no cover
        import tomli as tomllib

    blocks = _code_blocks(DOCS / "tutorials" / "your_data.md", "toml")
    kinds = []
    for text in blocks:
        cfg = load_config(tomllib.loads(text))
        kinds.append((cfg.data.kind, cfg.model.kind))
        if cfg.data.kind == "msseg2016":  # the complete example
            assert cfg.attribution.discriminator.epochs == 12
        if cfg.model.kind == "predictions":  # saved masks and probabilities, per site
            assert cfg.data.source.probabilities and cfg.data.target.predictions is not None
        elif cfg.data.kind == "nnunet":  # one dataset split into two sites
            assert cfg.data.source.cases and cfg.data.target.cases_file is not None
    expected = [("msseg2016", "checkpoint"), ("nnunet", "checkpoint"), ("nnunet", "predictions")]
    assert sorted(kinds) == expected, (
        f"docs/tutorials/your_data.md's TOML examples are of kinds {kinds}: the complete "
        "MSSEG-2016 example, the nnU-Net split and the saved predictions were expected"
    )


def test_closed_form_truth_matches_simulation_as_the_validation_page_states():
    """docs/validation.md: the LinearGaussianSCM closed form agrees with simulation."""
    import shiftattr as sa
    from shiftattr.datasets import all_coalitions, shapley_from_table

    n = 200_000
    for metric in ("hit", "squared_error", "absolute_error"):
        scm = sa.datasets.LinearGaussianSCM.example(metric=metric)
        truth = scm.true_attribution()
        base = scm.metric(scm.sample_mixed(n, (), random_state=11))
        table = {}
        for coalition in all_coalitions(scm.nodes):
            m = scm.metric(scm.sample_mixed(n, coalition, random_state=11))
            z = (m.mean() - scm.expected_metric(coalition)) / (m.std(ddof=1) / np.sqrt(n))
            assert abs(z) < 4.5, (metric, coalition, z)
            d = base - m  # paired by common random numbers
            if coalition:
                z_d = (d.mean() - truth.delta_m[coalition]) / (d.std(ddof=1) / np.sqrt(n))
                assert abs(z_d) < 4.5, (metric, coalition, z_d)
            table[coalition] = d.mean()
        simulated = shapley_from_table(scm.nodes, table)
        for mech in scm.nodes:
            assert abs(simulated[mech] - truth.values[mech]) < 0.01, (metric, mech)
        assert sum(truth.values.values()) == pytest.approx(truth.total, abs=1e-12)


def test_validation_check_snippet_values_are_the_documented_ones():
    """The exact numbers printed in docs/validation.md come from the library."""
    import shiftattr as sa

    scm = sa.datasets.LinearGaussianSCM.example(metric="hit")
    text = (DOCS / "validation.md").read_text()
    for coalition in [(), ("Z",), ("X",), ("Y",), ("Z", "X", "Y")]:
        assert f"{scm.expected_metric(coalition):.5f}" in text, coalition
    truth = scm.true_attribution()
    for mech in ("Z", "X", "Y"):
        assert f"{truth.values[mech]:.5f}" in text, mech


@pytest.mark.slow
def test_getting_started_snippets_run(tmp_path, monkeypatch):
    """Every Python block of docs/getting_started.md runs, in order, in one namespace."""
    import matplotlib

    monkeypatch.chdir(tmp_path)  # the snippets write attribution.json

    matplotlib.use("Agg")
    blocks = _code_blocks(DOCS / "getting_started.md", "python")
    assert len(blocks) >= 3
    namespace: dict = {}
    for code in blocks:
        exec(compile(code, str(DOCS / "getting_started.md"), "exec"), namespace)
    result = namespace["result"]
    assert set(result.values) == {"age", "marker"}  # the last block: your own table


@pytest.mark.slow
@pytest.mark.skipif(
    not _has("sphinx", "furo", "myst_parser", "sphinx_gallery", "numpydoc", "matplotlib"),
    reason="needs the docs extra: pip install -e '.[docs]'",
)
def test_docs_build_without_warnings(tmp_path):
    """``sphinx-build -W --keep-going -b html docs OUT`` succeeds and writes the key pages.

    The gallery examples are executed (sphinx-gallery caches them in docs/auto_examples,
    so only changed examples run again).
    """
    out = tmp_path / "html"
    env = {**os.environ, "SHIFTATTR_DOCS_ONLINE": "0"}
    env.pop("SHIFTATTR_DOCS_GALLERY", None)
    proc = subprocess.run(
        [sys.executable, "-m", "sphinx", "-W", "--keep-going", "-b", "html", str(DOCS), str(out)],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=3600,
    )
    assert proc.returncode == 0, (
        f"sphinx-build failed (exit {proc.returncode}):\n{proc.stdout[-4000:]}\n{proc.stderr[-8000:]}"
    )
    missing = [page for page in KEY_PAGES if not (out / page).is_file()]
    assert not missing, f"pages missing from the build: {missing}"
    example_b = (out / "auto_examples" / "plot_experiment_b.html").read_text()
    assert "Attribution of the change in Dice" in example_b, "experiment B did not run"
