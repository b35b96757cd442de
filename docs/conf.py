"""Sphinx configuration of the shiftattr documentation.

Build (offline, warnings are errors)::

    sphinx-build -W --keep-going -b html docs docs/_build/html      # or: make docs

Environment variables:

``SHIFTATTR_DOCS_ONLINE=1``
    Enable intersphinx links to numpy, scipy, scikit-learn, torch and networkx (needs
    the internet to fetch their inventories). Off by default so that the offline build
    neither waits on the network nor warns about unreachable inventories.
``SHIFTATTR_DOCS_GALLERY=0``
    Do not execute the example gallery (quick edits of the prose pages): the example
    pages then show the code without its output and figures. Executed examples are
    cached in ``docs/auto_examples`` and only re-run when their source changes.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import sys
from pathlib import Path

DOCS = Path(__file__).resolve().parent
ROOT = DOCS.parent
sys.path.insert(0, str(ROOT / "src"))  # the package works without installing it
sys.path.insert(0, str(DOCS))  # _docs_helpers

# The examples train small models: one thread each keeps the build predictable on
# shared machines (set before numpy / torch are imported by autodoc or the gallery).
for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")
os.environ.setdefault("MPLBACKEND", "Agg")

import shiftattr

# -- project -------------------------------------------------------------------------
project = "shiftattr"
author = "shiftattr developers"
copyright = "shiftattr developers"
release = shiftattr.__version__
version = ".".join(release.split(".")[:2])

# -- extensions ----------------------------------------------------------------------
extensions = [
    "myst_parser",
    "sphinx.ext.autodoc",
    "sphinx.ext.autosummary",
    "numpydoc",
    "sphinx.ext.mathjax",
    "sphinx.ext.viewcode",
    "sphinx.ext.intersphinx",
    "sphinx_gallery.gen_gallery",
]

source_suffix = {".rst": "restructuredtext", ".md": "markdown"}
root_doc = "index"
templates_path = ["_templates"]
exclude_patterns = [
    "_build",
    "Thumbs.db",
    ".DS_Store",
    "auto_examples/*.ipynb",
    "auto_examples/*.py",
    "auto_examples/*.zip",
    "auto_examples/*.md5",
    "auto_examples/*.json",
    "sg_execution_times.rst",
]

# Unresolved references to types of other projects (``numpy.ndarray``, ``torch.nn.Module``)
# stay plain text instead of warning; intersphinx turns them into links when online.
nitpicky = False

# -- MyST (Markdown pages) -------------------------------------------------------------
myst_enable_extensions = [
    "dollarmath",  # $...$ and $$...$$
    "amsmath",  # \begin{align} ... \end{align}
    "colon_fence",  # ::: directives
    "deflist",
    "fieldlist",
    "attrs_inline",
]
myst_heading_anchors = 3
myst_dmath_double_inline = True

# -- API documentation: autosummary + autodoc + numpydoc -----------------------------------
autosummary_generate = True


def _clear_stale_autosummary() -> None:
    """Delete the generated API stubs when api.rst changed.

    autosummary writes one page per listed name into ``generated/`` but never deletes
    the page of a name that left the list; such an orphan fails a ``-W`` build with
    "document isn't included in any toctree".
    """
    generated = DOCS / "generated"
    digest = hashlib.sha256((DOCS / "api.rst").read_bytes()).hexdigest()
    stamp = generated / ".api.rst.sha256"
    if generated.is_dir() and (not stamp.is_file() or stamp.read_text() != digest):
        shutil.rmtree(generated)
    generated.mkdir(exist_ok=True)
    stamp.write_text(digest)


_clear_stale_autosummary()
autosummary_imported_members = False
autodoc_default_options = {"members": True, "member-order": "bysource"}
autodoc_typehints = "none"  # numpydoc docstrings already state the types
autoclass_content = "class"
# numpydoc renders the sections; the class templates list the members themselves.
numpydoc_show_class_members = False
numpydoc_show_inherited_class_members = False
numpydoc_class_members_toctree = False
numpydoc_attributes_as_param_list = True
numpydoc_xref_param_type = False
numpydoc_validation_checks: set[str] = set()

# -- intersphinx: online only ------------------------------------------------------------
_ONLINE = os.environ.get("SHIFTATTR_DOCS_ONLINE", "0") == "1"
intersphinx_mapping = (
    {
        "python": ("https://docs.python.org/3", None),
        "numpy": ("https://numpy.org/doc/stable/", None),
        "scipy": ("https://docs.scipy.org/doc/scipy/", None),
        "sklearn": ("https://scikit-learn.org/stable/", None),
        "torch": ("https://docs.pytorch.org/docs/stable/", None),
        "networkx": ("https://networkx.org/documentation/stable/", None),
        "pandas": ("https://pandas.pydata.org/docs/", None),
        "matplotlib": ("https://matplotlib.org/stable/", None),
    }
    if _ONLINE
    else {}
)
intersphinx_timeout = 10

# -- example gallery (sphinx-gallery) ----------------------------------------------------
_RUN_GALLERY = os.environ.get("SHIFTATTR_DOCS_GALLERY", "1") != "0"
_EXAMPLES = ROOT / "examples"
_GALLERY_HEADERS = ("GALLERY_HEADER.rst", "GALLERY_HEADER.txt", "README.rst", "README.txt")
_DEFAULT_HEADER = """\
Example gallery
===============

