"""The dataset table: every fact about a dataset that code needs without opening the data.

One row per dataset, and nothing else in the suite spells a dataset name: the CLIs' ``--dataset`` choices,
the pipeline's wildcard and experiment-schema check, ``videos.datasets.open_dataset``, the layout rules of
``videos.check``, the training defaults of ``engine.config`` and the labels of the tables and plots are all
read from here. Adding a dataset is its reader module, one row below and an experiment file
(docs/extending.md). Importing this module is cheap (no reader, no torch).

The protocol behind the numbers (classes, test sizes, annotation) is docs/protocol.md.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

IGNORE_INDEX = 255


@dataclass(frozen=True)
class DatasetInfo:
    name: str
    label: str                      # as the tables and plots print it
    num_classes: int                # the reader's class count (a generated set records its own in meta.json)
    test_size: tuple[int, int]      # (H, W) test frame size the papers quote: the box test frames are rescaled
                                    # into (a generated set: native), and the frame size FPS and GFLOPs use
    annotated: str                  # "dense" (every frame labelled) or "sparse" (one frame per snippet)
    source: str                     # what the on-disk layout follows (docs/datasets.md has the trees)
    reader: str                     # "module:Class", the videos.datasets.VideoDataset subclass that reads it
    split_marker: str               # path under the root that exists when split {split} is present
    gt_flow: bool = False           # the layout carries ground-truth flow (TC can use it: --tc-flow gt)
    generator: str | None = None    # module whose `python -m` writes the set (None: a user's download)
    train: dict[str, Any] = field(default_factory=dict)  # engine.config defaults for this dataset
    # Test-time resize (docs/protocol.md, "Test-time resize"): frames are rescaled, aspect kept, into the
    # test_size box (mmcv's imrescale), then each side is resized up to a multiple of size_divisor (CFFM's
    # AlignedResize; None: no alignment). A generated set is fed at its native size.
    size_divisor: int | None = None
    # mIoU as the dataset's own benchmark averages it (metrics.segmentation.MIOU_CONVENTIONS): "present"
    # (classes present in the ground truth, the VSPW/CFFM evaluator) or "union" (classes with a non-empty
    # union: cityscapesscripts, mmsegmentation)
    miou_convention: str = "present"

    @property
    def generated(self) -> bool:
        """A generated set is tested at its generated frame size (a generator option), not at test_size."""
        return self.generator is not None

    @property
    def test_scale(self) -> tuple[int, int] | None:
        """The keep-ratio box test frames are rescaled into; None: fed at their native size."""
        return None if self.generated else tuple(self.test_size)

    def present_splits(self, root: str | Path, splits: tuple[str, ...]) -> list[str]:
        """The splits a tree at ``root`` provides, by this layout's marker."""
        return [s for s in splits if (Path(root) / self.split_marker.format(split=s)).exists()]


DATASETS: dict[str, DatasetInfo] = {d.name: d for d in (
    # The embedded default: VSPW layout plus meta.json and flow, written by `python -m videos.synthetic`.
    # num_classes and test_size are the generator's defaults (--classes, --height/--width; a test checks).
    # Training: crops at the frames' native size, a short schedule with a short warm-up and a larger LR, so
    # that a few hundred iterations learn something on a laptop.
    DatasetInfo("synthetic", "synthetic", 8, (64, 64), "dense", "VSPW layout, generated",
                reader="videos.vspw:SyntheticDataset", split_marker="{split}.txt", gt_flow=True,
                generator="videos.synthetic",
                train={"iters": 200, "warmup_iters": 20, "lr": 6e-4, "checkpoint_every": 50, "log_every": 20}),
    # Training crops as the papers train: SD-CPC VSPW 480x480 and Cityscapes 512x1024; MSAF CamVid 640x640
    # (its Cityscapes crop, 769x769, gives way to SD-CPC's so both families train alike).
    # Test: CFFM's VSPW pipeline, Resize(img_scale=(853, 480), keep_ratio=True) + sides up to a multiple of 32;
    # mmseg's Cityscapes one, keep-ratio Resize without alignment; CamVid at its full frame. Cityscapes and
    # CamVid average mIoU as cityscapesscripts does (CamVid has no official evaluator of its own).
    DatasetInfo("vspw", "VSPW", 124, (480, 853), "dense", "VSPW_480p release",
                reader="videos.vspw:VSPWDataset", split_marker="{split}.txt", train={"crop": (480, 480)},
                size_divisor=32),
    DatasetInfo("cityscapes", "Cityscapes", 19, (1024, 2048), "sparse", "Cityscapes leftImg8bit_sequence + gtFine",
                reader="videos.cityscapes:CityscapesDataset", split_marker="gtFine/{split}",
                train={"crop": (512, 1024)}, miou_convention="union"),
    DatasetInfo("camvid", "CamVid", 11, (720, 960), "sparse", "CamVid video sequences + sparse labels",
                reader="videos.camvid:CamVidDataset", split_marker="{split}annot", train={"crop": (640, 640)},
                miou_convention="union"),
)}
DATASET_NAMES: tuple[str, ...] = tuple(DATASETS)


def dataset_info(name: str) -> DatasetInfo:
    try:
        return DATASETS[name]
    except KeyError:
        raise ValueError(f"unknown dataset '{name}' (known: {', '.join(DATASETS)})") from None


def dataset_label(name: str) -> str:
    """The printed name (VSPW, Cityscapes, ...); an unknown name prints as itself."""
    return DATASETS[name].label if name in DATASETS else name
