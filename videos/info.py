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
    test_size: tuple[int, int]      # (H, W) the network sees at test time, as the papers evaluate
    annotated: str                  # "dense" (every frame labelled) or "sparse" (one frame per snippet)
    source: str                     # what the on-disk layout follows


DATASETS: dict[str, DatasetInfo] = {
    # The embedded default: VSPW layout, written by `python -m videos.synthetic`. num_classes is the
    # generator's default (--classes); a generated tree records its own count in meta.json.
    "synthetic": DatasetInfo("synthetic", 8, (64, 64), "dense", "VSPW layout, generated"),
    "vspw": DatasetInfo("vspw", 124, (480, 853), "dense", "VSPW_480p release"),
    "cityscapes": DatasetInfo("cityscapes", 19, (1024, 2048), "sparse", "Cityscapes leftImg8bit_sequence + gtFine"),
    "camvid": DatasetInfo("camvid", 11, (720, 960), "sparse", "CamVid video sequences + sparse labels"),
}


def dataset_info(name: str) -> DatasetInfo:
    try:
        return DATASETS[name]
    except KeyError:
        raise ValueError(f"unknown dataset '{name}' (known: {', '.join(DATASETS)})") from None
