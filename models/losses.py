"""Loss helpers every family shares. Keep this small: family-specific losses live with their family.

    from models.losses import cross_entropy, IGNORE_INDEX
    ce = cross_entropy(logits, target)                      # logits upsampled to the label (SegFormer/mmseg)
    ce = cross_entropy(logits, target, at="logits")         # label downsampled (nearest) to the logits

Both return the mean over non-ignored pixels, and 0 (with a gradient path) when every pixel is ignored,
where ``F.cross_entropy`` would return NaN.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F

from videos.info import IGNORE_INDEX


def resize_target(target: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """(B, H, W) int64 train ids -> (B, *size) by nearest sampling (labels are never interpolated)."""
    if tuple(target.shape[-2:]) == tuple(size):
        return target
    return F.interpolate(target[:, None].float(), size=size, mode="nearest")[:, 0].long()


def cross_entropy(logits: torch.Tensor, target: torch.Tensor, *, at: str = "label",
                  ignore_index: int = IGNORE_INDEX, weight: torch.Tensor | None = None) -> torch.Tensor:
    """Pixel-wise cross-entropy with an ignore index.

    logits (B, K, h, w); target (B, H, W) int64. ``at="label"`` resizes the logits bilinearly
    (align_corners False) to (H, W), as mmseg does; ``at="logits"`` resizes the target to (h, w) with
    nearest sampling (cheaper, for auxiliary losses on features).
    """
    if at == "label":
        if tuple(logits.shape[-2:]) != tuple(target.shape[-2:]):
            logits = F.interpolate(logits, size=target.shape[-2:], mode="bilinear", align_corners=False)
    elif at == "logits":
        target = resize_target(target, logits.shape[-2:])
    else:
        raise ValueError(f"cross_entropy: at must be 'label' or 'logits', got {at!r}")
    losses = F.cross_entropy(logits, target, weight=weight, ignore_index=ignore_index, reduction="none")
    valid = target != ignore_index
    if weight is None:
        return losses.sum() / valid.sum().clamp(min=1)
    # weighted mean as F.cross_entropy defines it: divide by the summed weights of the valid pixels
    denom = weight[target.clamp(max=weight.numel() - 1)][valid].sum()
    return losses.sum() / denom.clamp(min=torch.finfo(losses.dtype).tiny)
