"""Inference speed of one variant, per docs/protocol.md "FPS".

    python -m engine.fps --variant V [V ...] --backbone B --dataset D [--height H --width W --warmup 5
                         --iters 200] --out OUT.json [OUT.json ...] [--threads T --device auto|cpu|cuda
                         --dtype float32|float16|bfloat16]

Several variants (one --out each, same order) are timed one after the other in one process: the pipeline
times every variant of a backbone in one job, so they share one start-up and one machine state.

What is timed: batch 1, the whole forward of one test clip (every frame the variant reads, target last),
the resize of the target logits to the label size and the argmax (models.outputs.predict), repeated
``iters`` times after ``warmup`` untimed runs. Data loading is excluded (the clip is made once, in memory,
already on the device). On CUDA the timed region is bracketed by synchronize, cudnn.benchmark is off (so
every method runs the same kernels it would without autotuning). Weights are random: speed does not
depend on them. Default resolution: the dataset's test size (videos.info); the label size is the same.

The JSON holds fps, ms per frame, device name, threads, dtype, resolution, variant, backbone and
provenance. Compare methods as ratios measured in the same run on the same device.

Models that can reuse reference-frame features (``extract``/``decode``, e.g. MSAF) are also timed as a
stream: ``fps_stream`` is one backbone pass on the new frame plus everything after the backbone, the
reference features coming from a cache. Others record null there.
"""
from __future__ import annotations

import argparse
import contextlib
import sys
import time

import torch

from common.cli import InputError, run_cli
from common.device import pick_device, synchronize
from common.io import write_json
from common.provenance import device_description, provenance
from engine.config import apply_threads
from models.outputs import supports_streaming
from videos.info import DATASET_NAMES

DTYPES = {"float32": torch.float32, "float16": torch.float16, "bfloat16": torch.bfloat16}


def measure_fps(step, device: torch.device, warmup: int, iters: int, dtype: str = "float32") -> dict:
    """Time ``iters`` calls of ``step()`` after ``warmup`` calls, under inference mode (and autocast for a
    reduced dtype), synchronising CUDA around the timed region."""
    autocast = (torch.autocast(device.type, dtype=DTYPES[dtype]) if dtype != "float32"
                else contextlib.nullcontext())
    with torch.inference_mode(), autocast:
        for _ in range(warmup):
            step()
        synchronize(device)
        start = time.perf_counter()
        for _ in range(iters):
            step()
        synchronize(device)
        elapsed = time.perf_counter() - start
    return {"fps": iters / elapsed, "ms_per_frame": 1e3 * elapsed / iters, "seconds": elapsed}


def clip_step(model: torch.nn.Module, clip: torch.Tensor, size: tuple[int, int]):
    """The protocol's unit: the whole forward of one test clip, resize to the label size, argmax."""
    from models.outputs import predict

    return lambda: predict(model, clip, size)


def stream_step(model: torch.nn.Module, clip: torch.Tensor, size: tuple[int, int]):
    """One step of a video stream: the backbone sees only the new (target) frame, the reference frames'
    features come from the cache earlier steps filled. Models opt in with ``extract(frames) -> list of
    per-frame tensors`` and ``decode(list of (B, T, ...) tensors) -> logits``. This is how the MSAF paper's
    FPS must have been measured (its FPS ratios fit a single backbone pass per frame, not three)."""
    from models.outputs import resize_logits, target_logits

    with torch.inference_mode():
        cached = model.extract(clip[0, :-1])  # computed once: a stream has them from earlier steps
    target = clip[:, -1]

    def step():
        new = model.extract(target)
        feats = [torch.cat([c, n]).unsqueeze(0) for c, n in zip(cached, new)]
        return resize_logits(target_logits(model.decode(feats)), size).argmax(1)

    return step


