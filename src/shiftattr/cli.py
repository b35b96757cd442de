"""The ``shiftattr`` command: ``demo``, ``run CONFIG.toml`` and ``report attribution.json``."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

__all__ = ["main"]


def _print_outcome(outcome) -> None:
    from shiftattr.pipeline import truth_table

    print(outcome.result.summary())
    if outcome.truth:
        print("\nGround truth (direct simulation, common random numbers):")
        print(truth_table(outcome.result, outcome.truth))
    stages = ", ".join(f"{k} {v:.0f}s" for k, v in outcome.seconds.items())
    print(f"\ntime: {stages}")
    print(f"report: {outcome.report.resolve()}")


def _override(cfg, args: argparse.Namespace, origin: str = "the configuration"):
    """The configuration with the command-line overrides of the attribution settings,
    validated again as a whole (an override may contradict a key of the file); an error
    names ``origin`` (the file) and the options given."""
    from shiftattr.config import ConfigError, load_config

    changed = {
        key: getattr(args, key)
        for key in (
            "method",
            "bootstrap",
            "interval",
            "n_bootstrap",
            "n_repeats",
            "tolerance",
            "pooled_regressions",
            "both_samples",
            "cross_check",
            "image_estimator",
            "image_statistics",
            "ratio_outputs",
            "n_jobs",
        )
        if getattr(args, key, None) is not None
    }
    if not changed:
        return cfg
    raw = cfg.model_dump()
    raw["attribution"].update(changed)
    try:
        return load_config(raw)
    except ConfigError as exc:
        given = ", ".join(f"--{k.replace('_', '-')} {v}" for k, v in changed.items())
        where = f"{origin} with the command-line options {given}"
        raise ConfigError(str(exc).replace("<dict>", where, 1)) from None


def _demo(args: argparse.Namespace) -> int:
    from shiftattr.pipeline import demo_config, run

    cfg = _override(demo_config(args.out, tiny=args.tiny), args, "the demo's settings")
    if not args.quiet:
        print(
            "shiftattr demo: synthetic experiment B — a U-Net trained on centers 01, 07, 08 "
            "is deployed on center 03; which mechanism cost the Dice?\n",
            flush=True,
        )
    _print_outcome(run(cfg, progress=not args.quiet))
    return 0


def _run(args: argparse.Namespace) -> int:
    from shiftattr.config import load_config
    from shiftattr.pipeline import run

    cfg = load_config(args.config)
    if args.out:
        cfg.output.folder = Path(args.out)
    cfg = _override(cfg, args, str(args.config))
    _print_outcome(run(cfg, progress=not args.quiet))
    return 0


def _same_json(a: Path, b: Path) -> bool:
    """Whether two files hold the same JSON (a report written before from this result)."""
    try:
        return json.loads(a.read_text(encoding="utf-8")) == json.loads(
            b.read_text(encoding="utf-8")
        )
    except (OSError, ValueError):
        return False


def _report(args: argparse.Namespace) -> int:
    from shiftattr.report import read_truth, write_report
    from shiftattr.results import Attribution

    path = Path(args.attribution)
    if not path.is_file():
        what = "is not a file" if path.exists() else "does not exist"
        print(f"shiftattr report: {path} {what}", file=sys.stderr)
        return 2
    out = Path(args.out) if args.out else path.parent
    if out.exists() and not out.is_dir():
        print(f"shiftattr report: --out {out} is a file, not a folder", file=sys.stderr)
        return 2
    written = out / "attribution.json"
    if written.exists() and not written.samefile(path) and not _same_json(written, path):
        print(
            f"shiftattr report: the report of {path} would replace {written}, another "
            "result; pass --out with a folder of its own.",
            file=sys.stderr,
        )
        return 2
    try:
        result = Attribution.from_json(path)
    except (ValueError, KeyError, TypeError) as exc:  # JSONDecodeError is a ValueError
        kind = "not JSON" if isinstance(exc, json.JSONDecodeError) else "not an attribution"
        pairwise = " (a pairwise sweep: read it with PairwiseAttribution.from_json)"
        hint = pairwise if '"environments"' in path.read_text(encoding="utf-8")[:4000] else ""
        print(
            f"shiftattr report: {path} is {kind} as Attribution.to_json writes it{hint}: "
            f"{type(exc).__name__}: {exc}",
            file=sys.stderr,
        )
        return 2
    truth, note = read_truth(path)
    if note:
        print(f"shiftattr report: {note}", file=sys.stderr)
    # a truth.json that does not match is kept as it is: a ground truth is costly to redo
    page = write_report(result, out, truth=truth, remove_stale_truth=False)
    print(result.summary())
    print(f"\nreport: {page.resolve()}")
    return 0


_METHOD_HELP = (
    "value estimator: iw (importance weighting), mis (importance weighting of both "
    "environments' cases), regression, mr (multiply robust) or auto, the default (mis; "
    "mr over both samples with paired mechanisms; iw with --cross-check or "
    "attribution.truncate; mis takes none of these); overrides attribution.method"
)
_BOOTSTRAP_HELP = (
    "fixed (seconds; intervals leave out the estimators' own variance), refit (refits "
    "every ratio and regression per replicate; the intervals to report) or auto, the "
    "default (refit, but fixed with --image-estimator cnn); overrides attribution.bootstrap"
)


def _count(least: int):
    """An argparse type: an integer of at least ``least``."""

    def parse(text: str) -> int:
        value = int(text)
        if value < least:
            raise argparse.ArgumentTypeError(f"must be {least} or more, got {value}")
        return value

    return parse


def _jobs(text: str) -> int:
    value = int(text)
    if value == 0 or value < -1:
        raise argparse.ArgumentTypeError(f"must be 1 or more, or -1 (one per core), got {value}")
    return value


def _tolerance(text: str) -> float:
    value = float(text)
    if not value > 0:
        raise argparse.ArgumentTypeError(f"must be a positive number, got {text}")
    return value


def _choices(key: str) -> list[str]:
    """The values ``attribution.<key>`` accepts, read from the configuration's own
    ``Literal`` type, so that an option and its key cannot drift apart.

    Examples
    --------
    >>> _choices("method")
    ['auto', 'iw', 'mis', 'regression', 'mr']
    >>> _choices("image_statistics")  # an optional key: its unset value is no choice
    ['basic', 'extended']
    """
    from typing import get_args

    from shiftattr.config import AttributionConfig

    def strings(tp: object) -> list[str]:
        return [tp] if isinstance(tp, str) else [v for arg in get_args(tp) for v in strings(arg)]

    return strings(AttributionConfig.model_fields[key].annotation)


def _add_attribution_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--method", choices=_choices("method"), help=_METHOD_HELP)
    p.add_argument("--bootstrap", choices=_choices("bootstrap"), help=_BOOTSTRAP_HELP)
    p.add_argument(
        "--interval",
        choices=_choices("interval"),
        help="'bias_aware' (with --method mr, regression or mis) widens each interval to cover a "
        "bias up to the distance to importance weighting; 'auto' (default) uses it for mr "
        "and mis (overrides attribution.interval)",
    )
    p.add_argument(
        "--pooled-regressions",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="with --method mr or regression: fit each nested regression on both "
        "environments' cases, the other one's weighted by its level's ratio; "
        "--no-pooled-regressions fits each on its own environment's; without either, "
        "attribution.pooled_regressions decides (default 'auto': pooled for mr, whose "
        "regressions see the images here)",
    )
    p.add_argument(
        "--both-samples",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="with --method mr: take every unpaired term over both environments' cases "
        "with balance-heuristic weights, as mis does; lower error where the ratios are good "
        "and with paired annotations, shrunk where one is too flat; --no-both-samples keeps "
        "each term on its own environment's cases; without either, "
        "attribution.both_samples decides (default 'auto': on with paired mechanisms)",
    )
    p.add_argument(
        "--cross-check",
        action="store_true",
        default=None,
        help="with --method iw: also fit the plain regression estimate and warn "
        "methods_disagree where the two differ beyond bootstrap noise (sets "
        "attribution.cross_check); with the default --method auto it switches the estimate "
        "from mis to iw",
    )
    p.add_argument(
        "--image-estimator",
        choices=_choices("image_estimator"),
        help="density ratios of the image mechanisms from per-case image statistics or "
        "from CNN discriminators; overrides attribution.image_estimator",
    )
    p.add_argument(
        "--image-statistics",
        choices=_choices("image_statistics"),
        help="image statistics of the density-ratio estimators: 'extended' (the default) "
        "adds image-quality measures (contrasts, SNR, non-uniformity, sharpness per axis, "
        "lesion contrast-to-noise) to the 'basic' intensity statistics; overrides "
        "attribution.image_statistics",
    )
    p.add_argument(
        "--ratio-outputs",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="the image density-ratio estimators also see the model's output summaries "
        "(predicted volume, confidence, ...); by default ('auto') on with the extended image "
        "statistics and --method iw or mis, or mr over both samples (by default with paired "
        "mechanisms); --no-ratio-outputs turns it off; overrides "
        "attribution.ratio_outputs",
    )
    p.add_argument(
        "--n-bootstrap",
        type=_count(0),
        help="bootstrap replicates (overrides attribution.n_bootstrap)",
    )
    p.add_argument(
        "--n-repeats",
        type=_count(1),
        help="cross-fitting repeats on independent fold assignments: values averaged, "
        "fixed-bootstrap intervals widened by their spread (overrides attribution.n_repeats)",
    )
    p.add_argument(
        "--n-jobs",
        type=_jobs,
        help="processes for the density-ratio fits and the refit bootstrap replicates, "
        "-1 for one per core (overrides attribution.n_jobs)",
    )
    p.add_argument(
        "--tolerance",
        type=_tolerance,
        help="precision you need in metric units, e.g. 0.02: mechanisms whose interval "
        "reaches further get an 'imprecise' warning (overrides attribution.tolerance)",
    )


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of the ``shiftattr`` command.

    Returns
    -------
    argparse.ArgumentParser

    Examples
    --------
    >>> build_parser().parse_args(["demo", "--tiny", "--method", "mr"]).method
    'mr'
    """
    parser = argparse.ArgumentParser(
        prog="shiftattr",
        description="Attribute a model's performance change between environments to the "
        "causal mechanisms that shifted.",
    )
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("demo", help="synthetic experiment B end to end (no data to download)")
    p.add_argument("--out", default="shiftattr-demo", help="report folder")
    p.add_argument("--tiny", action="store_true", help="a seconds-long version (for tests)")
    _add_attribution_options(p)
    p.add_argument("--quiet", action="store_true", help="no progress bars")
    p.set_defaults(func=_demo)
    p = sub.add_parser("run", help="run a TOML configuration")
    p.add_argument("config", help="CONFIG.toml")
    p.add_argument("--out", help="report folder (overrides output.folder)")
    _add_attribution_options(p)
    p.add_argument("--quiet", action="store_true", help="no progress bars")
    p.set_defaults(func=_run)
    p = sub.add_parser("report", help="rebuild figures and HTML from attribution.json")
    p.add_argument("attribution", help="attribution.json written by demo or run")
    p.add_argument("--out", help="folder (default: next to attribution.json)")
    p.set_defaults(func=_report)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``shiftattr`` console script.

    Parameters
    ----------
    argv : list of str, optional

    Returns
    -------
    int
        Exit code (2 for invalid input).

    Examples
    --------
    >>> main(["report", "no-such-folder/attribution.json"])
    2
    """
    from shiftattr.config import ConfigError
    from shiftattr.metrics import NonFiniteMetricError

    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except ValueError as exc:
        # bad input, not a bug: one message, no traceback. The NIfTI and checkpoint
        # modules need torch, so their errors are looked up only if they were loaded
        # (they cannot have been raised otherwise).
        input_errors = [ConfigError]
        for module, name in (("nifti", "NiftiDataError"), ("checkpoint", "CheckpointError")):
            loaded = sys.modules.get(f"shiftattr.segmentation.{module}")
            if loaded is not None:
                input_errors.append(getattr(loaded, name))
        if isinstance(exc, tuple(input_errors)):
            print(f"shiftattr {args.command}: {exc}", file=sys.stderr)
            return 2
        if isinstance(exc, NonFiniteMetricError):  # the data's empty masks: a data error
            print(
                f"shiftattr {args.command}: {exc}\nIn the configuration file this is "
                "attribution.empty: a preset name, a number (both masks empty), or a table "
                "{ both = ..., reference = ..., prediction = ... } (e.g. reference and "
                "prediction = the image's diagonal in voxels for a distance).",
                file=sys.stderr,
            )
            return 2
        raise


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
