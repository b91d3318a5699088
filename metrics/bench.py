"""Speed of the accuracy metrics: frames/s for mIoU + WIoU + mVC8 + mVC16 together, and peak memory.

    python -m metrics.bench [--height 480 --width 853 --classes 124 --frames 300 --threads 1]

Decoding is excluded: label maps are made in memory first (a pool of frames with moving regions and
flicker, cycled), then streamed through one ConfusionMatrix and one VideoConsistency (K = 8 and 16) as the
evaluator does. Peak memory is what the scoring itself allocates (tracemalloc, which numpy reports to),
measured for a short and a long video to show it does not grow with the video's length.

--end-to-end N additionally writes a VSPW-layout tree of N frames (PNG masks and predictions) to a temporary
folder and times ``python -m metrics.evaluate`` on it, decoding included: the figure that says how long a
whole split takes.
"""
from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path
import tracemalloc

import numpy as np
import torch

from common.cli import run_cli
from metrics.consistency import VideoConsistency
from metrics.segmentation import ConfusionMatrix


def make_pool(n: int, height: int, width: int, classes: int, seed: int = 0):
    """n (gt, pred) uint8 pairs: blocky regions drifting over time, ~3% ignore, prediction = gt + errors."""
    rng = np.random.default_rng(seed)
    base = rng.integers(0, classes, size=(height // 40 + 2, width // 40 + 2), dtype=np.uint8)
    pool = []
    for t in range(n):
        shift = t  # regions drift one pixel a frame: some pixels change, most do not
        block = np.kron(base, np.ones((40, 40), np.uint8))
        gt = np.roll(block, shift, axis=1)[:height, :width].copy()
        gt[rng.random((height, width)) < 0.03] = 255
        pred = np.where(gt == 255, rng.integers(0, classes, dtype=np.uint8), gt).astype(np.uint8)
        flicker = rng.random((height, width)) < 0.05
        pred[flicker] = rng.integers(0, classes, size=int(flicker.sum()), dtype=np.uint8)
        pool.append((gt, pred))
    return pool


def score(pool, num_frames: int, classes: int, parts=("cm", "vc")):
    cm = ConfusionMatrix(classes)
    vc = VideoConsistency((8, 16), min_frames=17)
    stream = vc.start_video()
    start = time.perf_counter()
    for t in range(num_frames):
        gt, pred = pool[t % len(pool)]
        if "cm" in parts:
            cm.update(gt, pred)
        if "vc" in parts:
            stream.update(gt, pred)
    vc.add_video(stream.finish())
    s = cm.scores()
    elapsed = time.perf_counter() - start
    return elapsed, s, vc.scores()


def peak_memory(pool, num_frames: int, classes: int) -> int:
    tracemalloc.start()
    tracemalloc.reset_peak()
    score(pool, num_frames, classes)
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    return peak


def end_to_end(pool, num_frames: int, classes: int) -> float:
    """Frames/s of metrics.evaluate on a written VSPW tree (one video), PNG decoding included."""
    from PIL import Image

    import videos.vspw  # noqa: F401  (imports outside the timed region)
    from metrics import evaluate

    with tempfile.TemporaryDirectory(prefix="metrics-bench-") as tmp:
        root = Path(tmp) / "vspw"
        origin, mask, pred = root / "data/v0/origin", root / "data/v0/mask", Path(tmp) / "pred/v0"
        for folder in (origin, mask, pred):
            folder.mkdir(parents=True)
        (root / "val.txt").write_text("v0\n")
        (root / "train.txt").write_text("")
        height, width = pool[0][0].shape
        Image.new("RGB", (width, height)).save(origin / "00000000.jpg")
        jpeg = (origin / "00000000.jpg").read_bytes()
        for t in range(num_frames):
            gt, p = pool[t % len(pool)]
            raw = np.where(gt == 255, 0, gt.astype(np.int16) + 1).astype(np.uint8)  # VSPW raw ids
            (origin / f"{t:08d}.jpg").write_bytes(jpeg)
            Image.fromarray(raw).save(mask / f"{t:08d}.png")
            Image.fromarray(p).save(pred / f"{t:08d}.png")
        argv = ["--dataset", "vspw", "--root", str(root), "--pred", str(pred.parent), "--out",
                str(Path(tmp) / "out.json"), "--tc-flow", "none", "--no-progress"]
        start = time.perf_counter()
        evaluate.main(argv)
        return num_frames / (time.perf_counter() - start)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m metrics.bench", description=__doc__.splitlines()[0])
    p.add_argument("--height", type=int, default=480)
    p.add_argument("--width", type=int, default=853)
    p.add_argument("--classes", type=int, default=124)
    p.add_argument("--frames", type=int, default=300, help="frames timed (one video)")
    p.add_argument("--pool", type=int, default=24, help="distinct frames made in memory and cycled")
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--end-to-end", type=int, default=0, metavar="N",
                   help="also time metrics.evaluate on a written N-frame VSPW tree (decoding included)")
    args = p.parse_args(argv)
    torch.set_num_threads(args.threads)

    pool = make_pool(args.pool, args.height, args.width, args.classes)
    score(pool, 20, args.classes)  # warm-up: page in, first-call costs
    print(f"label maps {args.height}x{args.width}, {args.classes} classes, {args.frames} frames, "
          f"{args.threads} thread(s), decoding excluded")
    for label, parts in (("mIoU+WIoU (confusion matrix)", ("cm",)), ("mVC8+mVC16 (one stream)", ("vc",)),
                         ("mIoU+WIoU+mVC8+mVC16 together", ("cm", "vc"))):
        elapsed, _, _ = score(pool, args.frames, args.classes, parts)
        print(f"  {label:32s} {args.frames / elapsed:8.1f} frames/s  ({1000 * elapsed / args.frames:.2f} ms/frame)")
    _, s, vc = score(pool, args.frames, args.classes)
    print(f"  (values: mIoU {s.miou:.4f}  WIoU {s.wiou:.4f}  mVC8 {vc[8]:.4f}  mVC16 {vc[16]:.4f})")
    short, long = 50, 4 * args.frames
    peak_short, peak_long = peak_memory(pool, short, args.classes), peak_memory(pool, long, args.classes)
    print(f"  peak memory of the scoring: {peak_short / 2**20:.2f} MiB for a {short}-frame video, "
          f"{peak_long / 2**20:.2f} MiB for a {long}-frame video (one frame = "
          f"{args.height * args.width / 2**20:.2f} MiB per uint8 map)")
    if args.end_to_end:
        if args.classes != 124:
            raise SystemExit("error: --end-to-end writes a VSPW tree, which needs --classes 124")
        fps = end_to_end(pool, args.end_to_end, args.classes)
        print(f"  metrics.evaluate end to end (PNG decoding included): {fps:.1f} frames/s over "
              f"{args.end_to_end} frames")
    return 0


if __name__ == "__main__":
    run_cli(main)
