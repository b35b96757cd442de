"""limit_threads: one scan of the native libraries, again only when modules were imported."""

import sys
import types

from threadpoolctl import threadpool_info

from shiftattr import _threads
from shiftattr._threads import limit_threads


def _blas_threads():
    return [lib["num_threads"] for lib in threadpool_info() if lib["user_api"] == "blas"]


def test_limits_inside_and_restores_after():
    before = _blas_threads()
    with limit_threads(1):
        assert all(n == 1 for n in _blas_threads())
    assert _blas_threads() == before
    with limit_threads(None):  # no limit: nothing changes
        assert _blas_threads() == before


def test_scans_once_and_again_after_an_import(monkeypatch):
    scans = []
    real = _threads.ThreadpoolController

    def counting():
        scans.append(1)
        return real()

    monkeypatch.setattr(_threads, "ThreadpoolController", counting)
    monkeypatch.setitem(_threads._state, "controller", None)
    for _ in range(3):
        with limit_threads(1):
            pass
    assert len(scans) == 1
    monkeypatch.setitem(sys.modules, "shiftattr_test_fake_module", types.ModuleType("fake"))
    with limit_threads(1):
        pass
    assert len(scans) == 2
