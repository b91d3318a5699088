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


class StreamingPredictor:
    """``predict`` over the clips of a test split, each frame through the backbone once: a model with the
    streaming hooks (``supports_streaming``) extracts every frame's features the first time a clip reads it
    and every later clip of that video reuses them (the same logits as the clip forward; a third of the
    backbone work for a three-frame clip). Other models, and single-frame clips, take the clip forward.
    Used by engine.infer and the validation during training (engine/validation.py), so both predict alike.

        stream = StreamingPredictor(model, device, clip_frames=3)
        ids = stream(clips, [(video, frame_ids), ...], size)   # clips (B, T, 3, H, W) of consecutive items
    """

    def __init__(self, model: torch.nn.Module, device: torch.device, clip_frames: int):
        self.model, self.device = model, device
        self.stream = supports_streaming(model) and clip_frames > 1
        self.cache: dict[tuple[str, str], list[torch.Tensor]] = {}   # (video, frame) -> features per level

    @torch.no_grad()
    def __call__(self, clips: torch.Tensor, keys: list[tuple[str, list[str]]], size: tuple[int, int]) -> torch.Tensor:
        """``clips`` (B, T, 3, H, W) on any device; ``keys``: per clip its video and the frame of each of its T
        slots. Features of videos not in this batch are dropped (the items come video by video)."""
        if not self.stream:
            return predict(self.model, clips.to(self.device, non_blocking=True), size)
        names = {video for video, _ in keys}
        self.cache = {k: v for k, v in self.cache.items() if k[0] in names}
        for clip, (video, frames) in zip(clips, keys):
            new: dict[tuple[str, str], int] = {}   # a frame not seen yet -> its first slot (a video's start repeats frame 0)
            for t, f in enumerate(frames):
                if (video, f) not in self.cache:
                    new.setdefault((video, f), t)
            if new:
                feats = self.model.extract(clip[list(new.values())].to(self.device, non_blocking=True))
                for j, key in enumerate(new):
                    self.cache[key] = [level[j] for level in feats]
        first = self.cache[(keys[0][0], keys[0][1][0])]
        stacked = [torch.stack([torch.stack([self.cache[(video, f)][lv] for f in frames]) for video, frames in keys])
                   for lv in range(len(first))]
        return resize_logits(target_logits(self.model.decode(stacked)), size).argmax(1)
