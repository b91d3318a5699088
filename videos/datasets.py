"""The dataset interface every stage reads videos through (docs/architecture.md, "Dataset interface").

    ds = open_dataset(name, root, split)      # name: a row of videos/info.py ; split: train | val | test
    ds.videos[i].name / .frames / .labelled
    ds.read_image(video, frame)  -> uint8 (H, W, 3) RGB
    ds.read_label(video, frame)  -> uint8 (H, W) train ids, 255 ignore (remap applied)
    ds.read_flow(video, frame)   -> (flow float32 (H, W, 2) forward t->t+1 (dx, dy), valid bool (H, W)) or None

This module holds the shared base (`VideoDataset`): file reading with clear errors and the problem
collection the integrity check (videos.check) reuses. Each on-disk layout lives in its own module, named by
its row of the dataset table (videos/info.py, ``reader``): videos/vspw.py (VSPW and the synthetic set,
which shares its layout), videos/cityscapes.py, videos/camvid.py. The expected trees are in
docs/datasets.md.

Errors: every reader raises common.cli.InputError naming the file for a missing, zero-byte, unreadable or
wrongly-sized file and for label values outside the dataset's range. Constructed with ``strict=False``
a reader records the problems it meets while listing the tree in ``ds.problems`` instead of raising
(that is how videos.check reports every problem at once).
"""
from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np
from PIL import Image

from common.cli import InputError
from videos.info import DATASETS, IGNORE_INDEX

cv2.utils.logging.setLogLevel(cv2.utils.logging.LOG_LEVEL_SILENT)   # our errors name the file; no [ WARN ] lines

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png")
SPLITS = ("train", "val", "test")


@dataclass
class Video:
    """One video (VSPW, synthetic) or one annotated snippet (Cityscapes, CamVid)."""
    name: str
    frames: list[str]                      # frame ids in time order: every frame that exists on disk
    labelled: list[str]                    # frame ids that have ground truth, time order
    # reader-private: frame id -> file, so paths never have to be re-derived from ids
    image_files: dict[str, Path] = field(default_factory=dict, repr=False)
    label_files: dict[str, Path] = field(default_factory=dict, repr=False)

    def index(self, frame: str) -> int:
        try:
            return self.frames.index(frame)
        except ValueError:
            raise KeyError(f"video {self.name}: no frame '{frame}'") from None


