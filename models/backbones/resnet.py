"""Dilated ResNet-18/50/101 in the form segmentation work uses (mmsegmentation's ResNetV1c).

- Stem ``v1c`` (default, mmseg's ResNetV1c): three 3x3 convolutions (3->32 stride 2, 32->32, 32->64), BN +
  ReLU each, then 3x3 max-pool stride 2. Stem ``v1b`` (torchvision's, as TDNet's PSPNet-18 uses): one 7x7
  stride-2 convolution 3->64 + BN + ReLU (``conv1``, ``bn1``), then the same max-pool: the stem torchvision's
  ImageNet ResNets were trained with, so their weights load whole (models/pretrained.py).
- Output stride 8 (MSAF Sec. 3.2): the strides of stages 3 and 4 (the paper's F4 and F5) are 1 and their
  dilations 2 and 4; the first block of each dilated stage uses half the dilation (mmseg's
  ``contract_dilation``), which keeps its 3x3 sampling grid contiguous with the previous stage's.
- Bottleneck puts the stride on its 3x3 convolution (v1b/v1c); the shortcut is a strided 1x1 conv + BN.
- No global pooling / classifier (the paper removes them).

Module names follow the public checkpoints (``stem.0``/``stem.1`` ... for v1c, ``conv1``/``bn1`` for v1b,
``layerN.i.conv1``/``bn1``, ``downsample.0``/``.1``), so ImageNet ResNetV1c (mmcv) and torchvision weights
load key for key (models/pretrained.py).

``forward(x)`` returns the four stage outputs [C2, C3, C4, C5] (strides 4, 8, 8, 8); the paper calls them
F2..F5 (F1 being the stem).
"""
from __future__ import annotations

from torch import nn

# depth -> (block kind, blocks per stage)
RESNET_SPECS = {
    18: ("basic", (2, 2, 2, 2)),
    50: ("bottleneck", (3, 4, 6, 3)),
    101: ("bottleneck", (3, 4, 23, 3)),
}
STAGE_WIDTHS = (64, 128, 256, 512)  # planes; a bottleneck outputs 4x
STAGE_STRIDES = (1, 2, 1, 1)        # output stride 8
STAGE_DILATIONS = (1, 1, 2, 4)
STEMS = ("v1c", "v1b")


def conv_bn_relu(cin: int, cout: int, k: int = 3, stride: int = 1, dilation: int = 1) -> list[nn.Module]:
    return [nn.Conv2d(cin, cout, k, stride, dilation * (k // 2), dilation, bias=False),
            nn.BatchNorm2d(cout), nn.ReLU(inplace=True)]


class BasicBlock(nn.Module):
    expansion = 1

    def __init__(self, inplanes: int, planes: int, stride: int = 1, dilation: int = 1,
                 downsample: nn.Module | None = None):
        super().__init__()
        self.conv1 = nn.Conv2d(inplanes, planes, 3, stride, dilation, dilation, bias=False)
        self.bn1 = nn.BatchNorm2d(planes)
        self.conv2 = nn.Conv2d(planes, planes, 3, 1, dilation, dilation, bias=False)
        self.bn2 = nn.BatchNorm2d(planes)
        self.relu = nn.ReLU(inplace=True)
        self.downsample = downsample

    def forward(self, x):
        identity = x if self.downsample is None else self.downsample(x)
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return self.relu(out + identity)


class Bottleneck(nn.Module):
    expansion = 4

    def __init__(self, inplanes: int, planes: int, stride: int = 1, dilation: int = 1,
                 downsample: nn.Module | None = None):
        super().__init__()
        self.conv1 = nn.Conv2d(inplanes, planes, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(planes)
        self.conv2 = nn.Conv2d(planes, planes, 3, stride, dilation, dilation, bias=False)
        self.bn2 = nn.BatchNorm2d(planes)
        self.conv3 = nn.Conv2d(planes, planes * 4, 1, bias=False)
        self.bn3 = nn.BatchNorm2d(planes * 4)
        self.relu = nn.ReLU(inplace=True)
        self.downsample = downsample

    def forward(self, x):
        identity = x if self.downsample is None else self.downsample(x)
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.relu(self.bn2(self.conv2(out)))
        out = self.bn3(self.conv3(out))
        return self.relu(out + identity)


class DilatedResNet(nn.Module):
    def __init__(self, depth: int, stem: str = "v1c"):
        super().__init__()
        if depth not in RESNET_SPECS:
            raise ValueError(f"ResNet depth must be one of {sorted(RESNET_SPECS)}, got {depth}")
        if stem not in STEMS:
            raise ValueError(f"ResNet stem must be one of {', '.join(STEMS)}, got {stem!r}")
        kind, blocks = RESNET_SPECS[depth]
        block = BasicBlock if kind == "basic" else Bottleneck
        self.depth, self.stem_type = depth, stem
        if stem == "v1c":
            self.stem = nn.Sequential(*conv_bn_relu(3, 32, stride=2), *conv_bn_relu(32, 32), *conv_bn_relu(32, 64))
        else:
            self.conv1 = nn.Conv2d(3, 64, 7, 2, 3, bias=False)
            self.bn1 = nn.BatchNorm2d(64)
            self.relu = nn.ReLU(inplace=True)
        self.maxpool = nn.MaxPool2d(3, 2, 1)
        inplanes = 64
        self.dilations: list[list[int]] = []  # per stage, per block: the 3x3 dilation actually used
        for i, (planes, n, stride, dilation) in enumerate(zip(STAGE_WIDTHS, blocks, STAGE_STRIDES, STAGE_DILATIONS)):
            layer, inplanes, dil = self._make_layer(block, inplanes, planes, n, stride, dilation)
            self.add_module(f"layer{i + 1}", layer)
            self.dilations.append(dil)
        self.out_channels = tuple(w * block.expansion for w in STAGE_WIDTHS)
        self.strides = (4, 8, 8, 8)
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")

    @staticmethod
    def _make_layer(block, inplanes, planes, n, stride, dilation):
        downsample = None
        if stride != 1 or inplanes != planes * block.expansion:
            downsample = nn.Sequential(nn.Conv2d(inplanes, planes * block.expansion, 1, stride, bias=False),
                                       nn.BatchNorm2d(planes * block.expansion))
        first_dilation = dilation // 2 if dilation > 1 else 1  # contract_dilation
        layers = [block(inplanes, planes, stride, first_dilation, downsample)]
        dils = [first_dilation]
        inplanes = planes * block.expansion
        for _ in range(1, n):
            layers.append(block(inplanes, planes, 1, dilation))
            dils.append(dilation)
        return nn.Sequential(*layers), inplanes, dils

    def imagenet_part(self) -> nn.Module:
        """What an ImageNet checkpoint initialises: the whole network."""
        return self

    def forward(self, x):
        x = self.stem(x) if self.stem_type == "v1c" else self.relu(self.bn1(self.conv1(x)))
        x = self.maxpool(x)
        c2 = self.layer1(x)
        c3 = self.layer2(c2)
        c4 = self.layer3(c3)
        c5 = self.layer4(c4)
        return [c2, c3, c4, c5]
