"""MiT (Mix Transformer), SegFormer's encoder, B0..B5, in plain PyTorch.

    from models.backbones.mit import build_mit
    encoder = build_mit("mit_b1")          # encoder.channels == (64, 128, 320, 512)
    f1, f2, f3, f4 = encoder(images)       # (B, C_i, H/s, W/s) for s = 4, 8, 16, 32

Module names follow the official SegFormer/MiT checkpoints (patch_embed1.proj, block1.0.attn.q, norm1, ...);
models/pretrained.py loads those and the mmseg and Hugging Face layouts (docs/weights.md).

Attention is written with ``F.scaled_dot_product_attention`` (memory-efficient kernels on CUDA, chunked on
CPU), so MiT-B5 at 1024x2048 does not materialise the stage-1 attention matrix; ``metrics.complexity``
registers an fvcore handle that counts it (2 * N_q * N_kv * dim multiply-adds per block).
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn as nn
import torch.nn.functional as F


@dataclass(frozen=True)
class MiTSetting:
    dims: tuple[int, int, int, int]
    depths: tuple[int, int, int, int]


# Shared by every size: heads, spatial-reduction ratios, MLP ratio, patch-embedding geometry per stage.
HEADS = (1, 2, 5, 8)
SR_RATIOS = (8, 4, 2, 1)
MLP_RATIO = 4
PATCH_KERNELS = (7, 3, 3, 3)
PATCH_STRIDES = (4, 2, 2, 2)
STRIDES = (4, 8, 16, 32)     # output stride of F1..F4
DROP_PATH_RATE = 0.1         # spread linearly over all blocks, as SegFormer trains
# The official code builds blocks and stage norms with partial(nn.LayerNorm, eps=1e-6); the patch-embedding
# and spatial-reduction norms are plain nn.LayerNorm (1e-5).
NORM_EPS = 1e-6

MIT_SETTINGS: dict[str, MiTSetting] = {
    "mit_b0": MiTSetting((32, 64, 160, 256), (2, 2, 2, 2)),
    "mit_b1": MiTSetting((64, 128, 320, 512), (2, 2, 2, 2)),
    "mit_b2": MiTSetting((64, 128, 320, 512), (3, 4, 6, 3)),
    "mit_b3": MiTSetting((64, 128, 320, 512), (3, 4, 18, 3)),
    "mit_b4": MiTSetting((64, 128, 320, 512), (3, 8, 27, 3)),
    "mit_b5": MiTSetting((64, 128, 320, 512), (3, 6, 40, 3)),
}


class DropPath(nn.Module):
    """Stochastic depth: drop a whole residual branch per sample in training (``drop_prob`` is public so
    tests can switch it off)."""

    def __init__(self, drop_prob: float = 0.0):
        super().__init__()
        self.drop_prob = drop_prob

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not self.training or self.drop_prob == 0.0:
            return x
        keep = 1.0 - self.drop_prob
        mask = x.new_empty((x.shape[0],) + (1,) * (x.dim() - 1)).bernoulli_(keep)
        return x * mask / keep


class OverlapPatchEmbed(nn.Module):
    """Overlapping patch embedding: a k x k stride-s convolution (padding k // 2), then LayerNorm."""

    def __init__(self, in_ch: int, dim: int, kernel: int, stride: int):
        super().__init__()
        self.proj = nn.Conv2d(in_ch, dim, kernel, stride, kernel // 2)
        self.norm = nn.LayerNorm(dim)

    def forward(self, x):
        x = self.proj(x)
        h, w = x.shape[-2:]
        return self.norm(x.flatten(2).transpose(1, 2)), h, w


class EfficientSelfAttention(nn.Module):
    """Multi-head self-attention whose keys/values come from an r x r stride-r reduced token map."""

    def __init__(self, dim: int, heads: int, sr_ratio: int):
        super().__init__()
        self.dim, self.heads, self.sr_ratio = dim, heads, sr_ratio
        self.q = nn.Linear(dim, dim)
        self.kv = nn.Linear(dim, 2 * dim)
        self.proj = nn.Linear(dim, dim)
        if sr_ratio > 1:
            self.sr = nn.Conv2d(dim, dim, sr_ratio, sr_ratio)
            self.norm = nn.LayerNorm(dim)

    def forward(self, x, h: int, w: int):
        b, n, c = x.shape
        q = self.q(x).reshape(b, n, self.heads, c // self.heads).transpose(1, 2)
        if self.sr_ratio > 1:
            x = self.sr(x.transpose(1, 2).reshape(b, c, h, w)).flatten(2).transpose(1, 2)
            x = self.norm(x)
        k, v = self.kv(x).reshape(b, -1, 2, self.heads, c // self.heads).permute(2, 0, 3, 1, 4)
        out = F.scaled_dot_product_attention(q, k, v)
        return self.proj(out.transpose(1, 2).reshape(b, n, c))


class DWConv(nn.Module):
    def __init__(self, dim: int):
        super().__init__()
        self.dwconv = nn.Conv2d(dim, dim, 3, 1, 1, groups=dim)

    def forward(self, x, h: int, w: int):
        b, n, c = x.shape
        return self.dwconv(x.transpose(1, 2).reshape(b, c, h, w)).flatten(2).transpose(1, 2)


class MixFFN(nn.Module):
    """Linear to 4x, 3x3 depth-wise conv (the positional cue MiT uses instead of embeddings), GELU, linear."""

    def __init__(self, dim: int, hidden: int):
        super().__init__()
        self.fc1 = nn.Linear(dim, hidden)
        self.dwconv = DWConv(hidden)
        self.act = nn.GELU()
        self.fc2 = nn.Linear(hidden, dim)

    def forward(self, x, h: int, w: int):
        return self.fc2(self.act(self.dwconv(self.fc1(x), h, w)))


class Block(nn.Module):
    def __init__(self, dim: int, heads: int, sr_ratio: int, drop_path: float):
        super().__init__()
        self.norm1 = nn.LayerNorm(dim, eps=NORM_EPS)
        self.attn = EfficientSelfAttention(dim, heads, sr_ratio)
        self.drop_path = DropPath(drop_path)
        self.norm2 = nn.LayerNorm(dim, eps=NORM_EPS)
        self.mlp = MixFFN(dim, dim * MLP_RATIO)

    def forward(self, x, h: int, w: int):
        x = x + self.drop_path(self.attn(self.norm1(x), h, w))
        return x + self.drop_path(self.mlp(self.norm2(x), h, w))


class MixVisionTransformer(nn.Module):
    """Four stages; ``forward(images)`` returns [F1, F2, F3, F4] at strides 4, 8, 16, 32 (NCHW)."""

    def __init__(self, setting: MiTSetting, drop_path_rate: float = DROP_PATH_RATE, in_ch: int = 3):
        super().__init__()
        self.setting = setting
        self.channels = tuple(setting.dims)
        self.strides = STRIDES
        n = sum(setting.depths)   # plain Python (not torch.linspace) so the model builds on the meta device
        rates = [drop_path_rate * j / (n - 1) for j in range(n)]
        first = 0
        for i, (dim, depth) in enumerate(zip(setting.dims, setting.depths), start=1):
            prev = in_ch if i == 1 else setting.dims[i - 2]
            setattr(self, f"patch_embed{i}", OverlapPatchEmbed(prev, dim, PATCH_KERNELS[i - 1], PATCH_STRIDES[i - 1]))
            setattr(self, f"block{i}", nn.ModuleList(
                Block(dim, HEADS[i - 1], SR_RATIOS[i - 1], rates[first + j]) for j in range(depth)))
            setattr(self, f"norm{i}", nn.LayerNorm(dim, eps=NORM_EPS))
            first += depth
        self.apply(_init_weights)

    def imagenet_part(self) -> nn.Module:
        """What an ImageNet checkpoint initialises: the whole encoder (its classifier is dropped)."""
        return self

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        feats = []
        for i in range(1, 5):
            x, h, w = getattr(self, f"patch_embed{i}")(x)
            for blk in getattr(self, f"block{i}"):
                x = blk(x, h, w)
            x = getattr(self, f"norm{i}")(x)
            x = x.transpose(1, 2).reshape(x.shape[0], -1, h, w)
            feats.append(x)
        return feats

    def token_grids(self, height: int, width: int) -> list[tuple[int, int]]:
        """(h, w) of each stage's token grid for an H x W image (convolution output arithmetic)."""
        grids, h, w = [], height, width
        for k, s in zip(PATCH_KERNELS, PATCH_STRIDES):
            h, w = (h + 2 * (k // 2) - k) // s + 1, (w + 2 * (k // 2) - k) // s + 1
            grids.append((h, w))
        return grids

    def analytic_attention_flops(self, height: int, width: int) -> float:
        """SegFormer's analytic attention term for one H x W image, which mmcv's module hooks cannot see:
        per block 2 * (h w) * (h w / r^2) * dim multiply-adds (QK^T and AV), h, w = H // stride, W // stride,
        the key count h w / r^2 not rounded. With the hooks this gives the SegFormer-line counts (B0 13.93,
        B1 26.63 = SD-CPC Table 1's 26.6, B2 43.65, B5 126.76 at 480x853 with the 256-wide head); the real
        token grids (``token_grids``) would give B1 26.63, B5 127.30 (docs/reproduction-notes.md)."""
        total = 0.0
        for stride, dim, depth, r in zip(STRIDES, self.setting.dims, self.setting.depths, SR_RATIOS):
            h, w = height // stride, width // stride
            total += 2 * h * w * (h * w / r ** 2) * dim * depth
        return total


def _init_weights(m: nn.Module) -> None:
    # SegFormer's initialisation: truncated normal (std 0.02) linears, fan-out normal convolutions
    if isinstance(m, nn.Linear):
        nn.init.trunc_normal_(m.weight, std=0.02)
        if m.bias is not None:
            nn.init.zeros_(m.bias)
    elif isinstance(m, nn.LayerNorm):
        nn.init.ones_(m.weight)
        nn.init.zeros_(m.bias)
    elif isinstance(m, nn.Conv2d):
        fan_out = m.kernel_size[0] * m.kernel_size[1] * m.out_channels // m.groups
        nn.init.normal_(m.weight, 0.0, (2.0 / fan_out) ** 0.5)
        if m.bias is not None:
            nn.init.zeros_(m.bias)


def build_mit(name: str, drop_path_rate: float = DROP_PATH_RATE) -> MixVisionTransformer:
    if name not in MIT_SETTINGS:
        raise ValueError(f"unknown MiT backbone '{name}' (known: {', '.join(MIT_SETTINGS)})")
    return MixVisionTransformer(MIT_SETTINGS[name], drop_path_rate)


def mit_channels(name: str) -> tuple[int, int, int, int]:
    """Channels of F1..F4 without building the model."""
    return MIT_SETTINGS[name].dims
