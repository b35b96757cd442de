"""Every public name has a numpydoc docstring with a runnable example (issue 5).

The public names are those listed in ``shiftattr.__all__`` and in the ``__all__`` of every
module and subpackage under ``src/shiftattr`` (private modules included: their ``__all__``
is what their siblings import). For each public class, the public methods and properties
it defines in this package (or inherits from another class of this package) are checked
too. Each must have a docstring with

* an ``Examples`` section holding at least one ``>>>`` line (the suite runs them with
  ``--doctest-modules``);
* a ``Parameters`` section when the callable takes parameters (``self``/``cls`` aside). A
  class is documented by its own docstring (numpydoc style), with the parameters of its
  constructor; for a constructor generated from fields (dataclass, ``NamedTuple``,
  pydantic model), an ``Attributes`` section describing the fields also counts;
* a ``Returns`` (or, for a generator, ``Yields``) section when a function or method
  returns something: its return annotation is not ``None`` or, unannotated, its body has
  a ``return <value>`` or a ``yield``.

Not checked: dunder methods (``__getitem__`` and friends are documented by the class),
private names (leading underscore), pydantic internals (validators, ``model_*``) and
everything inherited from other packages (``ValueError``, ``BaseEstimator``,
``torch.nn.Module``, ``pydantic.BaseModel``).

Public names that are data (constants, type aliases, the version string) cannot carry a
docstring of their own; each is listed in :data:`DATA_NAMES` with the reason, and the test
fails on an unlisted one (and on a listed one that no longer exists), so nothing is
exempted silently.

All the problems are reported together in one failure message, one line per name.
"""

from __future__ import annotations

import ast
import dataclasses
import importlib
import inspect
import pkgutil
import re
import textwrap
import warnings
from collections.abc import Callable, Iterator
from types import ModuleType
from typing import Any

import shiftattr

