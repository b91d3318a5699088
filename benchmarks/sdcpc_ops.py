"""Speed and memory of SD-CPC's operators against what they replace (prints figures; never a test).

    python -m benchmarks.sdcpc_ops [--device auto|cpu|cuda] [--repeats 5] [--channels 128]
                                   [--height 60 --width 107]    # F2 of a 480x853 frame (stride 8)

1. Selective cross-attention (Eq. 2; P = 4, 9, 16) vs dense softmax cross-attention between the same two
   frames: time and peak memory at the F2 size, and the N-scaling of the selective one (N, 2N, 4N).
2. DCNv3 (3x3 points, 8 groups) vs a plain 3x3 convolution with the same channels.
3. Linear attention (Katharopoulos) vs softmax attention (explicit N x N), one head of C channels.

Peak memory: on CUDA ``max_memory_allocated`` above the inputs; on CPU the profiler's allocation timeline
(largest running sum of allocations minus frees during the call), i.e. the tensors the operator creates.
Timings: best of ``--repeats`` runs after one warm-up, one CPU thread unless --threads says otherwise.
"""
from __future__ import annotations

import argparse
import time

import torch
import torch.nn as nn

from common.cli import InputError, run_cli
from common.device import pick_device, synchronize
from models.ops.dcnv3 import DCNv3
from models.ops.linear_attention import linear_attention, softmax_attention
from models.ops.selective_cross_attention import (base_coordinates, dense_cross_attention,
                                                  selective_cross_attention)


def peak_bytes(fn, device: torch.device) -> int:
    """Bytes the call allocates at its peak, beyond what existed before it."""
    if device.type == "cuda":
        synchronize(device)
        torch.cuda.reset_peak_memory_stats(device)
        before = torch.cuda.memory_allocated(device)
        fn()
        synchronize(device)
        return torch.cuda.max_memory_allocated(device) - before
    from torch.profiler import ProfilerActivity, profile

    with profile(activities=[ProfilerActivity.CPU], profile_memory=True) as prof:
        fn()
    running = peak = 0
    for event in sorted(prof.events(), key=lambda e: e.time_range.start):
        running += event.self_cpu_memory_usage
        peak = max(peak, running)
    return peak


def best_seconds(fn, device: torch.device, repeats: int) -> float:
    fn()
    times = []
    for _ in range(repeats):
        synchronize(device)
        start = time.perf_counter()
        fn()
        synchronize(device)
        times.append(time.perf_counter() - start)
    return min(times)   # the least disturbed run: this machine is shared, its load only ever adds time


def measure(name: str, fn, device, repeats: int) -> dict:
    with torch.no_grad():
        row = {"name": name, "ms": 1e3 * best_seconds(fn, device, repeats), "peak_mb": peak_bytes(fn, device) / 2**20}
    print(f"  {name:44s} {row['ms']:10.2f} ms   peak {row['peak_mb']:9.1f} MiB", flush=True)
    return row


