"""Inference speed of one variant, per docs/protocol.md "FPS".

    python -m engine.fps --variant V [V ...] --backbone B --dataset D [--height H --width W --warmup 5
                         --iters 200 --repeats 10] --out OUT.json [OUT.json ...] [--threads T
                         --device auto|cpu|cuda --dtype float32|float16|bfloat16]

Several variants (one --out each, same order) are timed in one process, their blocks interleaved (round r
times one block of each, the order rotated): the pipeline times every variant of a backbone in one job, so
they share one start-up, and a load that comes and goes on a shared machine slows them alike, which keeps
the ratios to the baseline meaningful.

What is timed: batch 1, the whole forward of one test clip (every frame the variant reads, target last),
the resize of the target logits to the frame size and the argmax (models.outputs.predict). After
``warmup`` untimed runs, ``iters`` runs are timed in ``repeats`` equal blocks (each block bracketed by a
CUDA synchronize); ``fps`` is the median over the blocks of (clips in the block / its time), with the
first and third quartiles beside it (``fps_q1``, ``fps_q3``) and the block count. One scheduler hiccup on
a shared machine then moves a quartile, not the figure. Data loading is excluded (the clip is made once,
in memory, already on the device). cudnn.benchmark is off (every method runs the kernels it would without
autotuning). Weights are random: speed does not depend on them. The frame size defaults to the dataset's
test size (videos.info); the network input is that frame after the dataset's test resize (VSPW:
480x853 -> 480x864), the output is resized back to the frame size, as engine.infer does.

Why not torch.utils.benchmark.Timer: ``timeit(n)`` runs max(n/100, 2) hidden warm-up statements before
every block (tripling the cost of the short blocks a median needs when a forward takes a second on a CPU),
and ``blocked_autorange``/``adaptive_autorange`` stop on wall time, so the repeat count and the job's
length would change with the machine's load. The quartiles are numpy's linear ones, the same as
torch.utils.benchmark.Measurement's.

Models with the streaming hooks (models.outputs.supports_streaming: ``extract``/``decode``) are also
timed as a stream: ``fps_stream`` is one ``extract`` of the new frame plus ``decode``, the reference
frames' features coming from a cache, as a video is processed online (and as CFFM's and MSAF's authors
timed). Others record null there.

The JSON holds fps, its quartiles, ms per frame, the repeat count, device name, threads, dtype, frame and
input size, the machine's load average around the timing, variant, backbone and provenance. Compare methods
as ratios measured in the same run on the same device.
"""
from __future__ import annotations

import argparse
import contextlib
import os
import sys
import time

import numpy as np
import torch

from common.cli import InputError, run_cli
from common.device import pick_device, synchronize
from common.io import write_json
from common.provenance import device_description, provenance
from engine.config import apply_threads
from models.outputs import supports_streaming
from videos.info import DATASET_NAMES

DTYPES = {"float32": torch.float32, "float16": torch.float16, "bfloat16": torch.bfloat16}
DEFAULT_REPEATS = 10
# a stream timing's figures under the clip timing's, in the JSON
STREAM_KEYS = {"fps": "fps_stream", "fps_q1": "fps_stream_q1", "fps_q3": "fps_stream_q3",
               "fps_rel_iqr": "fps_stream_rel_iqr", "ms_per_frame": "ms_per_frame_stream"}


def measure_fps(step, device: torch.device, warmup: int, iters: int, repeats: int = DEFAULT_REPEATS,
                dtype: str = "float32") -> dict:
    """Time ``iters`` calls of ``step()`` in ``repeats`` blocks after ``warmup`` calls (measure_interleaved
    with one step)."""
    return measure_interleaved({"step": step}, device, warmup, iters, repeats, dtype)["step"]


def measure_interleaved(steps: dict, device: torch.device, warmup: int, iters: int, repeats: int = DEFAULT_REPEATS,
                        dtype: str = "float32") -> dict:
    """Time several steps ({name: callable}) in interleaved blocks: round r times one block of every step,
    the order rotated by r, so a load that comes and goes on a shared machine hits each step alike and
    their ratio keeps its meaning. Each step gets ``warmup`` untimed calls, then ``iters`` timed calls in
    ``repeats`` equal blocks (``repeats`` capped at ``iters``, ``iters`` rounded down to a multiple of it),
    under inference mode (and autocast for a reduced dtype), CUDA synchronised around each block.
    Returns {name: fps_statistics}."""
    repeats = max(1, min(repeats, iters))
    per_block = iters // repeats
    names = list(steps)
    autocast = (torch.autocast(device.type, dtype=DTYPES[dtype]) if dtype != "float32"
                else contextlib.nullcontext())
    seconds: dict = {name: [] for name in names}
    with torch.inference_mode(), autocast:
        for name in names:
            for _ in range(warmup):
                steps[name]()
        for r in range(repeats):
            for name in names[r % len(names):] + names[:r % len(names)]:
                synchronize(device)
                start = time.perf_counter()
                for _ in range(per_block):
                    steps[name]()
                synchronize(device)
                seconds[name].append(time.perf_counter() - start)
    return {name: fps_statistics(seconds[name], per_block) for name in names}


