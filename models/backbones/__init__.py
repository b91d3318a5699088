"""Backbones. CNN backbones by name (MSAF's; the MiT encoders live in models/backbones/mit.py).

    from models.backbones import build_cnn_backbone
    body = build_cnn_backbone("resnet50")   # .out_channels, .strides; forward(x) -> list of feature maps
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


def build_cnn_backbone(name: str):
    if name not in CNN_BACKBONES:
        raise ValueError(f"unknown CNN backbone '{name}' (known: {', '.join(CNN_BACKBONES)})")
    module, fn = CNN_BACKBONES[name]
    return getattr(importlib.import_module(module), fn)()
