"""HRNetV2-W18 / W48 (Wang et al. 2020) in the segmentation form, as mmsegmentation builds it.

Stem: two 3x3 stride-2 convs (64) with BN + ReLU. Stage 1: four bottlenecks (64 -> 256). Stages 2/3/4:
1/4/3 modules of 2/3/4 branches, four basic blocks per branch; widths (W, 2W, 4W, 8W). Each module ends
with the exchange ("fuse") units: to a higher-resolution branch a 1x1 conv + BN then upsampling, to a
lower-resolution branch a chain of 3x3 stride-2 conv + BN (ReLU between), the sum then ReLU. HRNetV2
concatenates all four branches at 1/4 (bilinear, align_corners False).

Module names follow the public checkpoints (``conv1``/``bn1``/``conv2``/``bn2``, ``layer1``,
``transition1``, ``stage2.0.branches.0.0.conv1``, ``stage2.0.fuse_layers.1.0.0.0`` ...).

``forward(x)`` returns the four branch outputs (strides 4, 8, 16, 32); ``fuse(branches, size)`` is the
HRNetV2 concatenation at any size. Parameters: W18 9.56M, W48 65.33M (65.86M with the HRNetV2 head).
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from models.backbones.resnet import BasicBlock, Bottleneck

HRNET_WIDTHS = {18: 18, 48: 48}
# stage -> (modules, branches); every branch of stages 2-4 has four basic blocks
STAGE_SPECS = {2: (1, 2), 3: (4, 3), 4: (3, 4)}
BLOCKS_PER_BRANCH = 4


def _downsample(cin, cout, stride=1):
    if stride == 1 and cin == cout:
        return None
    return nn.Sequential(nn.Conv2d(cin, cout, 1, stride, bias=False), nn.BatchNorm2d(cout))


class HRModule(nn.Module):
    def __init__(self, widths: tuple[int, ...]):
        super().__init__()
        n = len(widths)
        self.branches = nn.ModuleList(
            nn.Sequential(*[BasicBlock(w, w) for _ in range(BLOCKS_PER_BRANCH)]) for w in widths)
        fuse_layers = []
        for i in range(n):  # output branch
            row = []
            for j in range(n):  # input branch
                if j > i:
                    row.append(nn.Sequential(nn.Conv2d(widths[j], widths[i], 1, bias=False), nn.BatchNorm2d(widths[i])))
                elif j == i:
                    row.append(nn.Identity())
                else:
                    chain = []
                    for k in range(i - j):
                        last = k == i - j - 1
                        cout = widths[i] if last else widths[j]
                        chain.append(nn.Sequential(nn.Conv2d(widths[j], cout, 3, 2, 1, bias=False),
                                                   nn.BatchNorm2d(cout),
                                                   *([] if last else [nn.ReLU(inplace=False)])))
                    row.append(nn.Sequential(*chain))
            fuse_layers.append(nn.ModuleList(row))
        self.fuse_layers = nn.ModuleList(fuse_layers)
        self.relu = nn.ReLU(inplace=False)

    def forward(self, xs: list[torch.Tensor]) -> list[torch.Tensor]:
        xs = [branch(x) for branch, x in zip(self.branches, xs)]
        out = []
        for i, row in enumerate(self.fuse_layers):
            y = xs[i]
            for j, layer in enumerate(row):
                if j == i:
                    continue
                z = layer(xs[j])
                if j > i:
                    z = F.interpolate(z, size=xs[i].shape[-2:], mode="bilinear", align_corners=False)
                y = y + z
            out.append(self.relu(y))
        return out


class HRNet(nn.Module):
    def __init__(self, width: int):
        super().__init__()
        w = HRNET_WIDTHS[width]
        self.width = width
        self.conv1 = nn.Conv2d(3, 64, 3, 2, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(64)
        self.conv2 = nn.Conv2d(64, 64, 3, 2, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(64)
        self.relu = nn.ReLU(inplace=True)
        self.layer1 = nn.Sequential(Bottleneck(64, 64, downsample=_downsample(64, 256)),
                                    *[Bottleneck(256, 64) for _ in range(3)])
        prev = (256,)
        for stage, (modules, branches) in STAGE_SPECS.items():
            widths = tuple(w * 2 ** b for b in range(branches))
            self.add_module(f"transition{stage - 1}", self._transition(prev, widths))
            self.add_module(f"stage{stage}", nn.Sequential(*[HRModule(widths) for _ in range(modules)]))
            prev = widths
        self.out_channels = prev
        self.strides = (4, 8, 16, 32)
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")

    def imagenet_part(self) -> nn.Module:
        """What an ImageNet checkpoint initialises: the whole network (its classification heads are dropped)."""
        return self

    @staticmethod
    def _transition(prev: tuple[int, ...], widths: tuple[int, ...]) -> nn.ModuleList:
        layers = []
        for i, cout in enumerate(widths):
            if i < len(prev):  # existing branch: a 3x3 conv only if the width changes (stage 1 -> 2)
                layers.append(nn.Identity() if prev[i] == cout else
                              nn.Sequential(nn.Conv2d(prev[i], cout, 3, 1, 1, bias=False), nn.BatchNorm2d(cout),
                                            nn.ReLU(inplace=True)))
            else:  # new lower-resolution branch from the last one (nested as in the public checkpoints:
                # transitionN.i.0.0 = conv, transitionN.i.0.1 = BN)
                layers.append(nn.Sequential(nn.Sequential(nn.Conv2d(prev[-1], cout, 3, 2, 1, bias=False),
                                                          nn.BatchNorm2d(cout), nn.ReLU(inplace=True))))
        return nn.ModuleList(layers)

    def forward(self, x) -> list[torch.Tensor]:
        x = self.relu(self.bn1(self.conv1(x)))
        x = self.relu(self.bn2(self.conv2(x)))
        xs = [self.layer1(x)]
        for stage in (2, 3, 4):
            transition = getattr(self, f"transition{stage - 1}")
            xs = [t(xs[min(i, len(xs) - 1)]) for i, t in enumerate(transition)]
            xs = getattr(self, f"stage{stage}")(xs)
        return xs

    @staticmethod
    def fuse(branches: list[torch.Tensor], size=None) -> torch.Tensor:
        """HRNetV2 representation: every branch resized to ``size`` (default: the first branch's) and
        concatenated. Larger branches are average-pooled (adaptive: 2x2 means at an exact factor of 2, no
        aliasing), smaller ones upsampled bilinearly."""
        size = tuple(int(s) for s in (size or branches[0].shape[-2:]))
        out = []
        for b in branches:
            if b.shape[-2] > size[0]:
                b = F.adaptive_avg_pool2d(b, size)
            elif tuple(b.shape[-2:]) != size:
                b = F.interpolate(b, size=size, mode="bilinear", align_corners=False)
            out.append(b)
        return torch.cat(out, dim=1)
