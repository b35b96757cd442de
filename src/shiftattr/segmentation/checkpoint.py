"""Load model weights from a torch checkpoint without executing code from the file.

``torch.load(..., weights_only=True)`` only rebuilds tensors and plain containers,
so a checkpoint downloaded from somewhere cannot run code on this machine. numpy
scalars, arrays and dtypes (found in nnU-Net checkpoints next to the weights, e.g.
the best EMA Dice) are allowlisted too; they hold data only. Anything else (a full
pickled model, custom classes) needs ``weights_only=False``, which warns: unpickling
such a file can execute arbitrary code.
"""

from __future__ import annotations

import os
import pickle
import warnings
import zipfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import torch

__all__ = ["CheckpointError", "load_state_dict", "load_torch_checkpoint"]

# nested layouts seen in the wild: PyTorch Lightning / generic, nnU-Net, MONAI bundles, EMA
_NESTED_KEYS = ("state_dict", "network_weights", "model_state_dict", "model", "net", "weights")


class CheckpointError(ValueError):
    """A checkpoint cannot be loaded safely or does not fit the model.

    A subclass of :class:`ValueError`; the message says what the file holds and how to
    load it (``key=...``, or ``weights_only=False`` for a trusted file).

    Examples
    --------
    >>> import tempfile, os, torch
    >>> with tempfile.TemporaryDirectory() as tmp:
    ...     path = os.path.join(tmp, "training_state.pth")
    ...     torch.save({"epoch": 3}, path)   # no weights in it
    ...     try:
    ...         load_state_dict(path)
    ...     except CheckpointError as err:
    ...         print(str(err).split(" and ")[0].replace(path, "PATH"))
    checkpoint 'PATH' is a dict with keys ['epoch']
    """


def _numpy_safe_globals() -> list[Any]:
    """numpy globals needed to unpickle numpy scalars / arrays / dtypes (data only)."""
    try:
        from numpy._core import multiarray  # numpy >= 2 ('numpy.core' is a deprecated alias)
    except ImportError:  # pragma: no cover - numpy < 2
        from numpy.core import multiarray

    items: list[Any] = [np.ndarray, np.dtype]
    for fn in (multiarray.scalar, multiarray._reconstruct):
        items.append(fn)
        # pickles written with numpy < 2 name the same functions under numpy.core
        items.append((fn, f"numpy.core.multiarray.{fn.__name__}"))
    for name in getattr(np.dtypes, "__all__", []):
        obj = getattr(np.dtypes, name, None)
        if isinstance(obj, type):
            items.append(obj)
    return items


def _torch_load(path: Path, map_location: Any, weights_only: bool) -> Any:
    if not weights_only:
        warnings.warn(
            f"loading {str(path)!r} with weights_only=False unpickles arbitrary Python objects: "
            "a malicious checkpoint can execute arbitrary code on this machine. Only do this "
            "for files from a source you trust.",
            UserWarning,
            stacklevel=3,
        )
        try:
            return torch.load(path, map_location=map_location, weights_only=False)
        except (
            pickle.UnpicklingError,
            EOFError,
            RuntimeError,
            OSError,
            KeyError,
            ValueError,
        ) as exc:
            raise CheckpointError(
                f"could not read checkpoint {str(path)!r} (truncated or not a torch file?): {exc}"
            ) from exc
    try:
        with torch.serialization.safe_globals(_numpy_safe_globals()):
            return torch.load(path, map_location=map_location, weights_only=True)
    except pickle.UnpicklingError as exc:
        if not zipfile.is_zipfile(path):  # a web page, an LFS pointer, random bytes
            raise CheckpointError(
                f"could not read checkpoint {str(path)!r}: it is not a torch checkpoint "
                "(truncated, a download that fetched a web page or a Git LFS pointer, or "
                "torch's legacy format, which torch.save wrote before 1.6)."
            ) from exc
        try:
            unsafe = torch.serialization.get_unsafe_globals_in_checkpoint(str(path))
        except Exception:  # pragma: no cover - an unreadable archive
            unsafe = []
        allowed = {
            f"{getattr(g, '__module__', '')}.{getattr(g, '__qualname__', '')}"
            for g in _numpy_safe_globals()
            if not isinstance(g, tuple)
        }
        unsafe = [u for u in unsafe if u not in allowed and not u.startswith("numpy.core.")]
        what = f" It references {unsafe}." if unsafe else ""
        raise CheckpointError(
            f"checkpoint {str(path)!r} holds more than tensors and plain containers (e.g. a "
            f"pickled full model or custom classes), so it was not loaded with "
            f"weights_only=True.{what} Unpickling it can execute arbitrary code. If you trust "
            "its source, pass weights_only=False; better, re-save just the weights with "
            "torch.save(model.state_dict(), path)."
        ) from exc
    except (EOFError, RuntimeError, OSError, KeyError, ValueError) as exc:
        raise CheckpointError(
            f"could not read checkpoint {str(path)!r} (truncated or not a torch file?): {exc}"
        ) from exc


