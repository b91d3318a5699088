"""Flow sources for TC: forward flow t -> t+1 as (flow float32 (H, W, 2) in pixels (dx, dy), valid bool (H, W)).

    source = make_flow_source("gt" | "farneback" | "dis" | "learned", ...)
    flow, valid = source(ds, video, frame_t, frame_next)
    source.name   # recorded next to the TC number ("gt", "opencv-farneback", "learned:<model>@<checkpoint>")

- "gt": the dataset's own ground-truth flow (the synthetic set; ``ds.read_flow``), with its validity mask.
- "farneback" / "dis": OpenCV's classical estimators on the two RGB frames (opencv-python-headless), every
  pixel valid. The papers used learned flow (FlowNet2, RAFT): numbers from these are not the papers' TC.
- "learned": any torch module from a local checkpoint, ``model="package.module:factory"`` building it and
  ``checkpoint=PATH`` holding its state dict. The module takes two (1, 3, H, W) float RGB images in 0..255
  and returns the flow (1, 2, H, W) (or a list/tuple whose last item is it, as RAFT returns its iterations).
  Nothing is downloaded. Other estimators register themselves with ``register_flow_source``.
"""
from __future__ import annotations

import importlib
import os
from pathlib import Path
from typing import Callable, Protocol

import numpy as np

from common.cli import InputError

FLOW_CHOICES = ("gt", "farneback", "dis", "learned", "none")

# OpenCV parameters, one table. Farneback: the values of OpenCV's own optical-flow tutorial; DIS: the
# "medium" preset (a compromise between the fast and the fine preset at 480p).
FARNEBACK = dict(pyr_scale=0.5, levels=3, winsize=15, iterations=3, poly_n=5, poly_sigma=1.2, flags=0)
DIS_PRESET = "MEDIUM"


class FlowSource(Protocol):
    name: str

    def __call__(self, ds, video, frame: str, next_frame: str) -> tuple[np.ndarray, np.ndarray]: ...


class GroundTruthFlow:
    name = "gt"

    def __call__(self, ds, video, frame, next_frame):
        got = ds.read_flow(video, frame)
        if got is None:
            raise InputError(f"{ds.name} has no ground-truth flow; use --tc-flow farneback|dis|none")
        flow, valid = got
        return np.asarray(flow, np.float32), np.asarray(valid, bool)


class _ImagePairFlow:
    """Shared part of the image-based estimators: read RGB frames, remember the last one (pairs overlap)."""

    name = "image-pair"

    def __init__(self):
        self._cache_key = None
        self._cache_value = None

    def _frame(self, ds, video, frame, convert):
        key = (id(ds), video.name, frame)
        if key == self._cache_key:
            return self._cache_value
        value = convert(ds.read_image(video, frame))
        self._cache_key, self._cache_value = key, value
        return value

    def __call__(self, ds, video, frame, next_frame):
        first = self._frame(ds, video, frame, self.prepare)
        second = self._frame(ds, video, next_frame, self.prepare)
        flow = self.estimate(first, second)
        return flow.astype(np.float32, copy=False), np.ones(flow.shape[:2], bool)

    def prepare(self, rgb):  # pragma: no cover - abstract
        raise NotImplementedError

    def estimate(self, first, second) -> np.ndarray:  # pragma: no cover - abstract
        raise NotImplementedError


class OpenCVFlow(_ImagePairFlow):
    """Farneback or DIS on greyscale frames; flow such that frame_t(y, x) ~ frame_t+1(y + dy, x + dx)."""

    def __init__(self, method: str = "farneback"):
        super().__init__()
        import cv2

        self._cv2 = cv2
        if method == "farneback":
            self._estimate = lambda a, b: cv2.calcOpticalFlowFarneback(a, b, None, **FARNEBACK)
        elif method == "dis":
            dis = cv2.DISOpticalFlow_create(getattr(cv2, f"DISOPTICAL_FLOW_PRESET_{DIS_PRESET}"))
            self._estimate = lambda a, b: dis.calc(a, b, None)
        else:
            raise ValueError(f"unknown OpenCV flow method '{method}' (known: farneback, dis)")
        self.name = f"opencv-{method}"

    def prepare(self, rgb):
        return self._cv2.cvtColor(rgb, self._cv2.COLOR_RGB2GRAY)

    def estimate(self, first, second):
        return self._estimate(first, second)


