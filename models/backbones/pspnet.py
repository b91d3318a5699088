"""PSPNet-18/50/101 as a feature extractor: dilated ResNet + pyramid pooling module (Zhao et al. 2017).

Pyramid pooling as mmsegmentation's PSPHead: adaptive average pooling of C5 to 1x1, 2x2, 3x3, 6x6 bins,
each a 1x1 conv to ``ch`` + BN + ReLU, bilinear upsampling back (align_corners False), concatenation with
C5, then the 3x3 "bottleneck" conv to ``ch`` + BN + ReLU. ``ch`` = 512 on ResNet-50/101 (PPM+bottleneck
23.07M parameters), 128 on ResNet-18 (1.44M), the widths of mmseg/TDNet's PSPNet configs.

``forward(x)`` returns [C2, C3, C4, P5] where P5 is the bottleneck output (``ch`` channels, stride 8): a
dropout + 1x1 classifier on P5 is PSPNet itself (MSAF's "Baseline" row with a PSPNet backbone), and MSAF
takes P5 as its F5.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from models.backbones.resnet import DilatedResNet, conv_bn_relu

PSP_BINS = (1, 2, 3, 6)
PSP_CHANNELS = {18: 128, 50: 512, 101: 512}


class PyramidPooling(nn.Module):
    def __init__(self, in_channels: int, channels: int, bins=PSP_BINS):
        super().__init__()
        self.bins = tuple(bins)
        self.stages = nn.ModuleList(
            nn.Sequential(nn.AdaptiveAvgPool2d(b), *conv_bn_relu(in_channels, channels, k=1)) for b in self.bins)
        self.bottleneck = nn.Sequential(*conv_bn_relu(in_channels + len(self.bins) * channels, channels, k=3))
        self.out_channels = channels

    def forward(self, x):
        size = x.shape[-2:]
        pooled = [F.interpolate(stage(x), size=size, mode="bilinear", align_corners=False) for stage in self.stages]
        return self.bottleneck(torch.cat([x] + pooled, dim=1))


class PSPNetBackbone(nn.Module):
    def __init__(self, depth: int, stem: str = "v1c"):
        super().__init__()
        self.resnet = DilatedResNet(depth, stem)
        c5 = self.resnet.out_channels[-1]
        self.ppm = PyramidPooling(c5, PSP_CHANNELS[depth])
        self.out_channels = self.resnet.out_channels[:3] + (self.ppm.out_channels,)
        self.strides = self.resnet.strides

    def imagenet_part(self) -> nn.Module:
        """What an ImageNet checkpoint initialises: the ResNet (the pyramid pooling module is new)."""
        return self.resnet

    def forward(self, x):
        c2, c3, c4, c5 = self.resnet(x)
        return [c2, c3, c4, self.ppm(c5)]
