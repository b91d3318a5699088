"""Cityscapes video reader: 30-frame snippets from leftImg8bit_sequence, ground truth on frame 19 (gtFine).

Layout (the official packages leftImg8bit_sequence_trainvaltest.zip + gtFine_trainvaltest.zip,
https://www.cityscapes-dataset.com/downloads/, names as in cityscapesScripts):

    ROOT/leftImg8bit_sequence/<split>/<city>/<city>_<seq>_<frame>_leftImg8bit.png     every frame
    ROOT/gtFine/<split>/<city>/<city>_<seq>_<frame>_gtFine_labelTrainIds.png          train ids (made by
                                                        cityscapesscripts' createTrainIdLabelImgs), or
    ROOT/gtFine/<split>/<city>/<city>_<seq>_<frame>_gtFine_labelIds.png               raw label ids

One Video per annotated frame: name ``<city>_<seq>_<frame>`` (the gtFine stem), frames = the snippet's
30 frame numbers ``frame-19 .. frame+10`` as 6-digit ids (``"000019"``), labelled = [that frame].

``label_type``: "auto" (labelTrainIds when present for a frame, else labelIds), "trainIds" or "labelIds".
labelIds are mapped through the official table below (id -> trainId, 19 classes, 255 ignore).
"""
from __future__ import annotations

import re
from pathlib import Path

import numpy as np

from common.cli import InputError
from videos.datasets import Video, VideoDataset, identity_labels, lookup_remap
from videos.info import IGNORE_INDEX

SNIPPET_LENGTH, ANNOTATED_INDEX = 30, 19

# Cityscapes label id -> train id, from cityscapesScripts `cityscapesscripts/helpers/labels.py`
# (version 2.3.0 on PyPI, MIT licence, https://github.com/mcordts/cityscapesScripts). Embedded rather than
# depending on the package: installing it pulls pyquaternion, coloredlogs, appdirs, requests and the
# obsolete `typing` backport. tests/test_videos_cityscapes.py restates the 19 kept ids. (id, name, trainId)
CITYSCAPES_LABELS = [
    (0, "unlabeled", 255), (1, "ego vehicle", 255), (2, "rectification border", 255), (3, "out of roi", 255),
    (4, "static", 255), (5, "dynamic", 255), (6, "ground", 255), (7, "road", 0), (8, "sidewalk", 1),
    (9, "parking", 255), (10, "rail track", 255), (11, "building", 2), (12, "wall", 3), (13, "fence", 4),
    (14, "guard rail", 255), (15, "bridge", 255), (16, "tunnel", 255), (17, "pole", 5), (18, "polegroup", 255),
    (19, "traffic light", 6), (20, "traffic sign", 7), (21, "vegetation", 8), (22, "terrain", 9), (23, "sky", 10),
    (24, "person", 11), (25, "rider", 12), (26, "car", 13), (27, "truck", 14), (28, "bus", 15),
    (29, "caravan", 255), (30, "trailer", 255), (31, "train", 16), (32, "motorcycle", 17), (33, "bicycle", 18),
]
CLASS_NAMES = [name for _, name, tid in sorted(CITYSCAPES_LABELS, key=lambda r: r[2]) if tid != 255]

LABEL_IDS_TABLE = np.full(256, IGNORE_INDEX, dtype=np.uint8)
LABEL_IDS_VALID = np.zeros(256, dtype=bool)
for _id, _name, _tid in CITYSCAPES_LABELS:
    LABEL_IDS_TABLE[_id] = _tid
    LABEL_IDS_VALID[_id] = True
LABEL_IDS_VALID[255] = True          # tolerated: some conversions write void as 255

TRAIN_IDS_TABLE, TRAIN_IDS_VALID = identity_labels(19)

SUFFIXES = {"trainIds": "_gtFine_labelTrainIds.png", "labelIds": "_gtFine_labelIds.png"}
_STEM = re.compile(r"^(?P<city>.+)_(?P<seq>\d{6})_(?P<frame>\d{6})$")


def sequence_image_name(city: str, seq: str, frame: int) -> str:
    return f"{city}_{seq}_{frame:06d}_leftImg8bit.png"


class CityscapesDataset(VideoDataset):
    name = "cityscapes"
    num_classes = 19

    def __init__(self, root, split, strict: bool = True, label_type: str = "auto"):
        if label_type not in ("auto", "trainIds", "labelIds"):
            raise InputError(f"cityscapes label_type must be auto, trainIds or labelIds, got '{label_type}'")
        self.label_type = label_type
        self._label_kind: dict[str, str] = {}    # video name -> "trainIds" | "labelIds"
        super().__init__(root, split, strict)

    def _scan(self) -> None:
        gt_dir = self.root / "gtFine" / self.split
        seq_dir = self.root / "leftImg8bit_sequence" / self.split
        for d, what in ((gt_dir, "gtFine"), (seq_dir, "leftImg8bit_sequence")):
            if not d.is_dir():
                self.problem(f"{d}: {what} folder for split '{self.split}' not found")
                return
        kinds = ("trainIds", "labelIds") if self.label_type == "auto" else (self.label_type,)
        for city_dir in sorted(p for p in gt_dir.iterdir() if p.is_dir()):
            found: dict[str, tuple[str, Path]] = {}
            for kind in reversed(kinds):                 # the preferred kind is written last, so it wins
                suffix = SUFFIXES[kind]
                for p in city_dir.glob(f"*{suffix}"):
                    found[p.name[: -len(suffix)]] = (kind, p)
            for stem in sorted(found):
                m = _STEM.match(stem)
                if not m:
                    self.problem(f"{found[stem][1]}: name does not follow <city>_<seq>_<frame>_gtFine_*.png")
                    continue
                city, seq, target = m["city"], m["seq"], int(m["frame"])
                images, missing = {}, []
                for f in range(target - ANNOTATED_INDEX, target - ANNOTATED_INDEX + SNIPPET_LENGTH):
                    if f < 0:
                        continue
                    p = seq_dir / city / sequence_image_name(city, seq, f)
                    if p.is_file():
                        images[f"{f:06d}"] = p
                    else:
                        missing.append(p)
                for p in missing:
                    self.problem(f"{p}: missing frame of snippet {stem}")
                fid = f"{target:06d}"
                if fid not in images:
                    continue                              # reported above; no image for the ground truth
                kind, label = found[stem]
                self._label_kind[stem] = kind
                self.videos.append(Video(stem, list(images), [fid], images, {fid: label}))
        if not self.videos and not self.problems:
            wanted = " or ".join(f"*{SUFFIXES[k]}" for k in kinds)
            self.problem(f"{gt_dir}: no {wanted} files")

    @property
    def class_names(self) -> list[str]:
        return list(CLASS_NAMES)

    def label_kind(self, video: Video) -> str:
        return self._label_kind[video.name]

    def remap_video(self, video: Video, raw: np.ndarray, path: Path) -> np.ndarray:
        if self._label_kind[video.name] == "trainIds":
            return lookup_remap(raw, TRAIN_IDS_TABLE, path, TRAIN_IDS_VALID)
        return lookup_remap(raw, LABEL_IDS_TABLE, path, LABEL_IDS_VALID)
