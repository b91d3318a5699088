"""The family and backbone table: which model code exists and which backbones each family takes.

A *family* is one piece of model code (``models/<family>.py``: ``BACKBONES`` and ``build(...)``); a *variant*
is a registry entry of config/variants.yaml that picks a family and sets its options. This table is what the
rest of the suite reads without importing the model code (torch): the pipeline's backbone wildcard and
experiment-schema check, the planner's family/backbone pairing, the complexity jobs' memory, and the labels
and colours of the tables and plots. tests/test_tables_agree.py checks it against the model modules and the
registry, so the two never drift apart.

New family: its module, one FAMILIES row, its registry entries. New backbone: its code, one BACKBONES row
(every family whose ``kinds`` include its kind takes it). docs/extending.md has the checklists.
"""
from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class BackboneInfo:
    name: str
    label: str                  # as the tables and plots print it
    kind: str                   # the code that builds it: mit (models/backbones/mit.py), resnet, pspnet, hrnet
    # Peak memory of one fvcore count (CPU, float32, batch 1) per megapixel of input, in MB: the complexity
    # jobs declare 1000 + this x megapixels. Measured: PSPNet-101 at 1024x2048 (one frame) 2.7 GB,
    # SD-CPC MiT-B5 at 480x853 (three frames) 1.7 GB.
    count_mb_per_mpix: int


@dataclass(frozen=True)
class FamilyInfo:
    name: str
    label: str                  # the method as the figures name it
    kinds: tuple[str, ...]      # backbone kinds the family's code accepts
    colour: str                 # the family's colour in every figure (matplotlib name)

    @property
    def module(self) -> str:
        """The model code: models/<name>.py."""
        return f"models.{self.name}"

    @property
    def backbones(self) -> tuple[str, ...]:
        return tuple(b.name for b in BACKBONES.values() if b.kind in self.kinds)


BACKBONES: dict[str, BackboneInfo] = {b.name: b for b in (
    *(BackboneInfo(f"mit_b{i}", f"MiT-B{i}", "mit", 1500) for i in range(6)),
    *(BackboneInfo(f"resnet{d}", f"ResNet-{d}", "resnet", 2500) for d in (18, 50, 101)),
    # PSPNet-XX: the dilated ResNet-XX with the pyramid pooling module
    *(BackboneInfo(f"pspnet{d}", f"PSPNet-{d}", "pspnet", 2500) for d in (18, 50, 101)),
    *(BackboneInfo(f"hrnet_w{w}", f"HRNet-W{w}", "hrnet", 2500) for w in (18, 48)),
)}

FAMILIES: dict[str, FamilyInfo] = {f.name: f for f in (
    FamilyInfo("segformer", "SegFormer", ("mit",), "tab:gray"),
    FamilyInfo("sdcpc", "SD-CPC", ("mit",), "tab:blue"),
    FamilyInfo("msaf", "MSAF", ("resnet", "pspnet", "hrnet"), "tab:orange"),
)}


def family_backbones(family: str) -> tuple[str, ...]:
    """Backbones a family takes; () for an unknown family."""
    return FAMILIES[family].backbones if family in FAMILIES else ()


def families_of_backbone(backbone: str) -> set[str]:
    return {f.name for f in FAMILIES.values() if backbone in f.backbones}


def backbone_label(name: str) -> str:
    """The printed name (MiT-B1, ResNet-50, ...); a name outside the table (a paper's "Res-101") as is."""
    return BACKBONES[name].label if name in BACKBONES else name