def fps_statistics(block_seconds: list[float], per_block: int) -> dict:
    """Median and quartiles of the per-block frame rates (a block's clips / its seconds)."""
    rates = per_block / np.asarray(block_seconds, dtype=np.float64)
    q1, median, q3 = (float(x) for x in np.quantile(rates, [0.25, 0.5, 0.75]))
    total = float(sum(block_seconds))
    return {"fps": median, "fps_q1": q1, "fps_q3": q3, "fps_rel_iqr": (q3 - q1) / median,
            "fps_mean": per_block * len(block_seconds) / total, "ms_per_frame": 1e3 / median,
            "repeats": len(block_seconds), "iters_per_repeat": per_block, "seconds": total}


def clip_step(model: torch.nn.Module, clip: torch.Tensor, size: tuple[int, int]):
    """The protocol's unit: the whole forward of one test clip, resize to the frame size, argmax."""
    from models.outputs import predict

    return lambda: predict(model, clip, size)


def _join(cached, new):
    """Cached reference features (leading dim = frames) + the new frame's -> one (1, T, ...) clip batch,
    through whatever nesting of lists, tuples and dicts ``extract`` returns."""
    if isinstance(cached, torch.Tensor):
        return torch.cat([cached, new]).unsqueeze(0)
    if isinstance(cached, dict):
        return {k: _join(cached[k], new[k]) for k in cached}
    if isinstance(cached, (list, tuple)):
        return type(cached)(_join(c, n) for c, n in zip(cached, new, strict=True))
    raise TypeError(f"extract() returned a {type(cached).__name__}; expected tensors in lists, tuples or dicts")


def stream_step(model: torch.nn.Module, clip: torch.Tensor, size: tuple[int, int]):
    """One step of a video stream: ``extract`` sees only the new (target) frame, the reference frames'
    features come from the cache earlier steps filled. Models opt in with ``extract(frames (N, 3, H, W))``
    returning per-frame features (tensors with N leading, possibly in lists, tuples or dicts) and
    ``decode(the same structure with (B, T, ...) tensors) -> logits``, their forward being
    ``decode(extract(...))`` (models.outputs.supports_streaming). Used generically for every such model."""
    from models.outputs import resize_logits, target_logits

    with torch.inference_mode():
        cached = model.extract(clip[0, :-1])  # computed once: a stream has them from earlier steps
    target = clip[:, -1]

    def step():
        feats = _join(cached, model.extract(target))
        return resize_logits(target_logits(model.decode(feats)), size).argmax(1)

    return step


def time_model(model: torch.nn.Module, clip: torch.Tensor, size: tuple[int, int], device: torch.device,
               warmup: int, iters: int, repeats: int = DEFAULT_REPEATS, dtype: str = "float32") -> dict:
    """The clip timing, and the stream timing (``*_stream`` keys, null without the hooks or references)."""
    return time_models({"model": (model, clip)}, size, device, warmup, iters, repeats, dtype)["model"]


def time_models(models: dict, size: tuple[int, int], device: torch.device, warmup: int, iters: int,
                repeats: int = DEFAULT_REPEATS, dtype: str = "float32") -> dict:
    """{name: (model, clip)} timed in interleaved blocks (measure_interleaved): every model's clip step, and
    the stream step of those with the hooks and references. Returns {name: timing}."""
    steps = {}
    for name, (model, clip) in models.items():
        steps[name, "clip"] = clip_step(model, clip, size)
        if clip.shape[1] > 1 and supports_streaming(model):
            steps[name, "stream"] = stream_step(model, clip, size)
    got = measure_interleaved(steps, device, warmup, iters, repeats, dtype)
    out = {}
    for name in models:
        stream = got.get((name, "stream"))
        out[name] = {**got[name, "clip"], **{ours: stream[key] if stream else None for key, ours in STREAM_KEYS.items()},
                     "interleaved_with": [n for n in models if n != name]}
    return out


def run(variant: str, backbone: str, dataset: str, height: int | None = None, width: int | None = None,
        warmup: int = 5, iters: int = 200, device: str = "auto", threads: int | None = None,
        dtype: str = "float32", seed: int = 0, registry: str | None = None, repeats: int = DEFAULT_REPEATS) -> dict:
    """One variant's FPS JSON (run_many with one variant)."""
    return run_many([variant], backbone, dataset, height, width, warmup, iters, device, threads, dtype, seed,
                    registry, repeats)[0]