class LearnedFlow(_ImagePairFlow):
    """A torch flow network from a local checkpoint (see module docstring for the calling convention)."""

    def __init__(self, model: str, checkpoint: str | os.PathLike | None, device=None):
        super().__init__()
        import torch

        from common.device import pick_device

        self._torch = torch
        self.device = pick_device() if device is None else torch.device(device)
        factory = _import_callable(model)
        self.module = factory()
        if checkpoint is not None:
            self.module.load_state_dict(_flow_state(Path(checkpoint), self.module))
        self.module.to(self.device).eval()
        self.name = f"learned:{model}@{Path(checkpoint).name if checkpoint else 'no-checkpoint'}"

    def prepare(self, rgb):
        t = self._torch.from_numpy(np.ascontiguousarray(rgb)).permute(2, 0, 1)[None].float()
        return t.to(self.device)

    def estimate(self, first, second):
        with self._torch.no_grad():
            out = self.module(first, second)
        if isinstance(out, (list, tuple)):
            out = out[-1]
        if out.ndim != 4 or out.shape[:2] != (1, 2) or out.shape[2:] != first.shape[2:]:
            raise ValueError(f"flow model returned {tuple(out.shape)}, expected (1, 2, {first.shape[2]}, "
                             f"{first.shape[3]})")
        return out[0].detach().permute(1, 2, 0).float().cpu().numpy()


def _flow_state(path: Path, module) -> dict:
    """A flow network's state dict from a local file, loaded weights-only (a crafted file runs nothing);
    a wrapper key (state_dict / model) and DataParallel's "module." prefix are stripped."""
    from common.weights import load_weights_only

    state = load_weights_only(path, "flow checkpoint")
    for key in ("state_dict", "model"):
        if isinstance(state, dict) and key in state and isinstance(state[key], dict):
            state = state[key]
    if not isinstance(state, dict):
        raise InputError(f"{path}: flow checkpoint holds a {type(state).__name__}, not a state dict")
    state = {k[7:] if isinstance(k, str) and k.startswith("module.") else k: v for k, v in state.items()}
    own = module.state_dict()
    missing = sorted(set(own) - set(state))
    unexpected = sorted(set(state) - set(own))
    wrong = sorted(k for k in set(own) & set(state) if getattr(state[k], "shape", None) != own[k].shape)
    if missing or unexpected or wrong:
        raise InputError(f"{path}: flow checkpoint does not fit the model (missing {len(missing)}: {missing[:3]}, "
                         f"unexpected {len(unexpected)}: {unexpected[:3]}, wrong shape {len(wrong)}: {wrong[:3]})")
    return state


def _import_callable(spec: str) -> Callable:
    module_name, sep, attr = spec.partition(":")
    if not sep or not module_name or not attr:
        raise InputError(f"--flow-model '{spec}': expected 'package.module:callable'")
    try:
        obj = getattr(importlib.import_module(module_name), attr)
    except (ImportError, AttributeError) as e:
        raise InputError(f"--flow-model '{spec}': cannot import ({e})") from None
    return obj


_REGISTRY: dict[str, Callable[..., FlowSource]] = {
    "gt": lambda **kw: GroundTruthFlow(),
    "farneback": lambda **kw: OpenCVFlow("farneback"),
    "dis": lambda **kw: OpenCVFlow("dis"),
    "learned": lambda model=None, checkpoint=None, device=None, **kw: LearnedFlow(
        model or _missing("--flow-model"), checkpoint, device),
}


def _missing(option: str):
    raise InputError(f"--tc-flow learned needs {option}")


def register_flow_source(name: str, factory: Callable[..., FlowSource]) -> None:
    """Plug in another estimator: ``factory(**options)`` returns a callable with a ``name``."""
    _REGISTRY[name] = factory


def make_flow_source(name: str, **options) -> FlowSource | None:
    """The flow source called ``name``; None for "none"."""
    if name == "none":
        return None
    try:
        factory = _REGISTRY[name]
    except KeyError:
        raise InputError(f"unknown flow source '{name}' (known: {', '.join(sorted(_REGISTRY))}, none)") from None
    return factory(**options)
