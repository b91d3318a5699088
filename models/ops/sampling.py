"""Where deformable samples land: the in-frame fraction every learned sampler reports while it trains.

A deformable operator (DSSA's coordinate maps, DCNv3, the deformable convolution) reads its input with
``grid_sample`` and zero padding: a point that leaves the map reads zeros and passes no gradient back to the
offset that sent it there, so a sampler whose offsets grow past the map never returns and its module goes
dead without any error. Each such operator therefore records, in training mode, two figures per forward:

    in_frame    fraction of its sample points inside the region its undeformed layout covers: the map
                extended by the layout's own half-width ``margin`` (a 3x3 kernel reaches 1 pixel into the zero
                padding at the border even with zero offsets; a sqrt(P) x sqrt(P) window (sqrt(P) - 1) / 2),
                so it is 1.0 at initialisation and falls only when offsets push points further out;
    offset_px   mean length of the learned offsets in pixels (0 at initialisation: the offsets are alive
                when it grows).

``record_sampling`` accumulates them over the forwards of one training step (e.g. SSEA on three frames)
in constant memory; ``read_sampling`` returns the means and resets. Models gather them in their
``diagnostics()`` hook (docs/architecture.md, model contract), which engine.train logs every iteration.
Nothing is recorded in eval mode, so inference and the complexity traces are untouched.
"""
from __future__ import annotations

import torch
from torch import nn

_ATTR = "_sampling_stats"


def in_frame_fraction(x: torch.Tensor, y: torch.Tensor, height: int, width: int, margin: float) -> torch.Tensor:
    """Fraction of points (pixel coordinates, pixel centres at integers) within the map extended by ``margin``."""
    lo = -0.5 - margin
    inside = (x >= lo) & (x <= width - 0.5 + margin) & (y >= lo) & (y <= height - 0.5 + margin)
    return inside.float().mean()


def record_sampling(module: nn.Module, x: torch.Tensor, y: torch.Tensor, offset_len: torch.Tensor,
                    height: int, width: int, margin: float) -> None:
    """Accumulate one forward's figures on ``module`` (training mode only; no graph is kept)."""
    if not module.training:
        return
    with torch.no_grad():
        figures = torch.stack([in_frame_fraction(x, y, height, width, margin), offset_len.float().mean()])
    total, count = getattr(module, _ATTR, (0.0, 0))
    setattr(module, _ATTR, (figures + total, count + 1))


def read_sampling(module: nn.Module) -> dict[str, float]:
    """Mean ``in_frame`` and ``offset_px`` since the last read ({} if nothing was recorded); resets."""
    total, count = getattr(module, _ATTR, (0.0, 0))
    if not count:
        return {}
    setattr(module, _ATTR, (0.0, 0))
    in_frame, offset_px = (total / count).tolist()
    return {"in_frame": in_frame, "offset_px": offset_px}


def sampling_diagnostics(named: dict[str, nn.Module]) -> dict[str, float]:
    """``{"inframe_<name>": ..., "offset_px_<name>": ...}`` for every named sampler that recorded something."""
    out: dict[str, float] = {}
    for name, module in named.items():
        for key, value in read_sampling(module).items():
            out[f"{'inframe' if key == 'in_frame' else key}_{name}"] = value
    return out