#: Public names that are data, not classes or functions, so they have no ``__doc__`` of
#: their own. Key: the dotted path under which an ``__all__`` lists the name (any one
#: of them when several modules re-export it). Value: why it is exempt.
DATA_NAMES: dict[str, str] = {
    "shiftattr.__version__": "a str; the version is the package metadata's",
    "shiftattr.ratios.image_axes.THIN_VOLUME_DEPTH": "an int; attribute comment at its definition",
    "shiftattr.ratios.image_axes.MAX_IMAGE_CHANNELS": "an int; attribute comment at its definition",
    "shiftattr.ratios.cnn.AUTO_GRID_SIZE": "an int; attribute comment at its definition",
    "shiftattr.segmentation.adapter.CACHE_MEMORY_FRACTION": (
        "a float; attribute comment at its definition"
    ),
    "shiftattr.metric_range.METRIC_RANGE_ALPHA": "a float; attribute comment at its definition",
    "shiftattr.metric_range.METRIC_RANGE_MIN_SHARE": (
        "a float; attribute comment at its definition"
    ),
    "shiftattr.segmentation.probability_maps.NNUNET_PROBABILITY_KEY": (
        "a str key of nnU-Net's .npz; attribute comment at its definition"
    ),
    "shiftattr.segmentation.saved_predictions.MIN_PROBABILITY_CONTRAST": (
        "a float; attribute comment at its definition"
    ),
    "shiftattr.report.TRUTH_KEY": "a str key of truth.json; attribute comment at its definition",
    "shiftattr.metrics.METRICS": (
        "read-only mapping name -> metric function; attribute docstring below its definition, "
        "example in the shiftattr.metrics module docstring"
    ),
    "shiftattr.metrics.MetricFunction": "typing.Callable alias; attribute docstring",
    "shiftattr.metrics.HIGHER_IS_BETTER": (
        "dict name -> bool; attribute docstring below its definition, example in the "
        "shiftattr.metrics module docstring"
    ),
    "shiftattr.metrics.empty.EMPTY_PRESETS": "tuple of str; attribute docstring",
    "shiftattr.metrics.empty.EmptySpec": "type alias (union); attribute docstring",
    "shiftattr.ratios.base.Features": "typing.Mapping alias; ``#:`` comment",
    "shiftattr.ratios.crossfit.CONDITIONAL_RATIOS": "tuple of str; ``#:`` comment",
    "shiftattr.ratios.offset.QUADRATIC_MAX_FEATURES": "int; ``#:`` comment with the reason",
    "shiftattr.ratios.shared_cases.MIN_DISTINCT": "float; ``#:`` comment with the reason",
    "shiftattr.value.choice.MANY_REGRESSION_MECHANISMS": "an int; ``#:`` comment with the reason",
    "shiftattr.ratios.image_quality.QUALITY_STATISTICS": "tuple of str; ``#:`` comment",
    "shiftattr.ratios.image_stats.IMAGE_STATISTICS": "tuple of str; ``#:`` comment",
    "shiftattr.segmentation.MSSEG2016_MODALITIES": "tuple of str; attribute docstring",
    "shiftattr.value.regressors.REGRESSION_BOOSTING_PARAMS": (
        "dict of boosting settings; ``#:`` comment with the measured reason"
    ),
    "shiftattr.value.ESTIMATORS": "tuple of str; ``#:`` comment, listed in attribute()",
    "shiftattr.value.WEIGHTING_METHODS": "tuple of str; ``#:`` comment, the ``shift_not_separated`` rule",
    "shiftattr.value.generative.DISCRETE_MAX_LEVELS": "int; ``#:`` comment, example in is_discrete",
    "shiftattr.value.generative.SCALE_MIN_R2": "float; ``#:`` comment, used in fit_sampler",
    "shiftattr.value.generative.SIMULATION_BATCHES": "int; ``#:`` comment, module docstring",
    "shiftattr.value.Featurizer": "typing.Callable alias; ``#:`` comment",
    "shiftattr.value.PairedSpec": "type alias (union); ``#:`` comment, example in paired_keys",
    "shiftattr.segmentation.MASK_FEATURE_NAMES": (
        "tuple of str; ``#:`` comment, example in mask_features"
    ),
    "shiftattr.segmentation.AGREEMENT_FEATURE_NAMES": (
        "tuple of str; ``#:`` comment, named in mask_agreement's Returns"
    ),
    "shiftattr.segmentation.PREPROCESSORS": (
        "dict name -> function; ``#:`` comment, the names model.preprocess accepts"
    ),
    "shiftattr.datasets.ANNOTATOR_PRESETS": "dict of AnnotatorSpec; ``#:`` comment",
    "shiftattr.datasets.CENTER_PRESETS": "dict of CenterSpec; ``#:`` comment",
    "shiftattr.datasets.POPULATION_PRESETS": "dict of PopulationSpec; ``#:`` comment",
    "shiftattr.datasets.synthetic_ms.D_COLUMNS": "tuple of str; ``#:`` comment",
    "shiftattr.datasets.synthetic_ms.SIMULATOR_VERSION": "an int; ``#:`` comment",
    "shiftattr.datasets.synthetic_ms.NODE_MECHANISMS": "dict node -> mechanism; ``#:`` comment",
}

#: Third-party packages whose absence makes a module of the optional ``images`` extra
#: unimportable; those modules are then left out (with a warning), not failed.
OPTIONAL_DEPENDENCIES = frozenset({"torch", "nibabel"})

_VOID_RETURNS = frozenset({"None", "NoReturn", "Never", "typing.NoReturn", "typing.Never"})
_GENERATOR_RETURNS = re.compile(r"^(typing\.|collections\.abc\.)?(Iterator|Generator|Iterable)\b")
_SECTION = re.compile(r"^(?P<title>[A-Z][A-Za-z ]+)\n-{3,}[ \t]*$", re.MULTILINE)


# --------------------------------------------------------------------------- discovery
def _modules() -> tuple[list[ModuleType], list[str]]:
    """All modules of the package, and the names of those an optional extra is missing for."""
    modules = [shiftattr]
    skipped = []
    for info in pkgutil.walk_packages(shiftattr.__path__, prefix="shiftattr."):
        try:
            modules.append(importlib.import_module(info.name))
        except ImportError as exc:
            if (exc.name or "").split(".")[0] in OPTIONAL_DEPENDENCIES:
                skipped.append(f"{info.name} (needs {exc.name})")
            else:
                raise
    return modules, skipped


def _is_ours(obj: Any) -> bool:
    return (getattr(obj, "__module__", None) or "").split(".")[0] == "shiftattr"