class VideoDataset:
    """Base reader. Subclasses set name/num_classes, fill self.videos in _scan(), and define remap()."""

    name: str = ""
    num_classes: int = 0
    ignore_index: int = IGNORE_INDEX

    def __init__(self, root: str | os.PathLike, split: str, strict: bool = True):
        if split not in SPLITS:
            raise InputError(f"unknown split '{split}' (known: {', '.join(SPLITS)})")
        self.root = Path(root)
        self.split = split
        self.strict = strict
        self.problems: list[str] = []
        self.warnings: list[str] = []      # legitimate but notable (gaps in numbering): reported, never fatal
        if not self.root.is_dir():
            raise InputError(f"{self.root}: dataset root not found")
        self.videos: list[Video] = []
        self._scan()

    # ------------------------------------------------------------------ listing
    def _scan(self) -> None:  # pragma: no cover - abstract
        raise NotImplementedError

    def problem(self, message: str, fatal: bool = True) -> None:
        """A broken tree: raise now (strict and fatal) or remember it for the integrity report. Non-fatal
        problems (a dense set's frame without a mask) never stop a run; videos.check reports them."""
        if self.strict and fatal:
            raise InputError(message)
        self.problems.append(message)

    def warn(self, message: str) -> None:
        """Data that may legitimately be so (a gap in frame numbering): videos.check prints it, metrics.evaluate
        counts it, nothing stops."""
        self.warnings.append(message)

    @property
    def class_names(self) -> list[str]:
        """Names of train ids 0..num_classes-1 (readers that know them override this)."""
        return [f"class{i}" for i in range(self.num_classes)]

    def video(self, name: str) -> Video:
        for v in self.videos:
            if v.name == name:
                return v
        raise KeyError(f"{self.name} {self.split}: no video '{name}'")

    def __len__(self) -> int:
        return len(self.videos)

    def __repr__(self) -> str:
        return (f"{type(self).__name__}(root={str(self.root)!r}, split={self.split!r}, videos={len(self.videos)}, "
                f"classes={self.num_classes})")

    # ------------------------------------------------------------------ paths
    def image_path(self, video: Video, frame: str) -> Path:
        try:
            return video.image_files[frame]
        except KeyError:
            raise InputError(f"{self.name} video {video.name}: no frame '{frame}'") from None

    def label_path(self, video: Video, frame: str) -> Path:
        try:
            return video.label_files[frame]
        except KeyError:
            raise InputError(f"{self.name} video {video.name}: frame '{frame}' has no ground truth") from None

    # ------------------------------------------------------------------ reading
    def read_image(self, video: Video, frame: str) -> np.ndarray:
        return read_rgb(self.image_path(video, frame))

    def read_raw_label(self, video: Video, frame: str) -> np.ndarray:
        """The mask as stored (before the remap), checked against its frame's size."""
        path = self.label_path(video, frame)
        raw = read_index_png(path)
        w, h = image_size(self.image_path(video, frame))
        if raw.shape != (h, w):
            raise InputError(f"{path}: mask is {raw.shape[1]}x{raw.shape[0]} but its frame is {w}x{h}")
        return raw

    def read_label(self, video: Video, frame: str) -> np.ndarray:
        return self.remap_video(video, self.read_raw_label(video, frame), self.label_path(video, frame))

    def remap_video(self, video: Video, raw: np.ndarray, path: Path) -> np.ndarray:
        """Raw mask -> train ids (a layout whose remap depends on the video overrides this)."""
        return self.remap(raw, path)

    def read_flow(self, video: Video, frame: str):
        """Ground-truth forward flow t -> t+1; the real datasets have none."""
        return None

    def remap(self, raw: np.ndarray, path: Path) -> np.ndarray:  # pragma: no cover - abstract
        raise NotImplementedError


# ---------------------------------------------------------------------- file helpers (shared with check)
def _nonempty(path: Path) -> None:
    try:
        size = path.stat().st_size
    except FileNotFoundError:
        raise InputError(f"{path}: file not found") from None
    except OSError as e:
        raise InputError(f"{path}: cannot read ({e.strerror})") from None
    if path.is_dir():
        raise InputError(f"{path}: is a directory, not an image file")
    if size == 0:
        raise InputError(f"{path}: zero-byte file")


def read_rgb(path: str | os.PathLike) -> np.ndarray:
    """uint8 (H, W, 3) RGB; InputError naming the file when missing, empty or undecodable."""
    path = Path(path)
    _nonempty(path)
    data = np.fromfile(path, dtype=np.uint8)
    img = cv2.imdecode(data, cv2.IMREAD_COLOR)
    if img is None:
        raise InputError(f"{path}: unreadable image (not a decodable JPEG/PNG)")
    return cv2.cvtColor(img, cv2.COLOR_BGR2RGB)


def read_index_png(path: str | os.PathLike) -> np.ndarray:
    """A label PNG as its stored indices, uint8 (H, W). Palette PNGs give their indices (VSPW masks are
    palette images), greyscale PNGs their values; colour-coded masks are refused."""
    path = Path(path)
    _nonempty(path)
    try:
        with Image.open(path) as im:
            if im.format != "PNG":   # a JPEG under a .png name: lossy compression has changed the ids
                raise InputError(f"{path}: mask holds {im.format} data, not PNG (a lossy mask corrupts labels)")
            if im.mode not in ("P", "L", "I", "I;16"):
                raise InputError(f"{path}: mask has mode {im.mode}; expected an index mask (greyscale or palette)")
            arr = np.array(im)
    except InputError:
        raise
    except Exception as e:  # PIL raises many types for truncated or foreign files
        raise InputError(f"{path}: unreadable mask ({type(e).__name__}: {e})") from None
    if arr.dtype != np.uint8:
        if arr.size and (arr.min() < 0 or arr.max() > 255):
            raise InputError(f"{path}: mask values outside 0..255")
        arr = arr.astype(np.uint8)
    return arr


