"""Tiny dataset trees in each exact on-disk layout, for tests (any engineer's tests may import these).

    from tests.fixtures import (write_vspw_tree, write_synthetic_tree, write_cityscapes_tree,
                                write_camvid_tree, raw_pattern)

    root = write_vspw_tree(tmp_path / "vspw", videos={"v1": 5, "v2": 3}, size=(16, 24), classes=124,
                           splits={"train": ["v1"], "val": ["v2"]}, ext=".jpg")
    root = write_synthetic_tree(tmp_path / "syn", train_videos=2, val_videos=1, frames=6, size=(32, 32),
                                classes=4, annotate="dense")          # the real generator, with flow
    root = write_cityscapes_tree(tmp_path / "cs", cities={"frankfurt": 2}, split="val", size=(16, 32),
                                 label_types=("trainIds", "labelIds"))
    root = write_camvid_tree(tmp_path / "camvid", sequences={"0001TP": 40, "Seq05VD": 30},
                             annotated={"train": ["0001TP_000019"], "val": ["Seq05VD_f00020"]}, size=(12, 16))

Every writer returns the root (a Path) and is deterministic. Images are RGB noise seeded by the file name.
Masks follow ``raw_pattern(size, t, values)``: vertical bands cycling through ``values`` and shifting one
band per frame, with the top-left 2x2 pixels set to the layout's void value - so tests can predict
every label by hand (see each writer for its values and the remap the reader applies).

- write_vspw_tree: raw values 0..classes (0 = "others"), void 255. Reader: 0/255 -> 255, c -> c-1.
  ``splits`` default: every video in train.txt, val.txt and test.txt. ``labelled``: {video: [t, ...]} to
  write masks only for some frames (default all). Frame ids are 8-digit ``00000000`` (VSPW style).
- write_synthetic_tree: runs videos.synthetic.generate (VSPW layout + meta.json + flow).
- write_cityscapes_tree: snippet i of a city is sequence ``i`` with frames 000000..000029 and ground truth on
  000019; labelIds cycle through (7, 8, 11, 0, 26) -> train ids (0, 1, 2, 255, 13); the labelTrainIds file
  holds the mapped values. ``label_types`` chooses which gtFine files exist.
- write_camvid_tree: ``sequences`` {name: number of frames}; frame names follow CamVid (0001TP 6 digits,
  0016E5 5 digits, 0006R0 and Seq05VD "f" + 5 digits, any other name 6 digits). ``annotated``: {split:
  [stems]}; masks cycle through 0..11 (11 = void) and the stills are written into ROOT/<split>/ too.
"""
from __future__ import annotations

import zlib
from pathlib import Path

import cv2
import numpy as np

CAMVID_FRAME_FORMAT = {"0001TP": ("", 6), "0016E5": ("", 5), "0006R0": ("f", 5), "Seq05VD": ("f", 5)}


def raw_pattern(size: tuple[int, int], t: int, values, void: int | None = 255, band: int = 4) -> np.ndarray:
    """uint8 (H, W): vertical bands ``band`` px wide cycling through ``values``, shifted one band per frame
    t; top-left 2x2 = ``void`` (unless None)."""
    h, w = size
    values = np.asarray(list(values), dtype=np.uint8)
    idx = (np.arange(w) // band + t) % len(values)
    out = np.broadcast_to(values[idx][None, :], (h, w)).copy()
    if void is not None:
        out[:2, :2] = void
    return out


def noise_image(size: tuple[int, int], key: str) -> np.ndarray:
    rng = np.random.default_rng(zlib.crc32(key.encode()))
    return rng.integers(0, 256, (size[0], size[1], 3), dtype=np.uint8)


def _write_image(path: Path, rgb: np.ndarray) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    ext = path.suffix.lower()
    ok, buf = cv2.imencode(ext, cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_JPEG_QUALITY, 95]
                           if ext in (".jpg", ".jpeg") else [])
    assert ok
    path.write_bytes(buf.tobytes())


def _write_mask(path: Path, mask: np.ndarray) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    ok, buf = cv2.imencode(".png", mask)
    assert ok
    path.write_bytes(buf.tobytes())


