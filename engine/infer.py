"""Predict every labelled frame of a split with a trained model; one PNG of train ids per frame.

    python -m engine.infer --checkpoint DIR/model.pt --dataset D --root ROOT --split val --pred PRED
                           [--tc-frames labelled|auto|all --tc-videos N] [--test-scale HxW|native]
                           [--threads T --device auto|cpu|cuda --workers W --batch N]

Frames go in validation order (video by video, time order), each as the clip the variant reads (past
references only; at a video's start a missing reference repeats frame 0, videos.clips). Each frame is
resized as the reference test pipeline does (docs/protocol.md, "Test-time resize"): aspect kept into the
dataset's test box (videos.info: VSPW 480x853, Cityscapes 1024x2048, CamVid 720x960; the synthetic set at
its native size), then each side up to a multiple of the dataset's size divisor (VSPW: 32, as CFFM). The
target logits are resized back to the frame's own size (bilinear) and argmaxed, then written as
PRED/<video>/<frame>.png (uint8). A model with streaming hooks puts each frame through its backbone once
(models.outputs.StreamingPredictor: the clip forward's logits, a third of the backbone work for three frames).

--tc-frames all also predicts every unlabelled frame of the first --tc-videos videos (default all); auto does
so where TC reads them (metrics.temporal.reads_unlabelled_frames: a sparsely labelled set, a Cityscapes
snippet's 30 frames around its annotated frame, CamVid's sequence frames around each annotated one;
docs/protocol.md, "TC") and predicts the labelled frames only on a dense set. On Cityscapes that is 30
forwards per annotated frame instead of one; the count is in info.json (``tc_frames``).

Consecutive frames of the same size go through the model together, up to --batch clips (auto: as many as
make about a megapixel, at most 8: 8 at 64x64, 2 at 480x864, 1 at 1024x2048), which is about twice as fast
on a CPU at small sizes; the numbers are those of one clip at a time. The whole folder is written at once
(common.io.atomic_dir): an interrupted run leaves the old folder or none, never a partial one.
PRED/info.json records the model, the frame counts, every (frame size -> input size) fed, and provenance.
"""
from __future__ import annotations

import argparse
import sys
import time
from collections import Counter
from pathlib import Path

import torch
from PIL import Image

from common.cli import InputError, run_cli
from common.device import pick_device
from common.io import atomic_dir, check_replaceable_dir, write_json
from common.provenance import provenance
from engine.checkpoint import build_from_model_file
from engine.config import apply_threads
from videos.info import DATASET_NAMES, dataset_info

INFO = "info.json"
AUTO_BATCH_PIXELS, MAX_AUTO_BATCH = 1 << 20, 8


