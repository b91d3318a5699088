"""Cross-frame selective cross-attention, SD-CPC Eq. (2).

Each query pixel n of one frame attends to P points of the other frame whose (fractional) coordinates come
from an attention coordinate map. Keys and values are sampled there bilinearly (``grid_sample``, zero
outside the frame, align_corners False), giving N windows of P elements; inside window n

    s_p = sum_c Q_n^c K_{n,p}^c                 (Hadamard product of Q, expanded to P, with K, summed)
    O_n = sum_p  s_p / (sum_p' s_p' + eps)  V_{n,p}        (normalised as written: no softmax)

Time and memory are O(N P C): the only large tensors are the (C, N, P) samples of keys, then of values
(never both at once); no N x N matrix exists. Scores and the weighted sum are ``einsum``s so fvcore counts them; ``grid_sampler`` is
counted by fvcore at 4 per output element.

The ratio is only a weighting when every s_p has the same sign; ``SelectiveCrossAttention`` therefore
passes Q and K through the positive feature map elu + 1 (as the linear attention does) - a choice the
paper leaves open (docs/reproduction-notes.md).
"""
from __future__ import annotations

import math

import torch
import torch.nn as nn
import torch.nn.functional as F

from models.ops.dcnv3 import pixel_to_grid
from models.ops.linear_attention import feature_map

EPS = 1e-6


def window_grid(points: int) -> torch.Tensor:
    """(P, 2) offsets (x, y) of a sqrt(P) x sqrt(P) window centred on 0 (P = 4 -> +-0.5, P = 9 -> -1..1)."""
    side = math.isqrt(points)
    if side * side != points:
        raise ValueError(f"selective attention: P = {points} is not a square (windows are sqrt(P) x sqrt(P))")
    steps = torch.arange(side, dtype=torch.float32) - (side - 1) / 2
    gy, gx = torch.meshgrid(steps, steps, indexing="ij")
    return torch.stack([gx.reshape(-1), gy.reshape(-1)], dim=-1)


def base_coordinates(height: int, width: int, points: int, *, like: torch.Tensor) -> torch.Tensor:
    """(1, H, W, P, 2) pixel coordinates (x, y): each pixel's own position plus the window around it."""
    ys, xs = torch.meshgrid(torch.arange(height, device=like.device, dtype=like.dtype),
                            torch.arange(width, device=like.device, dtype=like.dtype), indexing="ij")
    own = torch.stack([xs, ys], dim=-1).view(1, height, width, 1, 2)
    return own + window_grid(points).to(like).view(1, 1, 1, points, 2)


def selective_cross_attention(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, coords: torch.Tensor,
                              eps: float = EPS) -> torch.Tensor:
    """Eq. (2). q: (B, C, H, W) queries; k: (B, C, Hk, Wk), v: (B, Cv, Hk, Wk) of the other frame;
    coords: (B, H, W, P, 2) pixel coordinates (x, y) in the other frame. Returns (B, Cv, H, W)."""
    b, c, h, w = q.shape
    hk, wk = k.shape[-2:]
    p = coords.shape[-2]
    grid = pixel_to_grid(coords, hk, wk).reshape(b, h * w, p, 2)
    # keys first, scores, then values: only one (B, C, N, P) sample is alive at a time (peak memory)
    k_s = F.grid_sample(k, grid, mode="bilinear", padding_mode="zeros", align_corners=False)  # (B, C, N, P)
    scores = torch.einsum("bcn,bcnp->bnp", q.flatten(2), k_s)                      # sum_c Q (.) K
    del k_s
    weights = scores / (scores.sum(dim=-1, keepdim=True) + eps)
    v_s = F.grid_sample(v, grid, mode="bilinear", padding_mode="zeros", align_corners=False)
    out = torch.einsum("bnp,bcnp->bcn", weights, v_s)
    return out.view(b, -1, h, w)


def dense_cross_attention(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
    """Vanilla softmax cross-attention between two frames (N x N scores): the O(N^2) baseline."""
    b, c, h, w = q.shape
    scores = torch.matmul(q.flatten(2).transpose(1, 2), k.flatten(2)) * c ** -0.5  # (B, N, Nk)
    out = torch.matmul(scores.softmax(-1), v.flatten(2).transpose(1, 2))            # (B, N, Cv)
    return out.transpose(1, 2).reshape(b, -1, h, w)


class SelectiveCrossAttention(nn.Module):
    """Q from one frame's map, K and V from the other's ("fed into an MLP": per-pixel linears), Eq. (2) over
    the P points the coordinate map selects, then an output linear. Returns the aggregation only."""

    def __init__(self, dim: int):
        super().__init__()
        self.q = nn.Conv2d(dim, dim, 1)
        self.k = nn.Conv2d(dim, dim, 1)
        self.v = nn.Conv2d(dim, dim, 1)
        self.proj = nn.Conv2d(dim, dim, 1)

    def forward(self, query_map: torch.Tensor, other_map: torch.Tensor, coords: torch.Tensor) -> torch.Tensor:
        q = feature_map(self.q(query_map))
        k = feature_map(self.k(other_map))
        return self.proj(selective_cross_attention(q, k, self.v(other_map), coords))
