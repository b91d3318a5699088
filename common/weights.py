"""Loading a torch file a user hands the suite (model, checkpoint, pretrained or flow weights) without ever
running code from it.

``load_weights_only(path, what)`` is torch.load(weights_only=True): tensors, plain containers and numbers
only, plus the few extra types a caller allow-lists (engine.checkpoint: numpy's RNG state). A pickle that
needs any other Python global - which is how a crafted file runs code - is refused before it is unpickled,
and every failure (missing, torn, foreign, crafted) is one InputError line naming the file.
"""
from __future__ import annotations

import pickle
import re
import warnings
from pathlib import Path
from typing import Any, Iterable

from common.cli import InputError


def load_weights_only(path: str | Path, what: str = "weights file", safe_types: Iterable = ()) -> Any:
    import torch

    path = Path(path)
    if not path.is_file():
        raise InputError(f"{path}: {what} not found" if not path.exists() else f"{path}: {what} is not a file")
    try:
        with torch.serialization.safe_globals(list(safe_types)), warnings.catch_warnings():
            warnings.simplefilter("ignore")   # torch's notes on pickle protocols: our line says what matters
            return torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as e:
        raise unpickling_refusal(path, what, e) from None
    except Exception as e:  # torn, truncated, or not a torch file at all
        first = (str(e).strip().splitlines() or [""])[0].split(". ")[0]
        raise InputError(f"{path}: cannot read {what} ({type(e).__name__}: {first[:200]})") from None


def unpickling_refusal(path: str | Path, what: str, error: pickle.UnpicklingError) -> InputError:
    """The one line for torch's weights-only refusal of ``path`` (for callers that call torch.load
    themselves): which global it would have needed, never torch's advice to retry without the guard."""
    import torch

    detail = _unpickler_detail(str(error))
    try:
        names = torch.serialization.get_unsafe_globals_in_checkpoint(path)
    except Exception:   # not a zip archive: only the error's text says what it needed
        names = []
    names = names or re.findall(r"GLOBAL ([\w.]+)", detail)
    if names or "global" in detail.lower() or "reduce" in detail.lower():
        needs = ", ".join(names[:3]) if names else detail[:120]
        return InputError(f"{path}: {what} refused, not loaded: unpickling it would run code ({needs}); "
                          "only tensors and plain data are read")
    return InputError(f"{path}: cannot read {what}: not a torch file of tensors and plain data ({detail[:120]})")


def _unpickler_detail(message: str) -> str:
    """The one informative line of torch's multi-paragraph weights_only error (its advice to retry with
    weights_only=False is exactly what must not be done with a file from elsewhere)."""
    advice = ("Weights only load failed", "Check the documentation", "Please file an issue", "(1)", "(2)",
              "In PyTorch", "WeightsUnpickler error:")
    lines = [ln.strip() for ln in message.split("WeightsUnpickler error:")[-1].splitlines() if ln.strip()]
    lines = [ln for ln in lines if not ln.startswith(advice)]
    return lines[0] if lines else "unsupported content"