def _is_state_dict(obj: Any) -> bool:
    return (
        isinstance(obj, Mapping)
        and len(obj) > 0
        and all(isinstance(k, str) for k in obj)
        and all(isinstance(v, torch.Tensor) for v in obj.values())
    )


def _extract_state_dict(obj: Any, path: Path, key: str | None) -> Mapping[str, torch.Tensor]:
    if isinstance(obj, torch.nn.Module):
        return obj.state_dict()
    if key is not None:
        node = obj
        for part in key.split("."):
            if not isinstance(node, Mapping) or part not in node:
                have = list(node) if isinstance(node, Mapping) else type(node).__name__
                raise CheckpointError(
                    f"checkpoint {str(path)!r} has no entry {key!r} (at {part!r}); "
                    f"available keys: {have}."
                )
            node = node[part]
        if isinstance(node, torch.nn.Module):
            return node.state_dict()
        if not _is_state_dict(node):
            raise CheckpointError(
                f"entry {key!r} of checkpoint {str(path)!r} is not a state dict "
                "(a mapping of parameter names to tensors)."
            )
        return node
    if _is_state_dict(obj):
        return obj
    if isinstance(obj, Mapping):
        for k in _NESTED_KEYS:
            if k in obj and isinstance(obj[k], torch.nn.Module):
                return obj[k].state_dict()
            if k in obj and _is_state_dict(obj[k]):
                return obj[k]
        candidates = [k for k, v in obj.items() if _is_state_dict(v)]
        hint = f" Entries holding tensors: {candidates}." if candidates else ""
        raise CheckpointError(
            f"checkpoint {str(path)!r} is a dict with keys {list(obj)} and none of the usual "
            f"state-dict entries {list(_NESTED_KEYS)}.{hint} Pass key='...' to say which "
            "entry holds the weights."
        )
    raise CheckpointError(
        f"checkpoint {str(path)!r} holds a {type(obj).__name__}, not a state dict."
    )


_WRAPPER_PREFIXES = ("module.", "_orig_mod.")  # DataParallel / DDP, torch.compile


def _strip_wrapper_prefixes(
    state: Mapping[str, torch.Tensor], own: Mapping[str, torch.Tensor]
) -> Mapping[str, torch.Tensor]:
    """Remove ``module.`` / ``_orig_mod.`` when every key has it and the model's keys do not."""
    changed = True
    while changed and state:
        changed = False
        for prefix in _WRAPPER_PREFIXES:
            if all(k.startswith(prefix) for k in state) and not any(
                k.startswith(prefix) for k in own
            ):
                state = {k[len(prefix) :]: v for k, v in state.items()}
                changed = True
    return state


def load_state_dict(
    path: str | os.PathLike,
    *,
    weights_only: bool = True,
    map_location: Any = "cpu",
    key: str | None = None,
) -> Mapping[str, torch.Tensor]:
    """Read the state dict stored in a checkpoint file.

    Parameters
    ----------
    path : str or path-like
        File written by ``torch.save``.
    weights_only : bool, default True
        Use torch's restricted unpickler (tensors, containers, numpy data). Set
        ``False`` only for trusted files: it can execute code (a warning is emitted).
    map_location : torch device or str, default "cpu"
        Where tensors are loaded (see :func:`torch.load`).
    key : str, optional
        Entry holding the weights in a nested checkpoint, e.g. ``"state_dict"``,
        ``"network_weights"`` (nnU-Net); dots descend (``"ema.state_dict"``).
        Default: the file itself if it is a state dict, else the first of
        ``state_dict``, ``network_weights``, ``model_state_dict``, ``model``,
        ``net``, ``weights`` holding tensors.

    Returns
    -------
    mapping of str to torch.Tensor
        The state dict (parameter and buffer names to tensors).

    Raises
    ------
    FileNotFoundError
        If ``path`` does not exist.
    CheckpointError
        If the file needs full unpickling, is unreadable, or holds no state dict.

    Examples
    --------
    >>> import tempfile, os, torch
    >>> with tempfile.TemporaryDirectory() as tmp:
    ...     path = os.path.join(tmp, "checkpoint_final.pth")
    ...     torch.save({"network_weights": torch.nn.Linear(2, 1).state_dict()}, path)
    ...     sorted(load_state_dict(path))
    ['bias', 'weight']
    """
    p = Path(path)
    if not p.is_file():
        raise FileNotFoundError(f"checkpoint file not found: {str(p)!r}")
    obj = _torch_load(p, map_location, weights_only)
    return _extract_state_dict(obj, p, key)


