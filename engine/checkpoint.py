"""Atomic checkpoints (resume) and the final model file (what engine.infer needs).

checkpoint.pt holds everything a run needs to continue exactly where it stopped: model, optimiser,
scheduler and grad-scaler states, the RNG states (python, numpy, torch CPU, every CUDA device), the number
of completed iterations (which is also the data-sampler position: each iteration's samples are derived
from (seed, iteration), see engine.train.sample_seed), the identity config and the log rows so far.

model.pt holds the weights plus how to rebuild the model (variant, backbone, num_classes, model options),
the dataset it was trained on, the resolved training config and provenance.

Both are written to a temporary file beside the destination and renamed into place (common.io), so a run
killed at any moment leaves the previous complete file; a full disk is an OutputError naming the file.

Loading never runs code from the file: torch.load(weights_only=True), with the only non-tensor types these
files hold allow-listed (numpy's RNG state array). A file that needs anything else to unpickle - a crafted
model.pt, or a foreign pickle - is refused in one line before any of it is executed.
"""
from __future__ import annotations

import io
import random
from pathlib import Path
from typing import Any

import numpy as np
import torch

from common.cli import InputError
from common.io import atomic_path
from common.weights import load_weights_only

CHECKPOINT_FORMAT = "vss-bench-checkpoint/1"
MODEL_FORMAT = "vss-bench-model/1"


def unwrap(model: torch.nn.Module) -> torch.nn.Module:
    """The plain model inside a DistributedDataParallel (or torch.compile) wrapper."""
    while hasattr(model, "module") and isinstance(model.module, torch.nn.Module):
        model = model.module
    return getattr(model, "_orig_mod", model)


def rng_states() -> dict[str, Any]:
    states: dict[str, Any] = {
        "python": random.getstate(),
        "numpy": np.random.get_state(),
        "torch": torch.get_rng_state(),
    }
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        states["cuda"] = torch.cuda.get_rng_state_all()
    return states


def set_rng_states(states: dict[str, Any]) -> None:
    random.setstate(states["python"])
    np.random.set_state(states["numpy"])
    torch.set_rng_state(states["torch"])
    if "cuda" in states and torch.cuda.is_available():
        cuda = states["cuda"]
        if len(cuda) == torch.cuda.device_count():
            torch.cuda.set_rng_state_all(cuda)


class _RecordingWriter(io.RawIOBase):
    """A file torch.save writes through, keeping the OSError of a failed write: torch itself turns ENOSPC
    into an opaque RuntimeError, and the user must read that the disk is full."""

    def __init__(self, f):
        self.f, self.error = f, None

    def writable(self) -> bool:
        return True

    def write(self, b) -> int:
        try:
            return self.f.write(b)
        except OSError as e:
            self.error = e
            raise


def save_atomic(obj: Any, path: str | Path) -> None:
    with atomic_path(path, suffix=".tmp") as tmp:
        with open(tmp, "wb") as f:
            writer = _RecordingWriter(f)
            try:
                torch.save(obj, writer)
            except RuntimeError:
                if writer.error is not None:
                    raise writer.error from None
                raise


def _safe_types() -> list:
    """The non-tensor types checkpoint.pt stores: numpy's RNG state (np.random.get_state()) is an ndarray."""
    try:
        from numpy._core.multiarray import _reconstruct
    except ImportError:   # numpy < 2
        from numpy.core.multiarray import _reconstruct
    return [_reconstruct, np.ndarray, np.dtype, type(np.dtype(np.uint32))]


def _load(path: str | Path, what: str) -> dict:
    obj = load_weights_only(path, what, _safe_types())
    if not isinstance(obj, dict) or "format" not in obj:
        raise InputError(f"{path}: not a vss-bench {what}")
    return obj


