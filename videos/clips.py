"""Clip sampling shared by every dataset and model.

A clip is the reference frames plus the target, in time order, target last (the model contract).
``offsets`` are relative to the target and never positive (past frames only, as the papers test):
SD-CPC (-6, -3), MSAF (-2, -1), CFFM (-9, -6, -3); a trailing 0 (``Variant.clip_offsets``) is accepted
and means the same as leaving it out (``Variant.ref_offsets``).

Rule at the start of a video (docs/protocol.md): a reference before the first frame repeats the earliest
available frame, frame 0 of the video; so target 1 with (-6, -3) reads frames (0, 0, 1). Offsets count
positions in ``video.frames`` (all frames on disk, consecutive for every supported layout).

``ClipDataset`` (a torch Dataset) returns ``(clip float32 (T, 3, H, W) ImageNet-normalised, label int64
(H, W) train ids, 255 ignore)``:

- train=True: each item draws a labelled target uniformly over all labelled frames of the split (from
  torch's global RNG, so ``torch.manual_seed`` and DataLoader worker seeding make it reproducible, and
  the sampler's order does not matter); the augmentation of videos.augment is drawn once per clip and
  applied identically to every frame; crops smaller than ``crop`` are padded (image 0, label 255).
- train=False: item i is the i-th test frame of the split in order (video by video, frames in time
  order; ``ds_clips.item(i)`` gives its (Video, frame id)); no augmentation. The test frames are the
  labelled ones, plus every other frame of the first ``all_frames_videos`` videos (the frames TC reads on a
  sparsely labelled set: a Cityscapes snippet's 30 frames); such a frame comes with an all-ignore label of
  its size (a zero-stride view, no memory) and ``is_labelled(i)`` False. Frames are resized as the
  reference test pipeline does (videos.augment.resize_test_frame: aspect kept into the ``test_scale`` box,
  then each side up to a multiple of ``size_divisor``), while the label stays at the frame's own size
  (predictions are resized back to it, models.outputs.resize_logits). Frames of different sizes give
  clips of different sizes: batch only equal shapes.
"""
from __future__ import annotations

from typing import Sequence

import numpy as np
import torch
from torch.utils.data import Dataset

from common.cli import InputError
from videos import augment
from videos.datasets import Video, VideoDataset
from videos.info import IGNORE_INDEX


def normalise_offsets(offsets: Sequence[int]) -> tuple[int, ...]:
    """Reference offsets in time order, without the trailing target 0."""
    offs = tuple(int(o) for o in offsets)
    if offs and offs[-1] == 0:
        offs = offs[:-1]
    if any(o >= 0 for o in offs):
        raise ValueError(f"reference offsets must be negative (past frames only), got {list(offsets)}")
    if list(offs) != sorted(offs) or len(set(offs)) != len(offs):
        raise ValueError(f"reference offsets must be strictly increasing (time order), got {list(offsets)}")
    return offs


def clip_frame_ids(video: Video, target: str, offsets: Sequence[int]) -> list[str]:
    """Frame ids of the clip for ``target``: references (clamped to frame 0 at the video start), then target."""
    i = video.index(target)
    return [video.frames[max(0, i + o)] for o in normalise_offsets(offsets)] + [target]


def check_same_size(ds: VideoDataset, video: Video, ids: list[str], frames: list[np.ndarray]) -> None:
    """The frames of one clip are stacked: a reference of another size is an error naming both files."""
    target = frames[-1].shape[:2]
    for f, img in zip(ids, frames):
        if img.shape[:2] != target:
            raise InputError(f"{ds.image_path(video, ids[-1])}: frames of one video differ in size: this one is "
                             f"{target[1]}x{target[0]}, {ds.image_path(video, f).name} is {img.shape[1]}x{img.shape[0]}")


