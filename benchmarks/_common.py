"""Shared helpers of the benchmark suite: timing, machine description, JSON, peers.

Every timing in the suite is a median over repeated runs, and every comparison with a
peer is a ratio of medians measured in the same run, the compared functions run
round-robin (so both see the same load on a busy machine).
"""

from __future__ import annotations

import datetime as dt
import importlib
import importlib.metadata
import json
import os
import platform
import statistics
import sys
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np

BENCH_DIR = Path(__file__).resolve().parent
RESULTS_DIR = BENCH_DIR / "results"
REPO_DIR = BENCH_DIR.parent

#: The peers the suite compares against: import name -> distribution name.
PEERS = {"dowhy": "dowhy", "shapiq": "shapiq", "monai": "monai"}


def now_utc() -> str:
    """The current UTC time, ISO format, to the second."""
    return dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds")


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def cpu_identity(cpuinfo: str | None = None) -> dict[str, Any]:
    r"""Which CPU this is beyond its marketing name: family, model and stepping, and the
    widest vector instructions it offers (``"avx512"``, ``"avx2"`` or ``"other"``).

    Two machines both called "AMD EPYC" can be different generations, with different
    speed and different floating-point kernels in torch: a U-Net trained with the same
    seed on both gets other weights. ``torch_capability`` is the kernel set torch picks
    (recorded only when torch is already imported, so that a tabular benchmark does not
    load it).

    Parameters
    ----------
    cpuinfo : str, optional
        The text of ``/proc/cpuinfo`` (read when not given; fields are ``None`` where it
        cannot be read).

    Returns
    -------
    dict
        ``family``, ``model``, ``stepping``, ``vector_isa``, ``torch_capability``.

    Examples
    --------
    >>> info = cpu_identity("cpu family : 25\nmodel : 1\nflags : fpu avx2\n")
    >>> info["family"], info["model"], info["vector_isa"]
    ('25', '1', 'avx2')
    """
    if cpuinfo is None:
        try:
            cpuinfo = Path("/proc/cpuinfo").read_text()
        except OSError:
            cpuinfo = ""
    found: dict[str, str] = {}
    for line in cpuinfo.splitlines():  # the first processor's lines are enough
        key, _, value = (part.strip() for part in line.partition(":"))
        found.setdefault(key, value)
    flags = set(found.get("flags", "").split())
    if "avx512f" in flags:
        isa: str | None = "avx512"
    elif "avx2" in flags:
        isa = "avx2"
    else:
        isa = "other" if flags else None
    torch = sys.modules.get("torch")
    cpu = getattr(getattr(torch, "backends", None), "cpu", None)
    return {
        "family": found.get("cpu family"),
        "model": found.get("model"),
        "stepping": found.get("stepping"),
        "vector_isa": isa,
        "torch_capability": cpu.get_cpu_capability() if cpu is not None else None,
    }


def _memory_gb() -> float | None:
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal"):
                return round(int(line.split()[1]) / 1024**2, 1)
    except OSError:
        pass
    return None


def _version(dist: str) -> str | None:
    try:
        return importlib.metadata.version(dist)
    except importlib.metadata.PackageNotFoundError:
        return None


def git_state() -> dict[str, Any]:
    """The commit the numbers were measured at, and the library files and benchmark
    scripts (``benchmarks/*.py``: a new variant may exist only there) modified on top of
    it."""
    import subprocess

    def git(*args: str) -> str:
        out = subprocess.run(
            ["git", *args], cwd=REPO_DIR, capture_output=True, text=True, check=False
        )
        return out.stdout.rstrip("\n")

    commit = git("rev-parse", "--short", "HEAD").strip()
    # porcelain lines are "XY path": X may be a space, so the lines must not be stripped
    status = git("status", "--porcelain", "--", "src", "benchmarks/*.py").splitlines()
    dirty = [line[3:] for line in status]
    return {
        "commit": commit or None,
        "modified_src_files": [f for f in dirty if f.startswith("src/")],
        "modified_benchmark_files": [f for f in dirty if not f.startswith("src/")],
    }


#: The repository state when this process loaded the benchmarks, and with them the
#: library: the code the numbers come from. A long run records it, not the state at the
#: time it writes (commits made meanwhile did not change what the process runs).
GIT_AT_START = git_state()


def machine_info() -> dict[str, Any]:
    """What the numbers were measured on: CPU, cores, memory, load, versions, and the
    git state the process started from (:data:`GIT_AT_START`)."""
    return {
        "git": dict(GIT_AT_START),
        "platform": platform.platform(),
        "cpu": _cpu_model(),
        "cpu_identity": cpu_identity(),
        "cpu_count": os.cpu_count(),
        "memory_gb": _memory_gb(),
        "python": platform.python_version(),
        "load_average_1_5_15": list(os.getloadavg()) if hasattr(os, "getloadavg") else None,
        "versions": {
            name: _version(name)
            for name in ("shiftattr", "numpy", "scipy", "scikit-learn", "torch", *PEERS.values())
        },
    }


