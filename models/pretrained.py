"""Optional ImageNet weights for the CNN backbones, from a local checkpoint file (never downloaded).

    from models.pretrained import load_backbone_weights
    report = load_backbone_weights(model.features.body, "resnet50_v1c.pth", "resnet50")

Accepted key naming (the usual public checkpoints):
- ResNetV1c as mmcv/mmseg publish it (``stem.0``, ``stem.1`` ... ``stem.7``, ``layerN.i.conv1`` ...): our
  names, loaded as they are.
- timm's deep-stem ResNets (``conv1.0``, ``conv1.1``, ``conv1.3``, ``conv1.4``, ``conv1.6`` + ``bn1``):
  mapped onto ``stem.0/1/3/4/6/7``.
- torchvision's 7x7-stem ResNet (``conv1``/``bn1`` of shape 64x3x7x7): the stages load, the stem cannot
  (its keys are reported as unexpected and ``stem.*`` as missing).
- HRNet as the official HRNet-Image-Classification / mmseg checkpoints (``conv1``, ``bn1``, ``layer1``,
  ``transitionN``, ``stageN.m.branches``, ``stageN.m.fuse_layers``): our names.
Wrappers ``{"state_dict": ...}`` / ``{"model": ...}`` and prefixes ``module.`` / ``backbone.`` are removed.
Classification-only parts (``fc``, ``classifier``, HRNet's ``incre_modules``/``downsamp_modules``/
``final_layer``) and segmentation heads (``decode_head``, ``auxiliary_head``) are ignored, and listed so.
For PSPNet backbones the ResNet part loads; the pyramid pooling module keeps its random init.

The report says what happened: ``loaded`` (count), ``missing`` (model keys left at random init, the BN
``num_batches_tracked`` counters excepted), ``unexpected`` (checkpoint keys with no place in the model),
``mismatched`` (same name, different shape: not loaded), ``ignored``.
"""
from __future__ import annotations

from pathlib import Path

import torch
from torch import nn

IGNORED_PREFIXES = ("fc.", "classifier.", "incre_modules.", "downsamp_modules.", "final_layer.", "decode_head.",
                    "auxiliary_head.", "head.")
WRAPPER_PREFIXES = ("module.", "backbone.")
TIMM_DEEP_STEM = {"conv1.0.": "stem.0.", "conv1.1.": "stem.1.", "conv1.3.": "stem.3.", "conv1.4.": "stem.4.",
                  "conv1.6.": "stem.6.", "bn1.": "stem.7."}


def _unwrap(obj) -> dict[str, torch.Tensor]:
    for key in ("state_dict", "model"):
        if isinstance(obj, dict) and key in obj and isinstance(obj[key], dict):
            obj = obj[key]
    if not isinstance(obj, dict):
        raise ValueError("checkpoint is not a state dict")
    return {k: v for k, v in obj.items() if isinstance(v, torch.Tensor)}


def map_keys(state: dict[str, torch.Tensor], family: str) -> tuple[dict[str, torch.Tensor], list[str]]:
    """Public naming -> ours. Returns (mapped state, ignored keys)."""
    out, ignored = {}, []
    timm_stem = family == "resnet" and any(k.startswith("conv1.0.") for k in state)
    for key, value in state.items():
        k = key
        changed = True
        while changed:  # strip stacked wrappers such as module.backbone.
            changed = False
            for prefix in WRAPPER_PREFIXES:
                if k.startswith(prefix):
                    k, changed = k[len(prefix):], True
        if k.startswith(IGNORED_PREFIXES):
            ignored.append(key)
            continue
        if timm_stem:
            for src, dst in TIMM_DEEP_STEM.items():
                if k.startswith(src):
                    k = dst + k[len(src):]
                    break
        out[k] = value
    return out, ignored


def load_state(module: nn.Module, state: dict[str, torch.Tensor], family: str) -> dict:
    """Load a public-named state dict into ``module`` (non-strict), reporting every key that did not load."""
    mapped, ignored = map_keys(_unwrap(state), family)
    own = module.state_dict()
    loadable, mismatched = {}, []
    for k, v in mapped.items():
        if k in own and own[k].shape != v.shape:
            mismatched.append((k, list(v.shape), list(own[k].shape)))
        elif k in own:
            loadable[k] = v
    result = module.load_state_dict(loadable, strict=False)
    missing = [k for k in result.missing_keys if not k.endswith("num_batches_tracked")]
    missing += [k for k, _, _ in mismatched]
    unexpected = sorted(k for k in mapped if k not in own)
    return {"loaded": len(loadable), "missing": sorted(set(missing)), "unexpected": unexpected,
            "mismatched": mismatched, "ignored": sorted(ignored)}


def load_backbone_weights(body: nn.Module, path: str | Path, backbone: str) -> dict:
    """Load a local ImageNet checkpoint into a backbone built by models.backbones (see module docstring)."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: pretrained checkpoint not found (give a local file; nothing is downloaded)")
    state = torch.load(path, map_location="cpu", weights_only=True)
    family = "hrnet" if backbone.startswith("hrnet") else "resnet"
    target = body.resnet if backbone.startswith("pspnet") else body
    report = load_state(target, state, family)
    report.update(init="pretrained", checkpoint=str(path))
    if backbone.startswith("pspnet"):
        report["random_init"] = "ppm (pyramid pooling module)"
    return report


def describe(report: dict) -> str:
    """One line for logs and results: where the backbone's weights came from."""
    if report.get("init") != "pretrained":
        return "backbone: random init (no pretrained checkpoint given)"
    return (f"backbone: {report['checkpoint']} ({report['loaded']} tensors loaded, {len(report['missing'])} missing, "
            f"{len(report['unexpected'])} unexpected, {len(report['mismatched'])} shape-mismatched)")

