"""VSPW reader, and the synthetic set (written by videos.synthetic in the same layout).

Layout (the VSPW_480p release, https://github.com/VSPW-dataset/VSPW-dataset-download):

    ROOT/train.txt, val.txt, test.txt          one video folder name per line
    ROOT/data/<video>/origin/<frame>.jpg        frames (the synthetic set writes .png)
    ROOT/data/<video>/mask/<frame>.png          raw ids: 0 "others", 1..124 classes, 255 void
    ROOT/data/<video>/flow/<frame>.npy          synthetic only: forward flow frame -> next frame
    ROOT/meta.json                              synthetic only: class count and names, generator settings

Remap (docs/protocol.md): raw 0 and 255 -> 255 (ignore), raw c in 1..K -> train id c-1. VSPW has K = 124; the
synthetic set reads K from meta.json. Any other raw value is an error naming the mask.
"""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from common.cli import InputError
from common.inputs import read_text
from videos.datasets import IMAGE_SUFFIXES, Video, VideoDataset, image_size, list_frames, lookup_remap
from videos.info import IGNORE_INDEX, dataset_info


def vspw_style_table(num_classes: int) -> tuple[np.ndarray, np.ndarray]:
    """(table, valid) over raw values 0..255: 0/255 -> ignore, 1..K -> 0..K-1, anything else invalid."""
    table = np.full(256, IGNORE_INDEX, dtype=np.uint8)
    table[1:num_classes + 1] = np.arange(num_classes, dtype=np.uint8)
    valid = np.zeros(256, dtype=bool)
    valid[:num_classes + 1] = True
    valid[255] = True
    return table, valid


class VSPWDataset(VideoDataset):
    name = "vspw"
    dense = True          # every frame of a train/val video is expected to have a mask

    def __init__(self, root, split, strict: bool = True):
        if not Path(root).is_dir():
            raise InputError(f"{root}: dataset root not found")
        self.num_classes = self._num_classes(Path(root))
        self._table, self._valid = vspw_style_table(self.num_classes)
        super().__init__(root, split, strict)

    def _num_classes(self, root: Path) -> int:
        return dataset_info("vspw").num_classes

    def _scan(self) -> None:
        split_file = self.root / f"{self.split}.txt"
        if not split_file.is_file():
            self.problem(f"{split_file}: split file not found")
            return
        names = self._split_names(split_file)
        data = self.root / "data"
        for name in names:
            origin, mask = data / name / "origin", data / name / "mask"
            if not origin.is_dir():
                self.problem(f"{split_file}: names video '{name}' but {origin} does not exist")
                continue
            twice: list[str] = []
            frames = list_frames(origin, IMAGE_SUFFIXES, twice)
            for message in twice:
                self.problem(message, fatal=False)
            if not frames:
                self.problem(f"{origin}: no frames")
                continue
            self._check_numbering(origin, list(frames))
            masks = list_frames(mask, (".png",)) if mask.is_dir() else {}
            for fid in masks.keys() - frames.keys():
                self.problem(f"{masks[fid]}: mask without a frame (no {origin / fid}.jpg|png)")
            if self.dense and masks:
                for fid in frames.keys() - masks.keys():
                    self.problem(f"{frames[fid]}: frame without a mask (expected {mask / fid}.png)", fatal=False)
            elif self.split != "test" and not masks and self.dense:
                self.problem(f"{mask}: no masks for a {self.split} video", fatal=False)
            ids = list(frames)
            labelled = [f for f in ids if f in masks]
            self.videos.append(Video(name, ids, labelled, frames, {f: masks[f] for f in labelled}))

    def _split_names(self, split_file: Path) -> list[str]:
        """Video names of a split file: UTF-8, one per line; an empty file is an error, a repeated name is
        read once (and reported: counted twice it would weigh double in every metric)."""
        try:
            lines = [ln.strip() for ln in read_text(split_file, "split file").splitlines()]
        except InputError as e:
            self.problem(str(e))
            return []
        names = [ln for ln in lines if ln]
        if not names:
            self.problem(f"{split_file}: empty split file (no video names)")
        seen: dict[str, int] = {}
        for number, name in enumerate(lines, 1):
            if name and name in seen:
                self.problem(f"{split_file}: line {number} repeats video '{name}' (line {seen[name]}); "
                             "read once", fatal=False)
            seen.setdefault(name, number)
        return list(dict.fromkeys(names))

    def _check_numbering(self, origin: Path, ids: list[str]) -> None:
        """Numbered frames should be consecutive: reference offsets and TC count positions in the list, so a
        gap makes 9 and 11 neighbours. Real releases may skip frames (a warning); the generated set never does."""
        if not all(i.isdigit() for i in ids):
            return
        for a, b in zip(ids, ids[1:]):
            if int(b) != int(a) + 1:
                message = (f"{origin}: frame numbering jumps from {a} to {b} ({int(b) - int(a) - 1} missing); "
                           "reference offsets and TC pairs treat them as neighbours")
                if self.name == "synthetic":
                    self.problem(message, fatal=False)
                else:
                    self.warn(message)

    def remap(self, raw: np.ndarray, path: Path) -> np.ndarray:
        return lookup_remap(raw, self._table, path, self._valid)

    @property
    def class_names(self) -> list[str]:
        """From the release's label_num_dic_final.json ({name: raw id}) when present, else class<i>."""
        names = [f"class{i}" for i in range(self.num_classes)]
        try:
            table = json.loads((self.root / "label_num_dic_final.json").read_text())
            for name, raw in table.items():
                if 1 <= int(raw) <= self.num_classes:
                    names[int(raw) - 1] = str(name)
        except (OSError, ValueError, TypeError, AttributeError):
            pass        # names are for display only
        return names


