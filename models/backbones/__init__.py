"""Backbones. CNN backbones by name (MSAF's; the MiT encoders live in models/backbones/mit.py).

    from models.backbones import build_cnn_backbone
    body = build_cnn_backbone("resnet50")   # .out_channels, .strides; forward(x) -> list of feature maps
    body = build_cnn_backbone("resnet18", stem="v1b")   # torchvision's 7x7 stem (ResNet/PSPNet only)

Every backbone has ``imagenet_part()``: the module an ImageNet checkpoint initialises (models/pretrained.py;
PSPNet's pyramid pooling module is not part of it).
"""
from __future__ import annotations

import importlib

# name -> (module, constructor); imported lazily so importing one family never builds another's code
CNN_BACKBONES: dict[str, tuple[str, str]] = {
    "resnet18": ("models.backbones.resnet", "resnet18"),
    "resnet50": ("models.backbones.resnet", "resnet50"),
    "resnet101": ("models.backbones.resnet", "resnet101"),
    "pspnet18": ("models.backbones.pspnet", "pspnet18"),
    "pspnet50": ("models.backbones.pspnet", "pspnet50"),
    "pspnet101": ("models.backbones.pspnet", "pspnet101"),
    "hrnet_w18": ("models.backbones.hrnet", "hrnet_w18"),
    "hrnet_w48": ("models.backbones.hrnet", "hrnet_w48"),
}


def build_cnn_backbone(name: str, stem: str | None = None):
    """``stem``: None (the backbone's own: ResNetV1c's deep stem for ResNet/PSPNet), or "v1c" / "v1b" for
    ResNet and PSPNet (models/backbones/resnet.py STEMS)."""
    if name not in CNN_BACKBONES:
        raise ValueError(f"unknown CNN backbone '{name}' (known: {', '.join(CNN_BACKBONES)})")
    module, fn = CNN_BACKBONES[name]
    if stem is not None and name.startswith("hrnet"):
        raise ValueError(f"{name} has its own stem; the stem option (v1b/v1c) is for ResNet and PSPNet")
    builder = getattr(importlib.import_module(module), fn)
    return builder() if stem is None else builder(stem=stem)