def save_checkpoint(path: str | Path, *, model, optimizer, scheduler, scaler, iteration: int,
                    config: dict, log_rows: list[dict], extra: dict | None = None) -> None:
    save_atomic({
        "format": CHECKPOINT_FORMAT,
        "iteration": int(iteration),
        "model": unwrap(model).state_dict(),
        "optimizer": optimizer.state_dict(),
        "scheduler": scheduler.state_dict(),
        "scaler": scaler.state_dict() if scaler is not None else None,
        "rng": rng_states(),
        "sampler": {"iteration": int(iteration)},   # next iteration's samples derive from (seed, iteration)
        "config": config,
        "log_rows": list(log_rows),
        **(extra or {}),
    }, path)


def load_checkpoint(path: str | Path) -> dict:
    ckpt = _load(path, "checkpoint")
    if ckpt["format"] != CHECKPOINT_FORMAT:
        raise InputError(f"{path}: checkpoint format {ckpt['format']!r}, expected {CHECKPOINT_FORMAT!r}")
    return ckpt


def restore_checkpoint(ckpt: dict, *, model, optimizer, scheduler, scaler) -> int:
    """Load every state into the live objects; returns the number of completed iterations."""
    unwrap(model).load_state_dict(ckpt["model"])
    optimizer.load_state_dict(ckpt["optimizer"])
    scheduler.load_state_dict(ckpt["scheduler"])
    if scaler is not None and ckpt.get("scaler"):
        scaler.load_state_dict(ckpt["scaler"])
    set_rng_states(ckpt["rng"])
    return int(ckpt["iteration"])


def save_model(path: str | Path, *, model, variant: str, backbone: str, num_classes: int, dataset: str,
               model_options: dict, config: dict, provenance: dict, iterations: int,
               variant_spec: dict | None = None) -> None:
    """``variant_spec``: the resolved registry entry (models.registry.Variant as a dict), so the model is
    rebuilt as it was trained even if the registry file changes or is not at hand."""
    save_atomic({
        "format": MODEL_FORMAT,
        "state_dict": unwrap(model).state_dict(),
        "variant": variant,
        "variant_spec": variant_spec,
        "backbone": backbone,
        "num_classes": int(num_classes),
        "model_options": dict(model_options),
        "dataset": dataset,
        "iterations": int(iterations),
        "config": config,
        "provenance": provenance,
    }, path)


def load_model_file(path: str | Path) -> dict:
    obj = _load(path, "model file")
    if obj["format"] != MODEL_FORMAT:
        raise InputError(f"{path}: model file format {obj['format']!r}, expected {MODEL_FORMAT!r} "
                         "(a checkpoint.pt is not a model file: pass DIR/model.pt)")
    return obj


def build_from_model_file(path: str | Path, device: torch.device | str = "cpu",
                          registry: str | Path | None = None) -> tuple[torch.nn.Module, dict]:
    """Rebuild the trained model (eval mode, on ``device``) and return it with the file's metadata.
    The stored variant spec is used when present (else the variant is looked up in ``registry``)."""
    from models.registry import RegistryError, Variant, build_model

    meta = load_model_file(path)
    spec = meta.get("variant_spec")
    variant = Variant(**{**spec, "ref_offsets": tuple(spec["ref_offsets"]), "tables": tuple(spec["tables"])}) \
        if spec else meta["variant"]
    try:
        model = build_model(variant, meta["backbone"], meta["num_classes"], registry=registry,
                            **meta["model_options"])
    except RegistryError as e:
        raise InputError(f"{path}: {e}") from None
    missing, unexpected = model.load_state_dict(meta["state_dict"], strict=False)
    if missing or unexpected:
        raise InputError(f"{path}: weights do not fit variant {meta['variant']} on {meta['backbone']} "
                         f"(missing {len(missing)}: {missing[:3]}, unexpected {len(unexpected)}: {unexpected[:3]})")
    meta = {k: v for k, v in meta.items() if k != "state_dict"}
    return model.to(device).eval(), meta
