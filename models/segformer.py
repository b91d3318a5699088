"""SegFormer family: MiT encoder + all-MLP head, single frame (the image baseline of both papers).

    build(backbone, num_classes, ref_offsets=(), head_width=256, drop_path_rate=0.1, dropout=0.1, output_stride=4)

Options (registry ``options`` or ``build_model`` overrides):
    head_width      E, the all-MLP head width (256: the video papers' setting for every backbone;
                    768 reproduces the original SegFormer B2..B5 head)
    drop_path_rate  stochastic depth of the encoder, spread linearly over its blocks (0.1)
    dropout         Dropout2d before the classifier (0.1)
    output_stride   4 (SegFormer) or 8: fuse and classify at the F2 size, SD-CPC's output stride (a control
                    that separates what SD-CPC's temporal modules add from what its coarser output costs)

Model contract (docs/architecture.md): ``forward(clip (B, T, 3, H, W))`` with T = 1 returns logits
(B, K, H/s, W/s), s = output_stride, in eval mode and ``{"logits": ...}`` in train mode; ``loss(outputs, target)`` is
cross-entropy (ignore 255) with the logits upsampled to the label, as mmseg trains SegFormer.
``train_only_modules()`` lists submodules run only for the loss (none here), see metrics/complexity.py;
``lr_groups()`` puts the encoder at the base LR (engine/schedule.py).
"""
from __future__ import annotations

import torch
import torch.nn as nn

from common.families import family_backbones
from models.backbones.mit import DROP_PATH_RATE, build_mit
from models.heads.segformer_head import DROPOUT, HEAD_WIDTH, SegFormerHead
from models.losses import cross_entropy

BACKBONES = family_backbones("segformer")   # the MiT rows of common/families.py


class SegFormer(nn.Module):
    def __init__(self, backbone: str, num_classes: int, head_width: int = HEAD_WIDTH,
                 drop_path_rate: float = DROP_PATH_RATE, dropout: float = DROPOUT, output_stride: int = 4):
        super().__init__()
        self.backbone_name, self.num_classes = backbone, num_classes
        self.backbone = build_mit(backbone, drop_path_rate)
        self.decode_head = SegFormerHead(self.backbone.channels, num_classes, head_width, dropout, output_stride)

    def forward(self, clip: torch.Tensor):
        if clip.dim() != 5:
            raise ValueError(f"SegFormer expects a clip (B, T, 3, H, W), got shape {tuple(clip.shape)}")
        logits = self.decode_head(self.backbone(clip[:, -1]))   # single-frame model: the target is last
        return {"logits": logits} if self.training else logits

    def loss(self, outputs, target: torch.Tensor) -> dict[str, torch.Tensor]:
        logits = outputs["logits"] if isinstance(outputs, dict) else outputs
        ce = cross_entropy(logits, target)
        return {"total": ce, "ce": ce}

    def train_only_modules(self) -> list[nn.Module]:
        return []

    def lr_groups(self) -> dict[str, list[nn.Module]]:
        """The MiT encoder at the base LR, the head at the head LR (engine/schedule.py)."""
        return {"backbone": [self.backbone]}


def build(backbone: str, num_classes: int, ref_offsets=(), **options) -> SegFormer:
    if backbone not in BACKBONES:
        raise ValueError(f"segformer: unknown backbone '{backbone}' (valid: {', '.join(BACKBONES)})")
    if tuple(ref_offsets):
        raise ValueError(f"segformer is a single-frame model; ref_offsets must be empty, got {tuple(ref_offsets)}")
    known = {"head_width", "drop_path_rate", "dropout", "output_stride"}
    unknown = set(options) - known
    if unknown:
        raise ValueError(f"segformer: unknown option(s) {', '.join(sorted(unknown))} (known: {', '.join(sorted(known))})")
    return SegFormer(backbone, num_classes, **options)
