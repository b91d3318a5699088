"""What every caller does with a model's output: resize target logits to the label size, then argmax.

Models return logits at their own output stride (1/4 for SegFormer-style heads, 1/8 for dilated ResNets);
the evaluator, the inference CLI and the FPS meter all resize here, so they measure the same thing.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F


def target_logits(output) -> torch.Tensor:
    """The target-frame logits (B, K, h, w) from what a model's forward returned (tensor or dict)."""
    if isinstance(output, dict):
        return output["logits"]
    return output


def resize_logits(logits: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    if tuple(logits.shape[-2:]) == tuple(size):
        return logits
    return F.interpolate(logits, size=size, mode="bilinear", align_corners=False)


def supports_streaming(model: torch.nn.Module) -> bool:
    """Whether a model offers the streaming hooks: ``extract(frames)`` (backbone, per frame) and
    ``decode(stacked features)`` (everything after it), its forward being ``decode(extract(...))``."""
    return callable(getattr(model, "extract", None)) and callable(getattr(model, "decode", None))


@torch.no_grad()
def predict(model: torch.nn.Module, clip: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """Clip (B, T, 3, H, W) -> predicted train ids (B, *size), int64. The model must be in eval mode."""
    return resize_logits(target_logits(model(clip)), size).argmax(1)