def image_size(path: str | os.PathLike) -> tuple[int, int]:
    """(width, height) from the file header only."""
    path = Path(path)
    _nonempty(path)
    try:
        with Image.open(path) as im:
            return im.size
    except Exception as e:
        raise InputError(f"{path}: unreadable image ({type(e).__name__}: {e})") from None


def identity_labels(classes: int, also_valid: tuple[int, ...] = ()) -> tuple[np.ndarray, np.ndarray]:
    """(table, valid) for ``lookup_remap`` of masks that store train ids 0..classes-1 directly: every other
    value maps to the ignore id; valid are the train ids, 255 (void) and ``also_valid`` (a dataset's own
    void class), anything else is a corrupt mask."""
    from videos.info import IGNORE_INDEX

    table = np.full(256, IGNORE_INDEX, dtype=np.uint8)
    table[:classes] = np.arange(classes)
    valid = np.zeros(256, dtype=bool)
    valid[:classes] = True
    valid[[255, *also_valid]] = True
    return table, valid


def lookup_remap(raw: np.ndarray, table: np.ndarray, path: Path, valid: np.ndarray) -> np.ndarray:
    """Map raw ids through a 256-entry table; raw values with valid[v] False are an error naming the file."""
    present = np.unique(raw)
    bad = present[~valid[present]]
    if bad.size:
        raise InputError(f"{path}: label values {bad.tolist()[:8]} outside the dataset's range")
    return table[raw]


def list_frames(folder: Path, suffixes=IMAGE_SUFFIXES, duplicates: list[str] | None = None) -> dict[str, Path]:
    """{frame id (file stem): path} for the files in folder with the given suffixes, sorted by id.

    A frame saved twice (00001.jpg and 00001.png) keeps the suffix that comes first in ``suffixes``, never
    the directory order; ``duplicates`` (a list) receives one message per such frame."""
    found: dict[str, list[Path]] = {}
    with os.scandir(folder) as it:
        for e in it:
            stem, suf = os.path.splitext(e.name)
            if suf.lower() in suffixes and not e.name.startswith("."):
                found.setdefault(stem, []).append(Path(e.path))
    rank = {s: i for i, s in enumerate(suffixes)}
    out = {}
    for stem, paths in sorted(found.items()):
        paths.sort(key=lambda p: (rank[p.suffix.lower()], p.name))
        out[stem] = paths[0]
        if len(paths) > 1 and duplicates is not None:
            duplicates.append(f"{paths[0]}: frame saved more than once ({', '.join(p.name for p in paths)}); "
                              f"reading {paths[0].name}")
    return out


# ---------------------------------------------------------------------- the one entry point
def reader_class(name: str) -> type[VideoDataset]:
    """The reader of a dataset, named by its row of the dataset table (videos/info.py)."""
    import importlib

    if name not in DATASETS:
        raise InputError(f"unknown dataset '{name}' (known: {', '.join(DATASETS)})")
    module, cls = DATASETS[name].reader.split(":")
    return getattr(importlib.import_module(module), cls)


def open_dataset(name: str, root: str | os.PathLike, split: str, strict: bool = True, **options) -> VideoDataset:
    """Open a dataset tree. ``options`` go to the reader (cityscapes: ``label_type``; camvid: ``window``)."""
    return reader_class(name)(root, split, strict=strict, **options)
