"""Facts about each dataset that code needs without opening the data (complexity and FPS runs, schemas).

One table, one place. The readers in videos/ and the metrics use these numbers; the protocol behind them
is ../shared/PROTOCOL.md, restated in docs/protocol.md.
"""
from __future__ import annotations

from dataclasses import dataclass

IGNORE_INDEX = 255


@dataclass(frozen=True)
class DatasetInfo:
    name: str
    num_classes: int
    test_size: tuple[int, int]      # (H, W) test frame size the papers quote: the box test_resize fits frames
                                    # into, and the frame size FPS and GFLOPs are measured at
    annotated: str                  # "dense" (every frame labelled) or "sparse" (one frame per snippet)
    source: str                     # what the on-disk layout follows
    # Test-time resize (docs/protocol.md, "Test-time resize"): "keep_ratio" scales each frame, aspect kept,
    # to fit the test_size box (mmcv's imrescale: long side within the long edge, short side within the short
    # one), "native" feeds frames as stored; size_divisor then resizes each side up to a multiple of it
    # (CFFM's AlignedResize), None leaves the rescaled size as it is.
    test_resize: str = "keep_ratio"
    size_divisor: int | None = None
    # mIoU as the dataset's own benchmark averages it (metrics.segmentation.MIOU_CONVENTIONS): "present"
    # (classes present in the ground truth, the VSPW/CFFM evaluator) or "union" (classes with a non-empty
    # union, cityscapesscripts and mmsegmentation)
    miou_convention: str = "present"


DATASETS: dict[str, DatasetInfo] = {
    # The embedded default: VSPW layout, written by `python -m videos.synthetic`. num_classes is the
    # generator's default (--classes); a generated tree records its own count in meta.json.
    # The synthetic set is scored with the VSPW evaluator it shares its layout with, at its native size.
    "synthetic": DatasetInfo("synthetic", 8, (64, 64), "dense", "VSPW layout, generated", test_resize="native"),
    # CFFM's VSPW test pipeline: Resize(img_scale=(853, 480), keep_ratio=True) + each side up to a multiple of 32
    "vspw": DatasetInfo("vspw", 124, (480, 853), "dense", "VSPW_480p release", size_divisor=32),
    # mmseg's Cityscapes test pipeline: keep-ratio Resize, no alignment (1024x2048 frames stay 1024x2048)
    "cityscapes": DatasetInfo("cityscapes", 19, (1024, 2048), "sparse", "Cityscapes leftImg8bit_sequence + gtFine",
                              miou_convention="union"),
    # CamVid has no official evaluator: scored by the Cityscapes rule (mmseg-style confusion-matrix mean)
    "camvid": DatasetInfo("camvid", 11, (720, 960), "sparse", "CamVid video sequences + sparse labels",
                          miou_convention="union"),
}


def dataset_info(name: str) -> DatasetInfo:
    try:
        return DATASETS[name]
    except KeyError:
        raise ValueError(f"unknown dataset '{name}' (known: {', '.join(DATASETS)})") from None