def run(variant: str, backbone: str, dataset: str, height: int | None = None, width: int | None = None,
        warmup: int = 5, iters: int = 200, device: str = "auto", threads: int | None = None,
        dtype: str = "float32", seed: int = 0, registry: str | None = None) -> dict:
    from models.registry import RegistryError, build_model, get_variant
    from videos.info import dataset_info

    if warmup < 0 or iters < 1:
        raise InputError(f"--warmup must be >= 0 and --iters >= 1, got {warmup} and {iters}")
    try:
        info = dataset_info(dataset)
    except ValueError as e:
        raise InputError(str(e)) from None
    h, w = height or info.test_size[0], width or info.test_size[1]
    threads = apply_threads(threads)
    dev = pick_device(device)
    if dtype != "float32" and dev.type != "cuda":
        raise InputError(f"--dtype {dtype}: reduced precision is only measured on CUDA (device is {dev})")
    if dev.type == "cuda":
        torch.backends.cudnn.benchmark = False
    torch.manual_seed(seed)
    try:
        v = get_variant(variant, registry)
        model = build_model(v, backbone, info.num_classes)
    except RegistryError as e:
        raise InputError(str(e)) from None
    model = model.to(dev).eval()
    clip = torch.randn(1, v.num_frames, 3, h, w, device=dev)
    timing = measure_fps(clip_step(model, clip, (h, w)), dev, warmup, iters, dtype)
    if v.num_frames > 1 and supports_streaming(model):
        stream = measure_fps(stream_step(model, clip, (h, w)), dev, warmup, iters, dtype)
        timing.update(fps_stream=stream["fps"], ms_per_frame_stream=stream["ms_per_frame"])
    else:
        timing.update(fps_stream=None, ms_per_frame_stream=None)
    setup = {"variant": variant, "backbone": backbone, "dataset": dataset, "num_classes": info.num_classes,
             "resolution": [h, w], "clip_frames": v.num_frames, "batch": 1, "warmup": warmup, "iters": iters,
             "dtype": dtype}
    desc = device_description(dev)
    return {**timing, **setup, "device": desc["device"], "device_name": desc["device_name"], "threads": threads,
            "cudnn_benchmark": False if dev.type == "cuda" else None,
            "provenance": provenance(setup, seed, dev)}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m engine.fps", description=__doc__.split("\n\n")[0])
    p.add_argument("--variant", required=True, nargs="+", help="one or more registry names")
    p.add_argument("--backbone", required=True)
    p.add_argument("--dataset", required=True, choices=DATASET_NAMES)
    p.add_argument("--height", type=int, default=None, help="default: the dataset's test height")
    p.add_argument("--width", type=int, default=None, help="default: the dataset's test width")
    p.add_argument("--warmup", type=int, default=5)
    p.add_argument("--iters", type=int, default=200)
    p.add_argument("--device", default="auto")
    p.add_argument("--threads", type=int, default=None, help="torch threads (default: $VSS_THREADS, else the "
                   "cores this process may use)")
    p.add_argument("--dtype", default="float32", choices=tuple(DTYPES))
    p.add_argument("--seed", type=int, default=0, help="seed of the random weights and input")
    p.add_argument("--registry", default=None, help="variant registry file (default: $VSS_VARIANTS, else "
                   "config/variants.yaml)")
    p.add_argument("--out", required=True, nargs="+", help="output JSON, one per --variant")
    args = p.parse_args(argv)
    if len(args.out) != len(args.variant):
        raise InputError(f"--out: {len(args.out)} file(s) for {len(args.variant)} variant(s); give one per variant")
    for variant, out in zip(args.variant, args.out):
        result = run(variant, args.backbone, args.dataset, args.height, args.width, args.warmup, args.iters,
                     args.device, args.threads, args.dtype, args.seed, args.registry)
        write_json(out, result)
        print(f"{variant}/{args.backbone} at {result['resolution'][0]}x{result['resolution'][1]} on "
              f"{result['device_name']} ({result['threads']} threads): {result['fps']:.2f} FPS", file=sys.stderr)
    return 0


if __name__ == "__main__":
    run_cli(main)