def auto_batch(height: int, width: int) -> int:
    """Clips per forward when --batch is not given: about a megapixel per frame slot, 1..8."""
    return max(1, min(MAX_AUTO_BATCH, AUTO_BATCH_PIXELS // (height * width)))


TC_FRAMES = ("labelled", "auto", "all")


def test_resize_for(dataset: str, scale: str | None = None) -> tuple[tuple[int, int] | None, int | None]:
    """(keep-ratio box (H, W) or None for native, size divisor) of the dataset's test pipeline (videos.info);
    ``scale`` "HxW" or "native" overrides the box (an experiment's datasets/<name>/test_size)."""
    info = dataset_info(dataset)
    if scale is None:
        box = info.test_scale
    elif scale == "native":
        box = None
    else:
        try:
            h, w = (int(x) for x in scale.lower().split("x"))
        except ValueError:
            raise InputError(f"--test-scale must be HxW (e.g. 480x853) or native, got '{scale}'") from None
        if h < 1 or w < 1:
            raise InputError(f"--test-scale must be positive, got '{scale}'")
        box = (h, w)
    return box, info.size_divisor


def infer(model_file: str | Path, dataset: str, root: str | Path, split: str, pred: str | Path, *,
          device: str = "auto", threads: int | None = None, workers: int = 0, progress: bool = False,
          registry: str | Path | None = None, batch: int | None = None, tc_frames: str = "labelled",
          tc_videos: int | None = None, test_scale: str | None = None) -> dict:
    from models.outputs import StreamingPredictor
    from videos.clips import ClipDataset
    from videos.datasets import open_dataset

    if batch is not None and batch < 1:   # before any model or data is loaded
        raise InputError(f"--batch must be at least 1, got {batch}")
    if tc_frames not in TC_FRAMES:
        raise InputError(f"--tc-frames must be one of {', '.join(TC_FRAMES)}, got '{tc_frames}'")
    if tc_videos is not None and tc_videos < 0:
        raise InputError(f"--tc-videos must be >= 0, got {tc_videos}")
    scale, divisor = test_resize_for(dataset, test_scale)
    check_replaceable_dir(pred, INFO, "prediction folder")   # a file, under a file, or not ours: refused now
    threads = apply_threads(threads)
    dev = pick_device(device)
    model, meta = build_from_model_file(model_file, dev, registry)
    ds = open_dataset(dataset, root, split)
    if ds.num_classes != meta["num_classes"]:
        raise InputError(f"{model_file}: model predicts {meta['num_classes']} classes but {dataset} at {root} "
                         f"has {ds.num_classes}")
    if meta["num_classes"] > 255:   # 255 is the ignore id; train ids must fit a uint8 PNG below it
        raise InputError(f"{model_file}: {meta['num_classes']} classes do not fit a uint8 PNG")
    if tc_frames == "auto":
        from metrics.temporal import reads_unlabelled_frames

        tc_frames = "all" if reads_unlabelled_frames(ds) else "labelled"
    try:
        clips = ClipDataset(ds, model.variant.clip_offsets, train=False, test_scale=scale, size_divisor=divisor,
                            all_frames_videos=(tc_videos if tc_frames == "all" else 0))
    except ValueError as e:   # e.g. a split without ground truth: nothing this CLI is defined for
        raise InputError(str(e)) from None
    loader = torch.utils.data.DataLoader(clips, batch_size=None, shuffle=False, num_workers=workers,
                                         pin_memory=dev.type == "cuda")
    bar = None
    if progress:
        from tqdm import tqdm

        bar = tqdm(total=len(clips), unit="frame", dynamic_ncols=True)
    start = time.perf_counter()
    with atomic_dir(pred, marker=INFO) as tmp:
        made: set[str] = set()
        pending: list[tuple[int, torch.Tensor, tuple[int, int]]] = []   # (index, clip, label size)
        fed: Counter = Counter()   # (frame size, input size) -> frames

        stream = StreamingPredictor(model, dev, clips.num_frames)

        def flush() -> None:
            keys = [(clips.item(i)[0].name, list(clips.frame_ids(i))) for i, _, _ in pending]
            ids = stream(torch.stack([c for _, c, _ in pending]), keys, pending[0][2])
            for (i, _, _), frame_ids in zip(pending, ids.to("cpu", torch.uint8)):
                video, frame = clips.item(i)
                if video.name not in made:
                    (tmp / video.name).mkdir(parents=True, exist_ok=True)
                    made.add(video.name)
                Image.fromarray(frame_ids.numpy()).save(tmp / video.name / f"{frame}.png")
            if bar is not None:
                bar.update(len(pending))
            pending.clear()

        for i, (clip, label) in enumerate(loader):
            size = tuple(label.shape[-2:])
            fed[size, tuple(clip.shape[-2:])] += 1
            limit = batch or auto_batch(*clip.shape[-2:])
            if pending and (len(pending) >= limit or pending[0][1].shape != clip.shape or pending[0][2] != size):
                flush()
            pending.append((i, clip, size))
        if pending:
            flush()
        elapsed = time.perf_counter() - start
        info = {"model": str(model_file), "variant": meta["variant"], "backbone": meta["backbone"],
                "num_classes": meta["num_classes"], "trained_on": meta["dataset"], "dataset": dataset,
                "split": split, "frames": clips.num_labelled, "tc_frames": len(clips) - clips.num_labelled,
                "videos": len(made), "test_scale": list(scale) if scale else None, "size_divisor": divisor,
                "input_sizes": [{"frame": list(f), "input": list(i), "frames": n}
                                for (f, i), n in sorted(fed.items())],
                "seconds": elapsed, "train_provenance": meta.get("provenance"),
                "provenance": provenance(meta.get("config"), (meta.get("config") or {}).get("seed"), dev)}
        write_json(tmp / INFO, info)
    if bar is not None:
        bar.close()
    return info


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m engine.infer", description=__doc__.split("\n\n")[0])
    p.add_argument("--checkpoint", required=True, help="DIR/model.pt written by engine.train")
    p.add_argument("--dataset", required=True, choices=DATASET_NAMES)
    p.add_argument("--root", required=True)
    p.add_argument("--split", default="val", choices=("train", "val", "test"))
    p.add_argument("--pred", required=True, help="output folder: PRED/<video>/<frame>.png")
    p.add_argument("--device", default="auto")
    p.add_argument("--threads", type=int, default=None, help="torch threads (default: $VSS_THREADS, else the "
                   "cores this process may use)")
    p.add_argument("--workers", type=int, default=0, help="DataLoader workers (0: read in the main process)")
    p.add_argument("--batch", type=int, default=None, help="clips per forward (default: about a megapixel, 1..8)")
    p.add_argument("--tc-frames", default="labelled", choices=TC_FRAMES,
                   help="labelled: the frames with ground truth; all: also every other frame of the first "
                        "--tc-videos videos; auto: all where TC reads them (a sparse set: Cityscapes, CamVid)")
    p.add_argument("--tc-videos", type=int, default=None,
                   help="--tc-frames all: only the first N videos/snippets (metrics.evaluate --tc-videos)")
    p.add_argument("--test-scale", default=None, help="keep-ratio test box HxW, or native (default: the "
                   "dataset's, videos.info)")
    p.add_argument("--registry", default=None, help="variant registry, used only for model files that do not "
                   "carry their variant's definition (default: $VSS_VARIANTS, else config/variants.yaml)")
    return p


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    info = infer(args.checkpoint, args.dataset, args.root, args.split, args.pred, device=args.device,
                 threads=args.threads, workers=args.workers, progress=sys.stderr.isatty(),
                 registry=args.registry, batch=args.batch, tc_frames=args.tc_frames, tc_videos=args.tc_videos,
                 test_scale=args.test_scale)
    extra = f" + {info['tc_frames']} unlabelled frames for TC" if info["tc_frames"] else ""
    fed = ", ".join("{}x{} -> {}x{}".format(*r["frame"], *r["input"]) for r in info["input_sizes"])
    print(f"predicted {info['frames']} labelled frames{extra} of {info['videos']} videos in {info['seconds']:.1f} s"
          f" (input {fed}) -> {args.pred}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    run_cli(main)
