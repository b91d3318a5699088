"""SegFormer's all-MLP decode head.

Per stage a linear to width E (on tokens), bilinear upsampling of F2..F4 to the F1 size, concatenation
(deepest first, as the public code), a 1x1 conv 4E -> E with BN + ReLU, dropout, a 1x1 classifier.
E = 256 is what the video papers (CFFM, MRCFA, SD-CPC) use for every backbone; the original SegFormer uses
768 for B2..B5 (see docs/reproduction-notes.md for what each choice does to the counts).
"""
from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F

HEAD_WIDTH = 256
DROPOUT = 0.1


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
                 dropout: float = DROPOUT):
        super().__init__()
        self.width = width
        self.linear_c = nn.ModuleList(MLP(c, width) for c in in_channels)
        self.linear_fuse = nn.Sequential(nn.Conv2d(len(in_channels) * width, width, 1, bias=False),
                                         nn.BatchNorm2d(width), nn.ReLU(inplace=True))
        self.dropout = nn.Dropout2d(dropout)
        self.linear_pred = nn.Conv2d(width, num_classes, 1)

    def fuse(self, feats: list[torch.Tensor]) -> torch.Tensor:
        """The E-wide fused map at the F1 size (before dropout and classifier): what video heads build on."""
        size = feats[0].shape[-2:]
        embedded = [F.interpolate(mlp(f), size=size, mode="bilinear", align_corners=False) if i else mlp(f)
                    for i, (mlp, f) in enumerate(zip(self.linear_c, feats))]
        return self.linear_fuse(torch.cat(embedded[::-1], dim=1))

    def classify(self, fused: torch.Tensor) -> torch.Tensor:
        return self.linear_pred(self.dropout(fused))

    def forward(self, feats: list[torch.Tensor]) -> torch.Tensor:
        return self.classify(self.fuse(feats))