def load_torch_checkpoint(
    model: torch.nn.Module,
    path: str | os.PathLike,
    *,
    weights_only: bool = True,
    map_location: Any = "cpu",
    strict: bool = True,
    key: str | None = None,
) -> torch.nn.Module:
    """Load weights from a checkpoint file into ``model``.

    Parameters
    ----------
    model : torch.nn.Module
        The architecture to fill (built by the caller).
    path : str or path-like
        A file written by ``torch.save``: a state dict, or a dict nesting one
        (``{"state_dict": ...}``, nnU-Net's ``{"network_weights": ...}``).
    weights_only : bool, default True
        Restricted, code-free unpickling. ``False`` accepts full pickles (e.g. a
        whole saved model) and warns that this can execute arbitrary code.
    map_location : torch device or str, default "cpu"
        Where tensors are loaded (see :func:`torch.load`).
    strict : bool, default True
        Require the checkpoint's parameter names to match the model's exactly. The
        wrapper prefixes ``module.`` (DataParallel / DDP) and ``_orig_mod.``
        (``torch.compile``) are removed first when every name carries them.
    key : str, optional
        Entry holding the weights in a nested checkpoint (see
        :func:`load_state_dict`); auto-detected when omitted.

    Returns
    -------
    torch.nn.Module
        ``model``, with the weights loaded.

    Raises
    ------
    FileNotFoundError
        If the file does not exist.
    CheckpointError
        If the file needs full unpickling (without opt-in), holds no state dict,
        has missing / unexpected parameter names (``strict``; listed in the
        message), or shapes that do not fit the model.

    Examples
    --------
    >>> import tempfile, os, torch
    >>> net = torch.nn.Conv2d(1, 2, 1)
    >>> with tempfile.TemporaryDirectory() as tmp:
    ...     path = os.path.join(tmp, "ckpt.pt")
    ...     torch.save({"state_dict": net.state_dict(), "epoch": 3}, path)
    ...     other = load_torch_checkpoint(torch.nn.Conv2d(1, 2, 1), path)
    >>> bool(torch.equal(other.weight, net.weight))
    True
    """
    if not isinstance(model, torch.nn.Module):
        raise TypeError(f"model must be a torch.nn.Module, got {type(model).__name__}")
    state = load_state_dict(path, weights_only=weights_only, map_location=map_location, key=key)
    own = model.state_dict()
    state = _strip_wrapper_prefixes(state, own)
    missing = [k for k in own if k not in state]
    unexpected = [k for k in state if k not in own]
    if strict and (missing or unexpected):
        raise CheckpointError(
            f"checkpoint {str(path)!r} does not match {type(model).__name__}: "
            f"missing keys {missing or '[]'}; unexpected keys {unexpected or '[]'}. "
            "Was the model built with the same architecture and configuration? Pass "
            "strict=False to load the matching entries only."
        )
    mismatched = [
        f"{k}: checkpoint {tuple(state[k].shape)} vs model {tuple(own[k].shape)}"
        for k in own
        if k in state and tuple(state[k].shape) != tuple(own[k].shape)
    ]
    if mismatched:
        raise CheckpointError(
            f"checkpoint {str(path)!r} has parameters whose shapes do not fit "
            f"{type(model).__name__}: {mismatched}. Was the model built with the same "
            "configuration?"
        )
    model.load_state_dict(state, strict=strict)
    return model