Every example runs end to end on synthetic data when the documentation is built, with
the small default settings of its command-line interface (pass ``--full`` when running
it by hand for the larger settings). Figures and printed output below are from that run.
"""


def _examples_dir() -> Path:
    """The folder sphinx-gallery reads: ``examples/``, or a staged copy with a header.

    sphinx-gallery requires a header file in the examples folder; if ``examples/`` has
    none, the ``plot_*.py`` files are copied with a default header into ``_build``.
    """
    if any((_EXAMPLES / h).is_file() for h in _GALLERY_HEADERS):
        return _EXAMPLES
    staged = DOCS / "_build" / "gallery_src"
    if staged.exists():
        shutil.rmtree(staged)
    staged.mkdir(parents=True)
    for path in sorted(_EXAMPLES.glob("*.py")):
        shutil.copy2(path, staged / path.name)  # copy2 keeps mtimes: no needless re-runs
    (staged / "GALLERY_HEADER.rst").write_text(_DEFAULT_HEADER)
    return staged


sphinx_gallery_conf = {
    "examples_dirs": os.path.relpath(_examples_dir(), DOCS),
    "gallery_dirs": "auto_examples",
    "filename_pattern": r"plot_",
    "ignore_pattern": r"(__init__|conftest|_helpers?)\.py",
    "plot_gallery": "True" if _RUN_GALLERY else "False",
    "run_stale_examples": False,
    "reset_argv": "_docs_helpers.example_argv",  # examples write under _build
    "download_all_examples": False,
    "remove_config_comments": True,
    "within_subsection_order": "FileNameSortKey",
    "matplotlib_animations": False,
    "image_scrapers": ("matplotlib",),
    "capture_repr": ("_repr_html_", "__repr__"),
    "show_memory": False,
    "min_reported_time": 1,
    "backreferences_dir": None,
    "write_computation_times": True,
}

# -- HTML ----------------------------------------------------------------------------------
html_theme = "furo"
html_title = f"shiftattr {release}"
html_static_path: list[str] = []
html_show_sourcelink = False

# Every warning is an error in ``make docs`` (-W); none is silenced.
suppress_warnings: list[str] = []


def _skip_member(app, what, name, obj, skip, options):
    """Leave out scikit-learn's generated metadata-routing setters (``set_fit_request``).

    They are inherited descriptors of every estimator, not shiftattr API, and their
    docstrings refer to scikit-learn's glossary. Likewise pydantic's class-level
    ``model_config`` of the configuration and simulator specification models.
    """
    if name.startswith("set_") and name.endswith("_request"):
        return True
    if name in {"model_config", "model_fields", "model_computed_fields"}:
        return True
    return None


_BENCH_RESULTS = ROOT / "benchmarks" / "RESULTS.md"
_BENCH_MARKER = "<!-- shiftattr-docs: benchmark results -->"
_BENCH_MISSING = """\
```{note}
`benchmarks/RESULTS.md` has not been generated in this checkout. Regenerate it (and
the figures it shows) from the repository root with

    make bench                       # python benchmarks/run.py --quick
    python benchmarks/run.py         # the full settings

then rebuild the documentation: this section includes the file as it is.
```
"""


def _include_benchmark_results(app, docname, source):
    """Put ``benchmarks/RESULTS.md`` into the validation page, or say how to make it."""
    if docname != "validation" or _BENCH_MARKER not in source[0]:
        return
    if _BENCH_RESULTS.is_file():
        rel = os.path.relpath(_BENCH_RESULTS, DOCS)
        block = f"```{{include}} {rel}\n:relative-images:\n:heading-offset: 2\n```\n"
    else:
        block = _BENCH_MISSING
    source[0] = source[0].replace(_BENCH_MARKER, block)


def _reread_validation(app, env, added, changed, removed):
    """Re-read the validation page every build: benchmarks/RESULTS.md may have appeared."""
    return ["validation"] if "validation" in env.found_docs else []


def setup(app):
    app.connect("source-read", _include_benchmark_results)
    app.connect("env-get-outdated", _reread_validation)
    app.connect("autodoc-skip-member", _skip_member)
