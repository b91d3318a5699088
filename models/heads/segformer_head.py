"""SegFormer's all-MLP decode head.

Per stage a linear to width E (on tokens), bilinear upsampling of F2..F4 to the F1 size, concatenation
(deepest first, as the public code), a 1x1 conv 4E -> E with BN + ReLU, dropout, a 1x1 classifier.
``output_stride=8`` fuses at the F2 size instead (F1 average-pooled down, as SD-CPC's SSEA does): a control
with SD-CPC's output stride, not a paper setting.
E = 256 is what the video papers (CFFM, MRCFA, SD-CPC) use for every backbone; the original SegFormer uses
768 for B2..B5 (see docs/reproduction-notes.md for what each choice does to the counts).
"""
from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F

HEAD_WIDTH = 256
DROPOUT = 0.1


def resize_to(x: torch.Tensor, size) -> torch.Tensor:
    """Bring a (B, C, h, w) map to ``size`` the way the SegFormer-line heads align stages: adaptive average
    pooling down (SD-CPC's DS), bilinear up (US, align_corners False), untouched when it already fits (so a
    trace records no extra operator)."""
    if tuple(x.shape[-2:]) == tuple(size):
        return x
    if x.shape[-2] > size[0] or x.shape[-1] > size[1]:
        return F.adaptive_avg_pool2d(x, size)
    return F.interpolate(x, size=size, mode="bilinear", align_corners=False)


class MLP(nn.Module):
    """Linear embedding of a feature map's channels, applied per pixel (as tokens, like the public code)."""

    def __init__(self, in_ch: int, width: int):
        super().__init__()
        self.proj = nn.Linear(in_ch, width)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, _, h, w = x.shape
        return self.proj(x.flatten(2).transpose(1, 2)).transpose(1, 2).reshape(b, -1, h, w)


class SegFormerHead(nn.Module):
    def __init__(self, in_channels: tuple[int, ...], num_classes: int, width: int = HEAD_WIDTH,
                 dropout: float = DROPOUT, output_stride: int = 4):
        super().__init__()
        if output_stride not in (4, 8):
            raise ValueError(f"SegFormer head: output_stride must be 4 or 8, got {output_stride}")
        self.width = width
        self.level = {4: 0, 8: 1}[output_stride]   # the stage whose size the maps are fused at
        self.linear_c = nn.ModuleList(MLP(c, width) for c in in_channels)
        self.linear_fuse = nn.Sequential(nn.Conv2d(len(in_channels) * width, width, 1, bias=False),
                                         nn.BatchNorm2d(width), nn.ReLU(inplace=True))
        self.dropout = nn.Dropout2d(dropout)
        self.linear_pred = nn.Conv2d(width, num_classes, 1)

    def fuse(self, feats: list[torch.Tensor]) -> torch.Tensor:
        """The E-wide fused map at the F1 size (F2 with output_stride 8), before dropout and classifier: what
        video heads build on."""
        size = feats[self.level].shape[-2:]
        embedded = [resize_to(mlp(f), size) for mlp, f in zip(self.linear_c, feats)]
        return self.linear_fuse(torch.cat(embedded[::-1], dim=1))

    def classify(self, fused: torch.Tensor) -> torch.Tensor:
        return self.linear_pred(self.dropout(fused))

    def forward(self, feats: list[torch.Tensor]) -> torch.Tensor:
        return self.classify(self.fuse(feats))