def _public_objects() -> tuple[dict[int, tuple[str, Any]], dict[str, list[str]], list[str]]:
    """Classes and functions listed in some ``__all__``, the data names, skipped modules.

    Returns ``({id: (canonical dotted name, object)}, {data path: [paths]}, skipped)``;
    an object listed by several modules (a re-export) appears once, under the module
    and qualified name where it is defined.
    """
    modules, skipped = _modules()
    objects: dict[int, tuple[str, Any]] = {}
    data: dict[int, list[str]] = {}
    for module in modules:
        for name in getattr(module, "__all__", ()):
            obj = getattr(module, name)  # an AttributeError here is a broken __all__
            path = f"{module.__name__}.{name}"
            if inspect.ismodule(obj):
                continue  # walked as a module of its own
            if (inspect.isclass(obj) or inspect.isroutine(obj)) and _is_ours(obj):
                objects[id(obj)] = (f"{obj.__module__}.{obj.__qualname__}", obj)
            else:
                data.setdefault(id(obj), []).append(path)
    data_paths = {min(paths): sorted(paths) for paths in data.values()}
    return objects, data_paths, skipped


def _class_members(cls: type) -> Iterator[tuple[str, Any, type]]:
    """Public methods and properties of ``cls`` defined in this package: ``(name, attr, owner)``."""
    seen: set[str] = set()
    for owner in cls.__mro__:
        if not _is_ours(owner):
            continue
        pydantic_decorators = getattr(owner, "__pydantic_decorators__", None)
        for name, attr in vars(owner).items():
            if name.startswith("_") or name in seen:
                continue
            seen.add(name)
            if pydantic_decorators is not None and _is_pydantic_decorator(
                pydantic_decorators, name
            ):
                continue  # a validator or serializer: called by pydantic, not by users
            if (
                isinstance(attr, (staticmethod, classmethod, property))
                or inspect.isfunction(attr)
                or (hasattr(attr, "__set_name__") and hasattr(attr, "func"))
            ):
                yield name, attr, owner


def _is_pydantic_decorator(decorators: Any, name: str) -> bool:
    groups = dataclasses.fields(decorators) if dataclasses.is_dataclass(decorators) else ()
    return any(name in getattr(decorators, group.name, {}) for group in groups)


# --------------------------------------------------------------------------- parsing
def _sections(doc: str) -> dict[str, str]:
    """Section title -> body of a numpydoc docstring (the summary is under ``""``)."""
    try:
        from numpydoc.docscrape import NumpyDocString
    except ImportError:  # numpydoc is in the docs extra; fall back to the headers
        return _sections_by_headers(doc)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # unknown sections: checked by the docs build
        parsed = NumpyDocString(doc)
    sections = {"": "\n".join(parsed["Summary"] + parsed["Extended Summary"])}
    for title in ("Parameters", "Other Parameters", "Attributes", "Returns", "Yields"):
        items = parsed[title]
        if items:
            sections[title] = "\n".join(
                f"{item.name} : {item.type}".rstrip(" :")
                + "".join(f"\n    {line}" for line in item.desc)
                for item in items
            )
    if parsed["Examples"]:
        sections["Examples"] = "\n".join(parsed["Examples"])
    return sections


def _documented_names(body: str) -> set[str]:
    """Names in a Parameters-like section body: the unindented ``name : type`` lines."""
    names = set()
    for line in body.splitlines():
        if line and not line[0].isspace():
            head = line.split(" : ", 1)[0].rstrip(":").strip()
            names.update(n.strip().lstrip("*") for n in head.split(","))
    return names


def _sections_by_headers(doc: str) -> dict[str, str]:
    doc = inspect.cleandoc(doc)
    matches = list(_SECTION.finditer(doc))
    sections = {"": doc[: matches[0].start()] if matches else doc}
    for match, nxt in zip(matches, [*matches[1:], None]):
        body = doc[match.end() : nxt.start() if nxt else len(doc)].strip()
        if body:
            sections[match["title"].strip()] = body
    return sections


# --------------------------------------------------------------------------- what is needed
def _signature(obj: Callable[..., Any]) -> inspect.Signature | None:
    try:
        return inspect.signature(obj)
    except (TypeError, ValueError):
        return None