def write_vspw_tree(root, videos: dict[str, int], size=(16, 24), classes: int = 124,
                    splits: dict[str, list[str]] | None = None, labelled: dict[str, list[int]] | None = None,
                    ext: str = ".jpg") -> Path:
    root = Path(root)
    values = list(range(0, classes + 1))
    for name, n in videos.items():
        for t in range(n):
            fid = f"{t:08d}"
            _write_image(root / "data" / name / "origin" / f"{fid}{ext}", noise_image(size, f"{name}/{fid}"))
            if labelled is None or t in labelled.get(name, range(n)):
                _write_mask(root / "data" / name / "mask" / f"{fid}.png", raw_pattern(size, t, values))
    splits = splits if splits is not None else {s: list(videos) for s in ("train", "val", "test")}
    for split, names in splits.items():
        (root / f"{split}.txt").write_text("".join(f"{v}\n" for v in names))
    return root


def write_synthetic_tree(root, train_videos: int = 2, val_videos: int = 1, frames: int = 6, size=(32, 32),
                         classes: int = 4, annotate: str = "dense", seed: int = 0) -> Path:
    from videos.synthetic import generate
    return generate(root, train_videos, val_videos, frames, size[0], size[1], classes, seed, annotate)


CITYSCAPES_FIXTURE_LABEL_IDS = (7, 8, 11, 0, 26)
CITYSCAPES_FIXTURE_TRAIN_IDS = (0, 1, 2, 255, 13)


def write_cityscapes_tree(root, cities: dict[str, int] | None = None, split: str = "val", size=(16, 32),
                          label_types=("trainIds", "labelIds")) -> Path:
    root = Path(root)
    cities = cities if cities is not None else {"frankfurt": 1}
    for city, n in cities.items():
        for i in range(n):
            seq = f"{i:06d}"
            for f in range(30):
                stem = f"{city}_{seq}_{f:06d}"
                _write_image(root / "leftImg8bit_sequence" / split / city / f"{stem}_leftImg8bit.png",
                             noise_image(size, stem))
            stem = f"{city}_{seq}_{19:06d}"
            gt = root / "gtFine" / split / city
            if "labelIds" in label_types:
                _write_mask(gt / f"{stem}_gtFine_labelIds.png",
                            raw_pattern(size, 0, CITYSCAPES_FIXTURE_LABEL_IDS, void=0))
            if "trainIds" in label_types:
                _write_mask(gt / f"{stem}_gtFine_labelTrainIds.png",
                            raw_pattern(size, 0, CITYSCAPES_FIXTURE_TRAIN_IDS, void=255))
    return root


def camvid_frame_name(seq: str, number: int) -> str:
    prefix, width = CAMVID_FRAME_FORMAT.get(seq, ("", 6))
    return f"{seq}_{prefix}{number:0{width}d}"


def write_camvid_tree(root, sequences: dict[str, int] | None = None,
                      annotated: dict[str, list[str]] | None = None, size=(12, 16)) -> Path:
    root = Path(root)
    sequences = sequences if sequences is not None else {"0001TP": 40}
    if annotated is None:
        first = next(iter(sequences))
        annotated = {"train": [camvid_frame_name(first, 19)], "val": [camvid_frame_name(first, 29)]}
    for seq, n in sequences.items():
        for k in range(n):
            stem = camvid_frame_name(seq, k)
            _write_image(root / "sequences" / seq / f"{stem}.png", noise_image(size, stem))
    for split, stems in annotated.items():
        (root / f"{split}annot").mkdir(parents=True, exist_ok=True)
        for stem in stems:
            _write_mask(root / f"{split}annot" / f"{stem}.png", raw_pattern(size, 0, range(12), void=None))
            _write_image(root / split / f"{stem}.png", noise_image(size, stem))
    return root


def fake_weights(tmp_path) -> Path:
    """A folder with a (placeholder) file for every weights path the paper experiments name: the plan only
    checks that each exists."""
    from workflow.plan import read_experiment

    folder = Path(tmp_path) / "weights"
    folder.mkdir(exist_ok=True)
    for name in ("vspw", "cityscapes", "camvid"):
        for entry in (read_experiment(name).get("pretrained") or {}).values():
            if isinstance(entry, str) and entry != "none":
                (folder / entry).touch()
    return folder
