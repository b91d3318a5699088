"""Backbones. CNN backbones by name (MSAF's; the MiT encoders live in models/backbones/mit.py).

    from models.backbones import build_cnn_backbone
    body = build_cnn_backbone("resnet50")   # .out_channels, .strides; forward(x) -> list of feature maps
    body = build_cnn_backbone("resnet18", stem="v1b")   # torchvision's 7x7 stem (ResNet/PSPNet only)

Every backbone has ``imagenet_part()``: the module an ImageNet checkpoint initialises (models/pretrained.py;
PSPNet's pyramid pooling module is not part of it).
"""
from __future__ import annotations

import importlib

# name -> (module, class, depth or width); imported lazily so importing one family never builds another's code
CNN_BACKBONES: dict[str, tuple[str, str, int]] = {
    "resnet18": ("models.backbones.resnet", "DilatedResNet", 18),
    "resnet50": ("models.backbones.resnet", "DilatedResNet", 50),
    "resnet101": ("models.backbones.resnet", "DilatedResNet", 101),
    "pspnet18": ("models.backbones.pspnet", "PSPNetBackbone", 18),
    "pspnet50": ("models.backbones.pspnet", "PSPNetBackbone", 50),
    "pspnet101": ("models.backbones.pspnet", "PSPNetBackbone", 101),
    "hrnet_w18": ("models.backbones.hrnet", "HRNet", 18),
    "hrnet_w48": ("models.backbones.hrnet", "HRNet", 48),
}


def build_cnn_backbone(name: str, stem: str | None = None):
    """``stem``: None (the backbone's own: ResNetV1c's deep stem for ResNet/PSPNet), or "v1c" / "v1b" for
    ResNet and PSPNet (models/backbones/resnet.py STEMS)."""
    if name not in CNN_BACKBONES:
        raise ValueError(f"unknown CNN backbone '{name}' (known: {', '.join(CNN_BACKBONES)})")
    module, cls, size = CNN_BACKBONES[name]
    if stem is not None and name.startswith("hrnet"):
        raise ValueError(f"{name} has its own stem; the stem option (v1b/v1c) is for ResNet and PSPNet")
    builder = getattr(importlib.import_module(module), cls)
    return builder(size) if stem is None else builder(size, stem=stem)
