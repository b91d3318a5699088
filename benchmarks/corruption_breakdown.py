"""Where does temporal context pay on the synthetic set? mIoU on clean frames vs frames whose image is corrupted.

    python -m benchmarks.corruption_breakdown [--results results/default] [--split val]

The synthetic generator corrupts the image (never the label) of about 60% of the frames: cut-out
occluders, noise bursts, blur, brightness flicker (videos/synthetic.py; meta.json lists each frame's
kinds). A single-frame model can only guess under a cut-out; a model reading earlier frames can carry the
scene over. This scores every trained run's existing predictions (RESULTS/runs/synthetic/<backbone>/
<variant>/seed*/pred) separately on clean frames, on all corrupted frames and on frames with a cut-out,
and prints the mean over seeds per variant. Nothing is trained or predicted; the pipeline's outputs are
read as they are.
"""
from __future__ import annotations

import argparse
import json
from collections import defaultdict
from pathlib import Path

import numpy as np
from PIL import Image

from common.cli import InputError, run_cli
from metrics.segmentation import ConfusionMatrix
from videos.datasets import open_dataset

SUBSETS = ("all", "clean", "corrupted", "cutout")


def subset_of(kinds: list[str]) -> list[str]:
    """The subsets a frame with these corruption kinds belongs to."""
    if not kinds:
        return ["all", "clean"]
    return ["all", "corrupted"] + (["cutout"] if "cutout" in kinds else [])


def score_run(pred: Path, ds, subsets: dict[tuple[str, str], list[str]]) -> dict[str, float]:
    """mIoU (%) of one prediction folder on each subset; ``subsets``: (video, frame) -> its subsets."""
    cms = {s: ConfusionMatrix(ds.num_classes) for s in SUBSETS}
    for video in ds.videos:
        for frame in video.labelled:
            png = pred / video.name / f"{frame}.png"
            if not png.is_file():
                raise InputError(f"{png}: missing prediction")
            gt, guess = ds.read_label(video, frame), np.array(Image.open(png))
            for s in subsets[video.name, frame]:
                cms[s].update(gt, guess)
    return {s: 100 * cm.scores().miou for s, cm in cms.items()}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m benchmarks.corruption_breakdown",
                                description=__doc__.split("\n\n")[0])
    p.add_argument("--results", default="results/default", help="an experiment's results folder")
    p.add_argument("--split", default="val")
    args = p.parse_args(argv)
    results = Path(args.results)
    root = results / "data" / "synthetic"
    if not (root / "meta.json").is_file():
        raise InputError(f"{root / 'meta.json'}: not found (run the experiment first)")
    corrupted = json.loads((root / "meta.json").read_text())["corrupted_frames"]
    ds = open_dataset("synthetic", root, args.split)
    subsets = {(v.name, f): subset_of(corrupted.get(v.name, {}).get(f, [])) for v in ds.videos for f in v.labelled}
    rows: dict[str, list[dict[str, float]]] = defaultdict(list)
    for pred in sorted(results.glob("runs/synthetic/*/*/seed*/pred")):
        rows[f"{pred.parts[-4]}/{pred.parts[-3]}"].append(score_run(pred, ds, subsets))
    if not rows:
        raise InputError(f"{results}: no runs/synthetic/*/*/seed*/pred folders")
    n = {s: sum(s in kinds for kinds in subsets.values()) for s in SUBSETS}
    print(f"mIoU (%) by frame subset, mean over seeds; frames: " + ", ".join(f"{s} {n[s]}" for s in SUBSETS))
    print(f"{'backbone/variant':34s} seeds " + " ".join(f"{s:>9s}" for s in SUBSETS) + "  corrupted-clean")
    for name, scores in rows.items():
        mean = {s: float(np.mean([r[s] for r in scores])) for s in SUBSETS}
        print(f"{name:34s} {len(scores):5d} " + " ".join(f"{mean[s]:9.1f}" for s in SUBSETS)
              + f"  {mean['corrupted'] - mean['clean']:+15.1f}")
    return 0


if __name__ == "__main__":
    run_cli(main)
