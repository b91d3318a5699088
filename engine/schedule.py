"""Optimiser parameter groups and the poly learning-rate schedule with linear warm-up.

Parameter groups: backbone parameters train at the base LR, every other parameter (decode head, temporal
modules, training-only projections) at base LR x ``head_lr_mult`` - the SegFormer/CFFM recipe. 1-D
parameters (norm weights, biases) get no weight decay when ``no_decay_norm_bias``.

Which parameters are "backbone": those of ``backbone_module(model)``: ``model.backbone`` (SegFormer,
SD-CPC), else ``model.features.body`` (MSAF's shared CNN; for PSPNet backbones this includes the pyramid
pooling module, which is part of that body), else the parameters whose name starts with ``backbone.`` or
``encoder.``. A model with none of these trains every parameter at the base LR, with a warning.

Schedule (mmseg's PolyLR + linear warm-up, as both papers' code bases run it), for the step that follows
``it`` completed steps (it = 0, 1, ..., iters-1):

    poly(it)   = (1 - it / iters) ** power * (1 - min_lr / lr) + min_lr / lr
    warmup(it) = 1 - (1 - it / warmup_iters) * (1 - warmup_ratio)     for it < warmup_iters, else 1
    lr_group(it) = group_base_lr * poly(it) * warmup(it)
"""
from __future__ import annotations

import warnings

import torch


def backbone_module(model: torch.nn.Module) -> torch.nn.Module | None:
    """The image backbone inside a model, by the families' attribute conventions (None if not found)."""
    backbone = getattr(model, "backbone", None)
    if isinstance(backbone, torch.nn.Module):
        return backbone
    body = getattr(getattr(model, "features", None), "body", None)
    if isinstance(body, torch.nn.Module):
        return body
    return None


def backbone_parameter_names(model: torch.nn.Module) -> set[str]:
    backbone = backbone_module(model)
    if backbone is not None:
        ids = {id(p) for p in backbone.parameters()}
        return {n for n, p in model.named_parameters() if id(p) in ids}
    return {n for n, _ in model.named_parameters() if n.startswith(("backbone.", "encoder."))}


def param_groups(model: torch.nn.Module, lr: float, head_lr_mult: float, weight_decay: float,
                 no_decay_norm_bias: bool = True) -> list[dict]:
    """AdamW groups: (backbone | head) x (decay | no decay). Each group carries its ``lr_mult``."""
    in_backbone = backbone_parameter_names(model)
    if not in_backbone:
        warnings.warn(f"{type(model).__name__} has no `backbone` submodule: one learning rate for all "
                      "parameters (head_lr_mult not applied)", stacklevel=2)
    groups: dict[tuple[str, bool], list] = {}
    for name, p in model.named_parameters():
        if not p.requires_grad:
            continue
        part = "backbone" if (name in in_backbone or not in_backbone) else "head"
        decay = not (no_decay_norm_bias and p.ndim <= 1)
        groups.setdefault((part, decay), []).append(p)
    out = []
    for (part, decay), params in sorted(groups.items()):   # fixed order: the optimiser state depends on it
        mult = 1.0 if part == "backbone" else head_lr_mult
        out.append({"params": params, "lr": lr * mult, "initial_lr": lr * mult, "lr_mult": mult,
                    "weight_decay": weight_decay if decay else 0.0, "name": f"{part}{'' if decay else '_no_decay'}"})
    return out


class PolyWarmup:
    """LR factor as a function of completed steps; a callable object so LambdaLR checkpoints its fields."""

    def __init__(self, iters: int, warmup_iters: int = 0, warmup_ratio: float = 1e-6, power: float = 1.0,
                 min_lr_ratio: float = 0.0):
        self.iters = int(iters)
        self.warmup_iters = min(int(warmup_iters), self.iters)
        self.warmup_ratio = float(warmup_ratio)
        self.power = float(power)
        self.min_lr_ratio = float(min_lr_ratio)

    def __call__(self, it: int) -> float:
        it = min(max(int(it), 0), self.iters)
        factor = (1.0 - it / self.iters) ** self.power * (1.0 - self.min_lr_ratio) + self.min_lr_ratio
        if it < self.warmup_iters:
            factor *= 1.0 - (1.0 - it / self.warmup_iters) * (1.0 - self.warmup_ratio)
        return factor


def make_scheduler(optimizer: torch.optim.Optimizer, iters: int, warmup_iters: int, warmup_ratio: float,
                   power: float, min_lr: float, lr: float) -> torch.optim.lr_scheduler.LambdaLR:
    """LambdaLR over every group (each group's base LR already includes its multiplier)."""
    fn = PolyWarmup(iters, warmup_iters, warmup_ratio, power, min_lr / lr if lr > 0 else 0.0)
    return torch.optim.lr_scheduler.LambdaLR(optimizer, lr_lambda=fn)