def _parameter_names(sig: inspect.Signature | None, *, drop_first: bool) -> list[str]:
    """Public parameter names of a signature (``self``/``cls`` and ``_private`` ones left out)."""
    if sig is None:
        return []
    params = list(sig.parameters.values())
    if (
        drop_first
        and params
        and params[0].kind in (params[0].POSITIONAL_ONLY, params[0].POSITIONAL_OR_KEYWORD)
    ):
        params = params[1:]
    return [p.name for p in params if not p.name.startswith("_")]


def _constructor(cls: type) -> tuple[list[str], bool]:
    """``(parameter names, generated from fields)`` for the constructor of ``cls``."""
    generated = (
        dataclasses.is_dataclass(cls)
        or (issubclass(cls, tuple) and hasattr(cls, "_fields"))
        or hasattr(cls, "__pydantic_decorators__")
    )
    for owner in cls.__mro__:
        if owner is object:
            return [], generated
        if "__init__" in vars(owner) or "__new__" in vars(owner):
            if _is_ours(owner) or generated:
                return _parameter_names(_signature(cls), drop_first=False), generated
            return [], generated  # inherited from another package: documented there
    return [], generated


def _returns_value(func: Callable[..., Any]) -> tuple[bool, bool]:
    """``(returns something, is a generator)``."""
    func = inspect.unwrap(func)
    generator = inspect.isgeneratorfunction(func)
    annotation = inspect.signature(func).return_annotation
    if annotation is not inspect.Signature.empty:
        text = annotation if isinstance(annotation, str) else inspect.formatannotation(annotation)
        text = text.strip().strip("'\"")
        generator = generator or bool(_GENERATOR_RETURNS.match(text))
        return text not in _VOID_RETURNS, generator
    try:
        tree = ast.parse(textwrap.dedent(inspect.getsource(func)))
    except (OSError, TypeError, SyntaxError):
        return True, generator  # cannot tell: ask for a Returns section
    body = tree.body[0]
    stack = list(getattr(body, "body", []))
    while stack:  # the function's own statements, not those of nested functions
        node = stack.pop()
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda, ast.ClassDef)):
            continue
        if isinstance(node, (ast.Yield, ast.YieldFrom)):
            return True, True
        if isinstance(node, ast.Return) and node.value is not None:
            return True, generator
        stack.extend(ast.iter_child_nodes(node))
    return False, generator


# --------------------------------------------------------------------------- checks
def _problems_of_doc(
    doc: str | None,
    *,
    parameters: list[str],
    fields_as_attributes: bool = False,
    needs_returns: bool = False,
    generator: bool = False,
) -> list[str]:
    if not doc or not doc.strip():
        return ["no docstring"]
    doc = inspect.cleandoc(doc)
    try:
        sections = _sections(doc)
    except Exception as exc:  # a malformed docstring is a problem to report, not a crash
        return [f"docstring does not parse as numpydoc ({type(exc).__name__}: {exc})"]
    problems = []
    if not sections.get("", "").strip():
        problems.append("no summary line")
    examples = sections.get("Examples", "")
    if not any(line.lstrip().startswith(">>>") for line in examples.splitlines()):
        problems.append("no Examples section with a >>> line")
    param_sections = ["Parameters", "Other Parameters"]
    if fields_as_attributes:
        param_sections.append("Attributes")
    if parameters and not ({"Parameters", "Attributes"} & set(param_sections) & set(sections)):
        problems.append(
            "no Parameters section"
            + (" (or Attributes for the generated constructor)" if fields_as_attributes else "")
        )
    elif parameters:
        documented = set().union(*(_documented_names(sections.get(t, "")) for t in param_sections))
        undocumented = [p for p in parameters if p not in documented]
        if undocumented:
            problems.append(f"parameter(s) not documented: {', '.join(undocumented)}")
    if needs_returns and not (
        {"Returns", "Yields"} & set(sections) if generator else "Returns" in sections
    ):
        problems.append("no Returns section" + (" (or Yields)" if generator else ""))
    return problems


def _problems_of_function(func: Any, *, method: bool) -> list[str]:
    raw = func.__func__ if isinstance(func, (staticmethod, classmethod)) else func
    drop_first = method and not isinstance(func, staticmethod)
    needs_returns, generator = _returns_value(raw)
    return _problems_of_doc(
        inspect.getdoc(raw),
        parameters=_parameter_names(_signature(raw), drop_first=drop_first),
        needs_returns=needs_returns,
        generator=generator,
    )


