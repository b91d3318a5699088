"""Clip augmentation: one set of random parameters drawn per clip, applied identically to every frame.

The training pipeline of the papers' mmsegmentation configs, in its order:
random resize (ratio range around a base scale, aspect kept) -> random crop (retried so no single class
covers more than ``cat_max_ratio`` of the crop) -> horizontal flip -> photometric distortion (brightness,
contrast, saturation, hue; mmseg's PhotoMetricDistortion) -> ImageNet normalisation -> pad to the crop
size (image 0 after normalisation, as mmseg pads the normalised image; label 255).

Every random draw happens in ``sample_*`` from one numpy Generator and is stored in a small dataclass;
``apply_*`` are deterministic, so the same parameters on every frame of a clip give the same geometry and
colours (tests/test_videos_clips.py checks it).
"""
from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np
import torch

from videos.info import IGNORE_INDEX

IMAGENET_MEAN = np.array([0.485, 0.456, 0.406], dtype=np.float32) * 255
IMAGENET_STD = np.array([0.229, 0.224, 0.225], dtype=np.float32) * 255

# mmseg defaults (configs of SegFormer / CFFM / SD-CPC): one table.
AUGMENT_DEFAULTS = dict(
    ratio_range=(0.5, 2.0),     # random rescale of the base scale
    cat_max_ratio=0.75,         # RandomCrop: retry while one class covers more than this
    crop_tries=10,
    flip_prob=0.5,
    brightness_delta=32,        # PhotoMetricDistortion
    contrast_range=(0.5, 1.5),
    saturation_range=(0.5, 1.5),
    hue_delta=18,
)


@dataclass(frozen=True)
class Geometry:
    size: tuple[int, int]          # (H, W) after the random resize
    crop: tuple[int, int, int, int]  # (y0, x0, h, w) inside the resized frame
    flip: bool


@dataclass(frozen=True)
class Photometric:
    brightness: float | None       # additive delta, or None when not applied
    contrast: float | None         # multiplicative alpha
    contrast_first: bool
    saturation: float | None
    hue: int | None


def check_options(crop=None, scale=None, test_scale=None, size_divisor=None,
                  ratio_range=AUGMENT_DEFAULTS["ratio_range"], cat_max_ratio: float = AUGMENT_DEFAULTS["cat_max_ratio"],
                  flip_prob: float = AUGMENT_DEFAULTS["flip_prob"]) -> None:
    """ValueError, naming the option, for values OpenCV or numpy would otherwise fail on mid-run."""
    if size_divisor is not None and not (isinstance(size_divisor, (int, np.integer)) and size_divisor >= 1):
        raise ValueError(f"size_divisor must be a positive integer, got {size_divisor!r}")
    for name, hw in (("crop", crop), ("scale", scale), ("test_scale", test_scale)):
        if hw is not None and (len(tuple(hw)) != 2 or not all(isinstance(v, (int, np.integer)) and v >= 1
                                                              for v in hw)):
            raise ValueError(f"{name} must be two positive integers (H, W), got {list(hw)}")
    if ratio_range and (len(tuple(ratio_range)) != 2 or not 0 < ratio_range[0] <= ratio_range[1]):
        raise ValueError(f"ratio_range must be (low, high) with 0 < low <= high, got {list(ratio_range)}")
    if not 0 < cat_max_ratio <= 1:
        raise ValueError(f"cat_max_ratio must be in (0, 1], got {cat_max_ratio}")
    if not 0 <= flip_prob <= 1:
        raise ValueError(f"flip_prob must be in [0, 1], got {flip_prob}")


def rescale_size(hw: tuple[int, int], base: tuple[int, int], ratio: float) -> tuple[int, int]:
    """mmcv's keep-ratio rescale: the largest size with the frame's aspect that fits ratio * base
    (long side within the long base edge, short side within the short one)."""
    h, w = hw
    long_b, short_b = max(base) * ratio, min(base) * ratio
    s = min(long_b / max(h, w), short_b / min(h, w))
    return max(1, int(h * s + 0.5)), max(1, int(w * s + 0.5))