def selective_inputs(c: int, h: int, w: int, p: int, device):
    q = torch.rand(1, c, h, w, device=device) + 0.1
    k = torch.rand(1, c, h, w, device=device) + 0.1
    v = torch.randn(1, c, h, w, device=device)
    coords = base_coordinates(h, w, p, like=q) + torch.randn(1, h, w, p, 2, device=device)
    return q, k, v, coords


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--device", default="auto")
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--channels", type=int, default=128)
    ap.add_argument("--height", type=int, default=60)
    ap.add_argument("--width", type=int, default=107)
    args = ap.parse_args(argv)
    if min(args.repeats, args.threads, args.channels, args.height, args.width) < 1:
        raise InputError("--repeats, --threads, --channels, --height, --width must be positive")
    torch.set_num_threads(args.threads)
    device = pick_device(args.device)
    torch.manual_seed(0)
    c, h, w = args.channels, args.height, args.width
    n = h * w
    print(f"device {device} ({torch.cuda.get_device_name(device) if device.type == 'cuda' else 'CPU'}), "
          f"threads {torch.get_num_threads()}, C = {c}, F2 {h}x{w} (N = {n}), float32")

    print("\n1. cross-frame attention between two F2 maps")
    q, k, v, _ = selective_inputs(c, h, w, 4, device)
    dense = measure("dense softmax cross-attention (N x N)", lambda: dense_cross_attention(q, k, v), device,
                    args.repeats)
    for p in (4, 9, 16):
        q, k, v, coords = selective_inputs(c, h, w, p, device)
        row = measure(f"selective cross-attention P = {p}",
                      lambda: selective_cross_attention(q, k, v, coords), device, args.repeats)
        print(f"  {'':44s} {dense['ms'] / row['ms']:9.1f}x faster, {dense['peak_mb'] / row['peak_mb']:6.1f}x "
              f"less peak memory than dense")

    print("\n   N-scaling of selective cross-attention (P = 4), sizes timed in turn, best of "
          f"{2 * args.repeats} rounds; dense for comparison")
    calls = {}
    for factor in (1, 2, 4):
        q, k, v, coords = selective_inputs(c, h * factor, w, 4, device)
        calls[factor] = (lambda q=q, k=k, v=v, coords=coords: selective_cross_attention(q, k, v, coords))
    best = {factor: float("inf") for factor in calls}
    with torch.no_grad():
        for _ in range(2 * args.repeats):        # interleaved, so a burst of load hits every size alike
            for factor, fn in calls.items():
                best[factor] = min(best[factor], best_seconds(fn, device, 1))
        memory = {factor: peak_bytes(fn, device) / 2**20 for factor, fn in calls.items()}
    for factor in calls:
        print(f"  {f'selective P = 4, N = {h * factor * w} ({factor}N)':44s} {1e3 * best[factor]:10.2f} ms   "
              f"peak {memory[factor]:9.1f} MiB   time x{best[factor] / best[1]:.2f}, "
              f"memory x{memory[factor] / memory[1]:.2f} for x{factor} pixels")
    q, k, v, _ = selective_inputs(c, 2 * h, w, 4, device)
    dense2 = measure(f"dense, N = {2 * n} (2N)", lambda: dense_cross_attention(q, k, v), device, args.repeats)
    print(f"  {'':44s} time x{dense2['ms'] / dense['ms']:.2f}, memory x{dense2['peak_mb'] / dense['peak_mb']:.2f} "
          f"for x2 pixels")

    print("\n2. DCNv3 (3x3 points, 8 groups, with its projections) vs a plain 3x3 convolution")
    x = torch.randn(1, c, h, w, device=device)
    dcn = DCNv3(c, 3, group=8).to(device).eval()
    with torch.no_grad():   # a trained-like state: non-zero offsets
        dcn.offset.weight.normal_(0, 0.01)
    conv = nn.Conv2d(c, c, 3, padding=1).to(device).eval()
    r_dcn = measure("DCNv3", lambda: dcn(x), device, args.repeats)
    r_conv = measure("conv 3x3", lambda: conv(x), device, args.repeats)
    print(f"  {'':44s} DCNv3 / conv: time x{r_dcn['ms'] / r_conv['ms']:.2f}, "
          f"memory x{r_dcn['peak_mb'] / r_conv['peak_mb']:.2f}; params {sum(p.numel() for p in dcn.parameters()):,}"
          f" vs {sum(p.numel() for p in conv.parameters()):,}")

    print("\n3. linear attention vs softmax attention (self-attention over the F2 map, 1 head of C)")
    tokens = [torch.randn(1, 1, n, c, device=device) for _ in range(3)]
    r_lin = measure("linear attention (elu+1, K^T V first)", lambda: linear_attention(*tokens), device,
                    args.repeats)
    r_soft = measure("softmax attention (N x N)", lambda: softmax_attention(*tokens), device, args.repeats)
    print(f"  {'':44s} linear is {r_soft['ms'] / r_lin['ms']:.1f}x faster, "
          f"{r_soft['peak_mb'] / r_lin['peak_mb']:.1f}x less peak memory")
    tokens2 = [torch.randn(1, 1, 2 * n, c, device=device) for _ in range(3)]
    r_lin2 = measure(f"linear attention, N = {2 * n} (2N)", lambda: linear_attention(*tokens2), device,
                     args.repeats)
    print(f"  {'':44s} time x{r_lin2['ms'] / r_lin['ms']:.2f} for x2 pixels")
    return 0


if __name__ == "__main__":
    run_cli(main)
