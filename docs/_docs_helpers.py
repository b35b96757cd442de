"""Helpers the Sphinx configuration refers to by name (kept importable, hence picklable)."""

from __future__ import annotations

from pathlib import Path

#: Where gallery examples write the files they save (``--out``), inside the build folder.
EXAMPLE_OUTPUT = Path(__file__).resolve().parent / "_build" / "example_output"


def example_argv(gallery_conf, script_vars) -> list[str]:
    """Command-line arguments of a gallery example run: write its files under ``_build``.

    Every example parses its arguments with ``parse_known_args``, so an example without
    an ``--out`` option ignores it.
    """
    return ["--out", str(EXAMPLE_OUTPUT)]