def align_size(hw: tuple[int, int], divisor: int | None) -> tuple[int, int]:
    """Each side rounded up to a multiple of ``divisor`` (CFFM's AlignedResize); None: unchanged."""
    if not divisor:
        return tuple(hw)
    return tuple(-(-int(s) // divisor) * divisor for s in hw)


def test_input_size(hw: tuple[int, int], scale: tuple[int, int] | None,
                    size_divisor: int | None = None) -> tuple[int, int]:
    """Network input size of a test frame of size ``hw``: keep-ratio rescale into the ``scale`` box (mmcv's
    imrescale; None keeps the frame's size), then each side up to a multiple of ``size_divisor``.
    VSPW (480x853 box, divisor 32): 480x853 -> 480x864, 480x640 -> 480x640, 720x1280 -> 480x864."""
    rescaled = rescale_size(hw, scale, 1.0) if scale is not None else tuple(hw)
    return align_size(rescaled, size_divisor)


def resize_test_frame(img: np.ndarray, scale: tuple[int, int] | None, size_divisor: int | None = None) -> np.ndarray:
    """The test-time resize of the reference pipeline, step by step as CFFM does it: a bilinear keep-ratio
    rescale into the ``scale`` box, then (if a side is not yet a multiple of ``size_divisor``) a second
    bilinear resize to the aligned size. Two resizes, not one, so the pixels equal the reference's."""
    hw = img.shape[:2]
    if scale is not None:
        img = resize_frame(img, rescale_size(hw, scale, 1.0))
    return resize_frame(img, align_size(img.shape[:2], size_divisor))


def resize_frame(img: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    if img.shape[:2] == tuple(size):
        return img
    return cv2.resize(img, (size[1], size[0]), interpolation=cv2.INTER_LINEAR)


def resize_label(label: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    if label.shape[:2] == tuple(size):
        return label
    return cv2.resize(label, (size[1], size[0]), interpolation=cv2.INTER_NEAREST)


def sample_geometry(rng: np.random.Generator, label: np.ndarray, base: tuple[int, int] | None,
                    crop: tuple[int, int] | None, ratio_range=AUGMENT_DEFAULTS["ratio_range"],
                    cat_max_ratio: float = AUGMENT_DEFAULTS["cat_max_ratio"],
                    flip_prob: float = AUGMENT_DEFAULTS["flip_prob"]) -> Geometry:
    """Draw resize, crop and flip from the target's label (native size); base None = the frame's size."""
    hw = label.shape[:2]
    ratio = float(rng.uniform(*ratio_range)) if ratio_range else 1.0
    size = rescale_size(hw, base or hw, ratio)
    if crop is None:
        box = (0, 0, size[0], size[1])
    else:
        ch, cw = min(crop[0], size[0]), min(crop[1], size[1])
        resized = resize_label(label, size) if cat_max_ratio < 1 else None
        box = None
        for _ in range(AUGMENT_DEFAULTS["crop_tries"]):
            y0 = int(rng.integers(0, size[0] - ch + 1))
            x0 = int(rng.integers(0, size[1] - cw + 1))
            box = (y0, x0, ch, cw)
            if resized is None:
                break
            values, counts = np.unique(resized[y0:y0 + ch, x0:x0 + cw], return_counts=True)
            counts = counts[values != IGNORE_INDEX]
            if len(counts) > 1 and counts.max() / counts.sum() < cat_max_ratio:
                break
    flip = bool(rng.random() < flip_prob)
    return Geometry(size, box, flip)


def sample_photometric(rng: np.random.Generator, d=AUGMENT_DEFAULTS) -> Photometric:
    # same sequence of coin flips as mmseg's PhotoMetricDistortion
    brightness = float(rng.uniform(-d["brightness_delta"], d["brightness_delta"])) if rng.integers(2) else None
    contrast_first = bool(rng.integers(2))
    contrast = float(rng.uniform(*d["contrast_range"])) if rng.integers(2) else None
    saturation = float(rng.uniform(*d["saturation_range"])) if rng.integers(2) else None
    hue = int(rng.integers(-d["hue_delta"], d["hue_delta"] + 1)) if rng.integers(2) else None
    return Photometric(brightness, contrast, contrast_first, saturation, hue)


def apply_geometry(img: np.ndarray, g: Geometry, is_label: bool = False) -> np.ndarray:
    img = resize_label(img, g.size) if is_label else resize_frame(img, g.size)
    y0, x0, h, w = g.crop
    img = img[y0:y0 + h, x0:x0 + w]
    if g.flip:
        img = img[:, ::-1]
    return np.ascontiguousarray(img)


def apply_photometric(img: np.ndarray, p: Photometric) -> np.ndarray:
    """uint8 RGB in, uint8 RGB out; every step clips to 0..255 like mmseg's convert()."""
    out = img.astype(np.float32)

    def clip(x):
        return np.clip(x, 0, 255)

    if p.brightness is not None:
        out = clip(out + p.brightness)
    if p.contrast_first and p.contrast is not None:
        out = clip(out * p.contrast)
    if p.saturation is not None or p.hue is not None:
        hsv = cv2.cvtColor(out.astype(np.uint8), cv2.COLOR_RGB2HSV).astype(np.float32)
        if p.saturation is not None:
            hsv[..., 1] = clip(hsv[..., 1] * p.saturation)
        if p.hue is not None:
            hsv[..., 0] = (hsv[..., 0].astype(np.int32) + p.hue) % 180
        out = cv2.cvtColor(hsv.astype(np.uint8), cv2.COLOR_HSV2RGB).astype(np.float32)
    if not p.contrast_first and p.contrast is not None:
        out = clip(out * p.contrast)
    return out.astype(np.uint8)


def normalize(frames: list[np.ndarray]) -> torch.Tensor:
    """uint8 RGB frames (H, W, 3) -> float32 (T, 3, H, W), ImageNet mean/std."""
    arr = (np.stack(frames).astype(np.float32) - IMAGENET_MEAN) / IMAGENET_STD
    return torch.from_numpy(np.ascontiguousarray(arr.transpose(0, 3, 1, 2)))


def pad_clip(clip: torch.Tensor, label: torch.Tensor, size: tuple[int, int]) -> tuple[torch.Tensor, torch.Tensor]:
    """Pad bottom/right to ``size``: image 0 (after normalisation), label 255."""
    h, w = label.shape
    ph, pw = max(0, size[0] - h), max(0, size[1] - w)
    if ph or pw:
        clip = torch.nn.functional.pad(clip, (0, pw, 0, ph), value=0.0)
        label = torch.nn.functional.pad(label, (0, pw, 0, ph), value=IGNORE_INDEX)
    return clip, label


def augment_clip(rng: np.random.Generator, frames: list[np.ndarray], label: np.ndarray,
                 base: tuple[int, int] | None, crop: tuple[int, int] | None, photometric: bool = True,
                 **geometry_options) -> tuple[torch.Tensor, torch.Tensor]:
    """The whole training transform of one clip (frames in time order, label of the target)."""
    g = sample_geometry(rng, label, base, crop, **geometry_options)
    p = sample_photometric(rng) if photometric else None
    out = []
    for f in frames:
        f = apply_geometry(f, g)
        if p is not None:
            f = apply_photometric(f, p)
        out.append(f)
    lab = torch.from_numpy(apply_geometry(label, g, is_label=True).astype(np.int64))
    clip = normalize(out)
    if crop is not None:
        clip, lab = pad_clip(clip, lab, crop)
    return clip, lab