class SyntheticDataset(VSPWDataset):
    """The generated benchmark: VSPW layout + meta.json (class count, names) + ground-truth flow."""
    name = "synthetic"

    def _num_classes(self, root: Path) -> int:
        meta_path = root / "meta.json"
        try:
            self.meta = json.loads(meta_path.read_text())
        except FileNotFoundError:
            raise InputError(f"{meta_path}: not found (write the set with `python -m videos.synthetic`)") from None
        except (OSError, ValueError) as e:   # ValueError: bad JSON, or bytes that are not UTF-8
            raise InputError(f"{meta_path}: unreadable ({e})") from None
        try:
            k = int(self.meta["num_classes"])
        except (KeyError, TypeError, ValueError):
            raise InputError(f"{meta_path}: no integer 'num_classes'") from None
        if not 1 <= k <= 254:
            raise InputError(f"{meta_path}: num_classes {k} outside 1..254")
        self.dense = self.meta.get("annotate", "dense") == "dense"
        return k

    @property
    def class_names(self) -> list[str]:
        return list(self.meta.get("class_names", [str(i) for i in range(self.num_classes)]))

    def flow_path(self, video: Video, frame: str) -> Path:
        return self.root / "data" / video.name / "flow" / f"{frame}.npy"

    def read_flow(self, video: Video, frame: str):
        """(flow (H, W, 2) float32 forward t->t+1 in pixels (dx, dy), valid (H, W) bool); None for the
        last frame (no next frame). Stored as one .npy with NaN where the flow is invalid (the pixel leaves
        the frame or is occluded in t+1); returned flow holds 0 at invalid pixels."""
        i = video.index(frame)
        if i == len(video.frames) - 1:
            return None
        path = self.flow_path(video, frame)
        following = video.frames[i + 1]
        if frame.isdigit() and following.isdigit() and int(following) != int(frame) + 1:
            raise InputError(f"{path}: flow goes from frame {frame} to the next number, but the next frame on disk "
                             f"is {following} (frames are missing)")
        try:
            if path.stat().st_size == 0:
                raise InputError(f"{path}: zero-byte file")
            arr = np.load(path, allow_pickle=False)
        except FileNotFoundError:
            raise InputError(f"{path}: file not found") from None
        except InputError:
            raise
        except Exception as e:
            raise InputError(f"{path}: unreadable flow ({type(e).__name__}: {e})") from None
        w, h = image_size(self.image_path(video, frame))
        if arr.shape != (h, w, 2) or arr.dtype != np.float32:
            raise InputError(f"{path}: flow is {arr.dtype}{list(arr.shape)}, expected float32 [{h}, {w}, 2]")
        valid = np.isfinite(arr).all(axis=2)
        flow = np.where(valid[..., None], arr, np.float32(0)).astype(np.float32)
        return flow, valid
