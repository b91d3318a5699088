"""Control for the synthetic-set comparison: how much mIoU does a coarser logit map alone cost?

    python -m benchmarks.output_stride_control --checkpoint runs/segformer/model.pt --root data/synthetic \
        [--dataset synthetic --split val --pool 2]

Scores a trained model's target logits as they are and average-pooled by ``--pool`` (SegFormer's 1/4
logits pooled by 2 are what a 1/8 head such as SD-CPC's has to work with), both resized to the label size
and argmaxed exactly as the evaluator does. Prints mIoU and per-class IoU for each.
"""
from __future__ import annotations

import argparse

import torch
import torch.nn.functional as F

from common.cli import run_cli
from engine.checkpoint import build_from_model_file
from metrics.segmentation import ConfusionMatrix
from models.outputs import resize_logits, target_logits
from videos.clips import ClipDataset
from videos.datasets import open_dataset


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m benchmarks.output_stride_control", description=__doc__.split("\n\n")[0])
    p.add_argument("--checkpoint", required=True, help="a model.pt written by engine.train")
    p.add_argument("--root", required=True)
    p.add_argument("--dataset", default="synthetic")
    p.add_argument("--split", default="val")
    p.add_argument("--pool", type=int, default=2, help="average-pooling factor applied to the logits")
    args = p.parse_args(argv)
    torch.set_num_threads(1)
    model, _ = build_from_model_file(args.checkpoint)
    ds = open_dataset(args.dataset, args.root, args.split)
    clips = ClipDataset(ds, model.variant.clip_offsets, train=False)
    cms = {1: ConfusionMatrix(ds.num_classes), args.pool: ConfusionMatrix(ds.num_classes)}
    with torch.no_grad():
        for i in range(len(clips)):
            clip, label = clips[i]
            logits = target_logits(model(clip[None]))
            for pool, cm in cms.items():
                pooled = F.avg_pool2d(logits, pool) if pool > 1 else logits
                cm.update(label.numpy(), resize_logits(pooled, tuple(label.shape)).argmax(1)[0].numpy())
    for pool, cm in cms.items():
        s = cm.scores()
        print(f"logits pooled x{pool}: mIoU {100 * s.miou:.1f}  per class "
              f"{[round(100 * x, 1) for x in s.iou_per_class]}")
    return 0


if __name__ == "__main__":
    run_cli(main)
