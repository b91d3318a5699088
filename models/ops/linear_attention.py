"""Linear attention (Katharopoulos et al. 2020): softmax(Q K^T) V replaced by phi(Q) (phi(K)^T V).

phi(x) = elu(x) + 1 keeps every similarity positive, so the row normaliser 1 / (phi(Q_n) . sum_m phi(K_m))
is a proper weighting. Computing phi(K)^T V first costs O(N d^2) per head instead of O(N^2 d), and the
memory is O(N d + d^2): no N x N matrix is ever formed. Both products are matmuls, so fvcore counts them.
"""
from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F

EPS = 1e-6


def feature_map(x: torch.Tensor) -> torch.Tensor:
    """phi(x) = elu(x) + 1 (strictly positive)."""
    return F.elu(x) + 1.0


def linear_attention(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, eps: float = EPS) -> torch.Tensor:
    """q, k: (B, heads, N, d); v: (B, heads, N, e) -> (B, heads, N, e). phi is applied here."""
    q, k = feature_map(q), feature_map(k)
    kv = torch.matmul(k.transpose(-2, -1), v)                                 # (B, h, d, e): K^T V first
    normaliser = torch.matmul(q, k.sum(dim=-2, keepdim=True).transpose(-2, -1))  # (B, h, N, 1)
    return torch.matmul(q, kv) / (normaliser + eps)


def softmax_attention(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
    """The O(N^2) reference it replaces (explicit matmuls; for tests and the benchmark only)."""
    scores = torch.matmul(q, k.transpose(-2, -1)) * q.shape[-1] ** -0.5
    return torch.matmul(scores.softmax(-1), v)


class LinearAttention(nn.Module):
    """Multi-head linear self-attention on a (B, C, H, W) map: q/k/v linears, linear attention, output linear.

    Returns the attention output (no residual; the caller decides)."""

    def __init__(self, dim: int, heads: int = 8):
        super().__init__()
        if dim % heads:
            raise ValueError(f"LinearAttention: dim {dim} not divisible by heads {heads}")
        self.heads = heads
        self.q = nn.Linear(dim, dim)
        self.k = nn.Linear(dim, dim)
        self.v = nn.Linear(dim, dim)
        self.proj = nn.Linear(dim, dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, c, h, w = x.shape
        tokens = x.flatten(2).transpose(1, 2)                                    # (B, N, C)

        def split(t: torch.Tensor) -> torch.Tensor:
            return t.view(b, h * w, self.heads, c // self.heads).transpose(1, 2)

        out = linear_attention(split(self.q(tokens)), split(self.k(tokens)), split(self.v(tokens)))
        out = self.proj(out.transpose(1, 2).reshape(b, h * w, c))
        return out.transpose(1, 2).reshape(b, c, h, w)
