"""Predict a split with a trained model and score it, in one process: the pipeline's per-run step.

    python -m engine.validate --checkpoint DIR/model.pt --dataset D --root ROOT --split val --pred PRED
                              --out METRICS.json [--registry FILE --device D --threads T --test-scale HxW]
                              [any metrics.evaluate flag: --tc-flow gt --tc-videos N --vc-min-frames 16 ...]

Exactly ``python -m engine.infer`` (PRED/<video>/<frame>.png, one atomic folder) followed by
``python -m metrics.evaluate`` (METRICS.json) with the same dataset, root and split: the same files, byte
for byte. When TC is scored (--tc-flow other than none; ``auto`` is resolved as metrics.evaluate does),
inference predicts the frames TC reads too (engine.infer --tc-frames auto, on the same --tc-videos): on a
sparsely labelled set every frame of each snippet, 30 per annotated Cityscapes frame. One process instead of two saves a torch start-up (about 1.5 s on the 2-core default machine)
for each of the default experiment's 50 runs. Use the two CLIs on their own to re-score predictions.
"""
from __future__ import annotations

import argparse

from common.cli import run_cli
from common.io import check_output_file


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m engine.validate", description=__doc__.split("\n\n")[0],
                                epilog="Every other flag is passed to metrics.evaluate.")
    p.add_argument("--checkpoint", required=True, help="DIR/model.pt written by engine.train")
    p.add_argument("--dataset", required=True)
    p.add_argument("--root", required=True)
    p.add_argument("--split", default="val")
    p.add_argument("--pred", required=True, help="prediction folder (engine.infer --pred)")
    p.add_argument("--out", required=True, help="metrics file (metrics.evaluate --out)")
    for flag in ("--registry", "--device", "--threads", "--test-scale"):   # engine.infer's own options
        p.add_argument(flag, default=None)
    # read here to decide which frames to predict, and passed on to metrics.evaluate unchanged
    p.add_argument("--tc-flow", default="auto")
    p.add_argument("--tc-videos", default=None)
    return p


def main(argv: list[str] | None = None) -> int:
    from engine import infer
    from metrics import evaluate

    args, evaluate_flags = build_parser().parse_known_args(argv)
    check_output_file(args.out, "metrics file")   # before the predictions, not after them
    where = ["--dataset", args.dataset, "--root", args.root, "--split", args.split, "--pred", args.pred]
    tc_flags = ["--tc-flow", args.tc_flow] + (["--tc-videos", args.tc_videos] if args.tc_videos is not None else [])
    infer_flags = [x for flag in ("registry", "device", "threads", "test_scale") if getattr(args, flag) is not None
                   for x in (f"--{flag.replace('_', '-')}", getattr(args, flag))]
    if evaluate.resolve_flow_name(args.tc_flow, args.dataset) != "none":
        infer_flags += ["--tc-frames", "auto"] + tc_flags[2:]
    status = infer.main(["--checkpoint", args.checkpoint, *where, *infer_flags])
    if status:
        return status
    return evaluate.main([*where, "--out", args.out, *tc_flags, *evaluate_flags])


if __name__ == "__main__":
    run_cli(main)