class ClipDataset(Dataset):
    def __init__(self, ds: VideoDataset, offsets: Sequence[int], train: bool = True,
                 crop: tuple[int, int] | None = None, scale: tuple[int, int] | None = None,
                 test_scale: tuple[int, int] | None = None, size_divisor: int | None = None,
                 all_frames_videos: int | None = 0, photometric: bool = True,
                 length: int | None = None, **augment_options):
        """
        ds           an opened dataset (videos.datasets.open_dataset)
        offsets      reference offsets (Variant.ref_offsets or .clip_offsets)
        train        training sampling + augmentation, or test iteration
        crop         training crop (H, W); None keeps the whole resized frame
        scale        training base scale (H, W) the random ratio multiplies; None = each frame's own size
        test_scale   test-time keep-ratio box (H, W) (videos.info test_size); None = native size
        size_divisor test-time: each side resized up to a multiple of it after the rescale; None = no alignment
        all_frames_videos  test-time: every frame (not only the labelled ones) of the first N videos; None = all
        photometric  training photometric distortion on/off
        length       training epoch length (default: number of labelled frames)
        augment_options  ratio_range, cat_max_ratio, flip_prob (videos.augment.sample_geometry)
        """
        augment.check_options(crop=crop, scale=scale, test_scale=test_scale, size_divisor=size_divisor,
                              **augment_options)
        self.ds = ds
        self.offsets = normalise_offsets(offsets)
        self.train = train
        self.crop = tuple(crop) if crop is not None else None
        self.scale = tuple(scale) if scale is not None else None
        self.test_scale = tuple(test_scale) if test_scale is not None else None
        self.size_divisor = size_divisor
        self.photometric = photometric
        self.augment_options = augment_options
        self.items: list[tuple[Video, str]] = [(v, f) for v in ds.videos for f in v.labelled]
        if not self.items:
            raise ValueError(f"{ds.name} {ds.split} at {ds.root}: no labelled frames")
        self.length = int(length) if length is not None else len(self.items)
        if not train and all_frames_videos != 0:
            n = len(ds.videos) if all_frames_videos is None else all_frames_videos
            self.items = [(v, f) for i, v in enumerate(ds.videos)
                          for f in (v.frames if i < n else v.labelled)]
        self._labelled = {(v.name, f) for v in ds.videos for f in v.labelled}

    @property
    def num_frames(self) -> int:
        return len(self.offsets) + 1

    def __len__(self) -> int:
        return self.length if self.train else len(self.items)

    def item(self, i: int) -> tuple[Video, str]:
        """(video, target frame id) of test item i."""
        return self.items[i]

    def is_labelled(self, i: int) -> bool:
        """Whether test item i has ground truth (False for the extra frames of ``all_frames_videos``)."""
        video, frame = self.items[i]
        return (video.name, frame) in self._labelled

    @property
    def num_labelled(self) -> int:
        return sum(1 for v, f in self.items if (v.name, f) in self._labelled)

    def frame_ids(self, i: int) -> list[str]:
        video, target = self.items[i]
        return clip_frame_ids(video, target, self.offsets)

    def read_frames(self, video: Video, target: str) -> list[np.ndarray]:
        ids = clip_frame_ids(video, target, self.offsets)
        # a repeated reference (video start) is read once
        cache: dict[str, np.ndarray] = {}
        for f in ids:
            if f not in cache:
                cache[f] = self.ds.read_image(video, f)
        frames = [cache[f] for f in ids]
        check_same_size(self.ds, video, ids, frames)
        return frames

    def read_clip(self, video: Video, target: str) -> tuple[list[np.ndarray], np.ndarray]:
        return self.read_frames(video, target), self.ds.read_label(video, target)

    def __getitem__(self, i: int) -> tuple[torch.Tensor, torch.Tensor]:
        if self.train:
            j = int(torch.randint(len(self.items), ()).item())
            video, target = self.items[j]
            frames, label = self.read_clip(video, target)
            rng = np.random.default_rng(int(torch.randint(2 ** 62, ()).item()))
            return augment.augment_clip(rng, frames, label, self.scale, self.crop, self.photometric,
                                        **self.augment_options)
        if not 0 <= i < len(self.items):
            raise IndexError(i)
        video, target = self.items[i]
        frames = self.read_frames(video, target)
        if self.is_labelled(i):
            label = torch.from_numpy(self.ds.read_label(video, target).astype(np.int64))
        else:   # a frame TC reads but nobody annotated: every pixel ignore, at the frame's own size
            label = torch.full((1, 1), IGNORE_INDEX, dtype=torch.int64).expand(*frames[-1].shape[:2])
        frames = [augment.resize_test_frame(f, self.test_scale, self.size_divisor) for f in frames]
        return augment.normalize(frames), label