def run_many(variants: list[str], backbone: str, dataset: str, height: int | None = None, width: int | None = None,
             warmup: int = 5, iters: int = 200, device: str = "auto", threads: int | None = None,
             dtype: str = "float32", seed: int = 0, registry: str | None = None,
             repeats: int = DEFAULT_REPEATS) -> list[dict]:
    """The FPS JSON of each variant (same order), all timed in one interleaved measurement."""
    from models.registry import RegistryError, build_model, get_variant
    from videos.augment import test_input_size
    from videos.info import dataset_info

    if warmup < 0 or iters < 1 or repeats < 1:
        raise InputError(f"--warmup must be >= 0, --iters and --repeats >= 1, got {warmup}, {iters} and {repeats}")
    try:
        info = dataset_info(dataset)
    except ValueError as e:
        raise InputError(str(e)) from None
    h, w = height or info.test_size[0], width or info.test_size[1]
    ih, iw = test_input_size((h, w), info.test_scale, info.size_divisor)
    threads = apply_threads(threads)
    dev = pick_device(device)
    if dtype != "float32" and dev.type != "cuda":
        raise InputError(f"--dtype {dtype}: reduced precision is only measured on CUDA (device is {dev})")
    if dev.type == "cuda":
        torch.backends.cudnn.benchmark = False
    models, specs = {}, {}
    for variant in variants:
        torch.manual_seed(seed)
        try:
            specs[variant] = v = get_variant(variant, registry)
            model = build_model(v, backbone, info.num_classes)
        except RegistryError as e:
            raise InputError(str(e)) from None
        models[variant] = (model.to(dev).eval(), torch.randn(1, v.num_frames, 3, ih, iw, device=dev))
    load_before = _load_average()
    if dev.type == "cpu" and load_before is not None and load_before > (os.cpu_count() or 1):
        # measured on a 2-core machine at load 5: two threads per timing scattered 3-15 FPS (IQR 26-121%)
        # where one thread held 27-41 FPS (IQR 4-22%); threads waiting on a descheduled peer dominate
        hint = "; --threads 1 is steadier" if threads > 1 else ""
        print(f"warning: load average {load_before} on {os.cpu_count()} cores: other processes share the CPU and "
              f"the timings scatter (see fps_q1/fps_q3){hint}", file=sys.stderr)
    timings = time_models(models, (h, w), dev, warmup, iters, repeats, dtype)
    load = [load_before, _load_average()]
    desc = device_description(dev)
    results = []
    for variant in variants:
        timing = timings[variant]
        setup = {"variant": variant, "backbone": backbone, "dataset": dataset, "num_classes": info.num_classes,
                 "resolution": [h, w], "input_size": [ih, iw], "clip_frames": specs[variant].num_frames,
                 "batch": 1, "warmup": warmup, "iters": timing["repeats"] * timing["iters_per_repeat"],
                 "dtype": dtype}
        results.append({**timing, **setup, "device": desc["device"], "device_name": desc["device_name"],
                        "threads": threads, "cudnn_benchmark": False if dev.type == "cuda" else None,
                        "load_average": load, "cpu_count": os.cpu_count(),
                        "provenance": provenance(setup, seed, dev)})
    return results


def _load_average() -> float | None:
    """The machine's 1-minute load average: how many runnable processes shared the cores while timing."""
    try:
        return round(os.getloadavg()[0], 2)
    except (AttributeError, OSError):   # not on every platform
        return None


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m engine.fps", description=__doc__.split("\n\n")[0])
    p.add_argument("--variant", required=True, nargs="+", help="one or more registry names")
    p.add_argument("--backbone", required=True)
    p.add_argument("--dataset", required=True, choices=DATASET_NAMES)
    p.add_argument("--height", type=int, default=None, help="frame height (default: the dataset's test height)")
    p.add_argument("--width", type=int, default=None, help="frame width (default: the dataset's test width)")
    p.add_argument("--warmup", type=int, default=5)
    p.add_argument("--iters", type=int, default=200, help="timed clips in all (split into --repeats blocks)")
    p.add_argument("--repeats", type=int, default=DEFAULT_REPEATS,
                   help=f"timed blocks: fps is their median (default {DEFAULT_REPEATS}, at most --iters)")
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
    results = run_many(args.variant, args.backbone, args.dataset, args.height, args.width, args.warmup, args.iters,
                       args.device, args.threads, args.dtype, args.seed, args.registry, args.repeats)
    for variant, out, result in zip(args.variant, args.out, results):
        write_json(out, result)
        stream = (f", stream {result['fps_stream']:.2f} [{result['fps_stream_q1']:.2f}, "
                  f"{result['fps_stream_q3']:.2f}]" if result["fps_stream"] is not None else "")
        print(f"{variant}/{args.backbone} at {result['resolution'][0]}x{result['resolution'][1]} (input "
              f"{result['input_size'][0]}x{result['input_size'][1]}) on {result['device_name']} "
              f"({result['threads']} threads, load {result['load_average'][0]}): {result['fps']:.2f} FPS "
              f"[{result['fps_q1']:.2f}, {result['fps_q3']:.2f}] over {result['repeats']} blocks{stream}",
              file=sys.stderr)
    return 0


if __name__ == "__main__":
    run_cli(main)