def peer_available(module: str) -> str | None:
    """The installed version of a peer, or ``None`` when it cannot be imported."""
    try:
        importlib.import_module(module)
    except Exception:  # a broken install counts as missing
        return None
    return _version(PEERS.get(module, module)) or "unknown"


def skipped(peer: str) -> dict[str, str]:
    """The record of a peer that is not installed (a skip, not a failure)."""
    return {"status": "skipped", "reason": f"{peer} not installed"}


@contextmanager
def blas_threads(n: int | None) -> Iterator[None]:
    """Limit BLAS/OpenMP threads to ``n`` (``None``: leave the libraries' defaults).

    On a loaded 2-core machine, multi-threaded BLAS calls spin and wait for each other;
    one thread per process gives stable timings and is the same for both sides.
    """
    if n is None:
        yield
        return
    from threadpoolctl import threadpool_limits

    with threadpool_limits(limits=n):
        yield


def median_times(
    fns: Mapping[str, Callable[[], Any]], repeats: int, warmup: bool = True
) -> dict[str, dict[str, Any]]:
    """Median wall and CPU time of each function, run round-robin ``repeats`` times.

    Parameters
    ----------
    fns : mapping of str to callable
        The functions to compare (called without arguments).
    repeats : int
        Timed runs of each.
    warmup : bool, default True
        One untimed run of each first (imports, caches, page faults).

    Returns
    -------
    dict
        Name -> ``{"seconds": median wall, "cpu_seconds": median process CPU,
        "all": [wall times], "result": last return value}``.
    """
    last: dict[str, Any] = {}
    if warmup:
        for name, fn in fns.items():
            last[name] = fn()
    wall: dict[str, list[float]] = {name: [] for name in fns}
    cpu: dict[str, list[float]] = {name: [] for name in fns}
    for _ in range(repeats):
        for name, fn in fns.items():
            c0, t0 = time.process_time(), time.perf_counter()
            last[name] = fn()
            wall[name].append(time.perf_counter() - t0)
            cpu[name].append(time.process_time() - c0)
    return {
        name: {
            "seconds": statistics.median(wall[name]),
            "cpu_seconds": statistics.median(cpu[name]),
            "all": wall[name],
            "result": last.get(name),
        }
        for name in fns
    }


def timed(fn: Callable[[], Any]) -> tuple[float, Any]:
    """Wall time of one call and its result."""
    t0 = time.perf_counter()
    out = fn()
    return time.perf_counter() - t0, out


def loglog_slope(x: np.ndarray | list[float], y: np.ndarray | list[float]) -> float:
    """Least-squares slope of ``log y`` against ``log x`` (the empirical growth exponent)."""
    x, y = np.asarray(x, dtype=float), np.asarray(y, dtype=float)
    ok = (x > 0) & (y > 0)
    if ok.sum() < 2:
        return float("nan")
    return float(np.polyfit(np.log(x[ok]), np.log(y[ok]), 1)[0])


def _jsonable(obj: Any) -> Any:
    if isinstance(obj, Mapping):
        return {str(k): _jsonable(v) for k, v in obj.items() if not str(k).startswith("_")}
    if isinstance(obj, (list, tuple)):
        return [_jsonable(v) for v in obj]
    if isinstance(obj, np.ndarray):
        return _jsonable(obj.tolist())
    if isinstance(obj, (np.floating, float)):
        return None if not np.isfinite(obj) else float(obj)
    if isinstance(obj, np.integer):
        return int(obj)
    if isinstance(obj, (np.bool_, bool)):
        return bool(obj)
    if obj is None or isinstance(obj, (int, str)):
        return obj
    return repr(obj)


def write_json(name: str, payload: Mapping[str, Any], results_dir: Path = RESULTS_DIR) -> Path:
    """Write ``results_dir/<name>.json`` with the date and the machine description added.

    NaN and infinities become ``null``; keys starting with ``_`` are dropped.
    """
    results_dir.mkdir(parents=True, exist_ok=True)
    out = {"benchmark": name, "date": now_utc(), "machine": machine_info(), **payload}
    path = results_dir / f"{name}.json"
    path.write_text(json.dumps(_jsonable(out), indent=2) + "\n")
    return path


def read_json(name: str, results_dir: Path = RESULTS_DIR) -> dict[str, Any] | None:
    """``results_dir/<name>.json`` as a dict, or ``None`` if it does not exist."""
    path = results_dir / f"{name}.json"
    if not path.exists():
        return None
    return json.loads(path.read_text())