def _all_problems() -> tuple[dict[str, list[str]], list[str]]:
    objects, data_paths, skipped = _public_objects()
    problems: dict[str, list[str]] = {}

    for name, obj in objects.values():
        if inspect.isclass(obj):
            parameters, generated = _constructor(obj)
            problems[name] = _problems_of_doc(
                obj.__doc__, parameters=parameters, fields_as_attributes=generated
            )
            for member, attr, owner in _class_members(obj):
                key = f"{owner.__module__}.{owner.__qualname__}.{member}"
                if key in problems:
                    continue
                if isinstance(attr, property) or hasattr(attr, "func"):  # property-like
                    getter = attr.fget if isinstance(attr, property) else attr.func
                    problems[key] = _problems_of_doc(
                        inspect.getdoc(getter) or attr.__doc__, parameters=[]
                    )
                else:
                    problems[key] = _problems_of_function(attr, method=True)
        else:
            problems[name] = _problems_of_function(obj, method=False)

    for path in sorted(set(DATA_NAMES) - {p for paths in data_paths.values() for p in paths}):
        problems[path] = ["listed in DATA_NAMES but not a public data name any more: remove it"]
    for first, paths in data_paths.items():
        if not set(paths) & set(DATA_NAMES):
            problems[first] = [
                "public data (no docstring possible): document it next to its definition "
                "and add it to DATA_NAMES in tests/test_docstrings.py with the reason"
            ]
    return {k: v for k, v in sorted(problems.items()) if v}, skipped


def test_every_public_name_has_a_numpydoc_docstring_with_an_example():
    problems, skipped = _all_problems()
    if skipped:
        warnings.warn(
            "modules not checked (optional extra missing): " + ", ".join(skipped), stacklevel=1
        )
    message = "\n".join(f"{name}: {'; '.join(issues)}" for name, issues in problems.items())
    assert not problems, f"{len(problems)} public name(s) with incomplete docstrings:\n{message}"


def test_the_walk_finds_the_public_api():
    """The check above is only as good as the walk: it must reach known names."""
    objects, data_paths, _ = _public_objects()
    names = {name for name, _ in objects.values()}
    assert {
        "shiftattr.graph.CausalGraph",
        "shiftattr.attribution.attribute",
        "shiftattr.shapley.exact.ExactShapley",
        "shiftattr.ratios._tabular.tabular_matrix",
    } <= names
    assert "shiftattr.__version__" in data_paths
    members = {name for name, _, _ in _class_members(shiftattr.CausalGraph)}
    assert {"from_edges", "nodes", "parents"} <= members
    assert not any(name.startswith("_") for name in members)


def test_the_checker_flags_what_is_missing():
    """The rules themselves: a docstring without the needed sections is reported."""

    def documented(a: int) -> int:
        """Add one.

        Parameters
        ----------
        a : int

        Returns
        -------
        int

        Examples
        --------
        >>> 1
        1
        """
        return a + 1

    def undocumented(a, b=2):
        """Add."""
        return a + b

    def generator(n: int) -> Iterator[int]:
        """Count.

        Parameters
        ----------
        n : int

        Yields
        ------
        int

        Examples
        --------
        >>> 1
        1
        """
        yield from range(n)

    assert _problems_of_function(documented, method=False) == []
    assert _problems_of_function(generator, method=False) == []
    assert _problems_of_function(undocumented, method=False) == [
        "no Examples section with a >>> line",
        "no Parameters section",
        "no Returns section",
    ]
    assert _problems_of_doc(None, parameters=[]) == ["no docstring"]
    assert _problems_of_doc(documented.__doc__, parameters=["a", "b"]) == [
        "parameter(s) not documented: b"
    ]
    fields_doc = "A record.\n\nAttributes\n----------\na : int\n\nExamples\n--------\n>>> 1\n1\n"
    assert _problems_of_doc(fields_doc, parameters=["a"], fields_as_attributes=True) == []
    assert _problems_of_doc(fields_doc, parameters=["a"]) == ["no Parameters section"]
    assert _sections_by_headers(documented.__doc__ or "").keys() == {
        "",
        "Parameters",
        "Returns",
        "Examples",
    }
