"""Thread limits for native libraries (BLAS, OpenMP) without rescanning them on every call.

``threadpoolctl.threadpool_limits`` finds the loaded libraries by reading the process's
memory map each time it is entered: about 3 ms, paid once per cross-fitted regression
and ratio, which on a few hundred cases was a quarter of a linear-learner attribution.
:func:`limit_threads` keeps one ``ThreadpoolController`` and scans again only when new
modules were imported since (a new extension module may bring its own thread pool).
"""

from __future__ import annotations

import contextlib
import sys

from threadpoolctl import ThreadpoolController

_state: dict = {"controller": None, "n_modules": -1}


def limit_threads(limits: int | None):
    """A context manager limiting native thread pools to ``limits`` threads (None: no limit).

    Parameters
    ----------
    limits : int or None

    Returns
    -------
    context manager

    Examples
    --------
    >>> with limit_threads(1):
    ...     pass
    """
    if limits is None:
        return contextlib.nullcontext()
    if _state["controller"] is None or _state["n_modules"] != len(sys.modules):
        _state["controller"] = ThreadpoolController()
        _state["n_modules"] = len(sys.modules)
    return _state["controller"].limit(limits=limits)
