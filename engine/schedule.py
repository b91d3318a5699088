"""Optimiser parameter groups and the poly learning-rate schedule with linear warm-up.

Learning-rate groups are declared by the model, never guessed from parameter names. A model's
``lr_groups() -> {group: [nn.Module | nn.Parameter, ...]}`` (docs/architecture.md, model contract) names

    "backbone"  the ImageNet-pretrained encoder            base LR              (x 1)
    "offset"    layers that emit sampling positions        base LR x offset_lr_mult
    (the rest)  decode head, temporal modules, ...         base LR x head_lr_mult      ("head")

``head_lr_mult`` = 10 is the SegFormer/CFFM mmseg recipe. ``offset_lr_mult`` = 0.1 is what the field gives
freshly initialised deformable offsets: Deformable DETR trains its sampling offsets at 0.1x the base LR
(``lr_linear_proj_mult``), mmcv/mmengine's ``dcn_offset_lr_mult`` multiplies the base LR of DCN offset
layers the same way. An offset layer inside the backbone is still an offset layer (offset wins over
backbone). A model without the hook falls back to its ``backbone`` attribute (a plain ``nn.Module``) as
the backbone group; a model with neither trains every parameter at the base LR, with a warning.
1-D parameters (norm weights, biases) get no weight decay when ``no_decay_norm_bias``.

Schedule (mmseg's PolyLR + linear warm-up, as both papers' code bases run it), for the step that follows
``it`` completed steps (it = 0, 1, ..., iters-1):

    poly(it)   = (1 - it / iters) ** power * (1 - min_lr / lr) + min_lr / lr
    warmup(it) = 1 - (1 - it / warmup_iters) * (1 - warmup_ratio)     for it < warmup_iters, else 1
    lr_group(it) = group_base_lr * poly(it) * warmup(it)
"""
from __future__ import annotations

import warnings

import torch

LR_GROUPS = ("backbone", "head", "offset")
_PRECEDENCE = ("offset", "backbone")   # a parameter declared in both groups takes the first


def _parameters(entries) -> list[torch.nn.Parameter]:
    out = []
    for e in entries:
        if isinstance(e, torch.nn.Parameter):
            out.append(e)
        elif isinstance(e, torch.nn.Module):
            out.extend(e.parameters())
        else:
            raise TypeError(f"lr_groups entries must be modules or parameters, got {type(e).__name__}")
    return out


def declared_groups(model: torch.nn.Module) -> dict[str, set[int]]:
    """{group: ids of its parameters} as the model declares them (``lr_groups`` hook, else its
    ``backbone`` attribute); {} when it declares nothing."""
    hook = getattr(model, "lr_groups", None)
    if callable(hook):
        declared = hook()
        unknown = sorted(set(declared) - set(LR_GROUPS))
        if unknown:
            raise ValueError(f"{type(model).__name__}.lr_groups(): unknown group(s) {', '.join(unknown)} "
                             f"(known: {', '.join(LR_GROUPS)})")
        return {g: {id(p) for p in _parameters(entries)} for g, entries in declared.items() if g != "head"}
    backbone = getattr(model, "backbone", None)
    if isinstance(backbone, torch.nn.Module):
        return {"backbone": {id(p) for p in backbone.parameters()}}
    return {}


def parameter_groups_by_name(model: torch.nn.Module) -> dict[str, str]:
    """{parameter name: lr group} for every parameter of the model."""
    declared = declared_groups(model)
    out = {}
    for name, p in model.named_parameters():
        out[name] = next((g for g in _PRECEDENCE if id(p) in declared.get(g, ())), "head")
    return out


def backbone_parameter_names(model: torch.nn.Module) -> set[str]:
    return {n for n, g in parameter_groups_by_name(model).items() if g == "backbone"}


def param_groups(model: torch.nn.Module, lr: float, head_lr_mult: float, weight_decay: float,
                 no_decay_norm_bias: bool = True, offset_lr_mult: float = 0.1) -> list[dict]:
    """AdamW groups: (backbone | head | offset) x (decay | no decay). Each group carries its ``lr_mult``."""
    by_name = parameter_groups_by_name(model)
    if not declared_groups(model):
        warnings.warn(f"{type(model).__name__} declares no lr_groups() and has no `backbone` submodule: one "
                      "learning rate for all parameters (head_lr_mult not applied)", stacklevel=2)
        by_name = dict.fromkeys(by_name, "backbone")
    mults = {"backbone": 1.0, "head": head_lr_mult, "offset": offset_lr_mult}
    groups: dict[tuple[str, bool], list] = {}
    for name, p in model.named_parameters():
        if not p.requires_grad:
            continue
        decay = not (no_decay_norm_bias and p.ndim <= 1)
        groups.setdefault((by_name[name], decay), []).append(p)
    out = []
    for (part, decay), params in sorted(groups.items()):   # fixed order: the optimiser state depends on it
        mult = mults[part]
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
