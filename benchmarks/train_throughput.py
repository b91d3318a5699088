"""Training throughput (clips/s) and data-loading share on the default synthetic set.

    python -m benchmarks.train_throughput [--iters 50 --threads 1 --batch-size 2 --root DIR
                                           --models segformer:mit_b0,sdcpc:mit_b0,msaf:resnet18]

Runs engine.train.train (the same loop the CLI runs: sampling, augmentation, forward, loss, backward,
AdamW, checkpoints) for each model and prints, per model: clips/s over the timed iterations (the first
``--skip`` iterations, which pay one-off allocation costs, are left out), the share of iteration time spent
waiting for data (reading PNGs, augmenting, collating; num_workers 0, so this is the whole loading cost),
and the wall time of the whole run including model building and checkpoint writes (what a pipeline job of
this many iterations costs) with its CPU time beside it (on a shared, loaded machine wall time overstates
what the run needs: with one thread, CPU time is the wall time on an idle core). Without --root the
default synthetic set (`python -m videos.synthetic` defaults) is generated into a temporary folder first.
"""
from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

from common.cli import run_cli

DEFAULT_MODELS = "segformer:mit_b0,sdcpc:mit_b0,msaf:resnet18"


def bench_one(variant: str, backbone: str, root: Path, out: Path, iters: int, threads: int, batch_size: int,
              skip: int, checkpoint_every: int) -> dict:
    from engine.config import resolve_config
    from engine.train import train

    cfg = resolve_config("synthetic", None, {"iters": iters, "threads": threads, "batch_size": batch_size,
                                             "progress": "none", "checkpoint_every": checkpoint_every,
                                             "device": "auto"})
    start, cpu = time.perf_counter(), time.process_time()
    summary = train(cfg, out, variant=variant, backbone=backbone, dataset="synthetic", root=root)
    wall, cpu = time.perf_counter() - start, time.process_time() - cpu
    import csv

    rows = list(csv.DictReader(open(out / "train_log.csv")))[skip:]
    step = sum(float(r["step_time_s"]) for r in rows)
    data = sum(float(r["data_time_s"]) for r in rows)
    return {"model": f"{variant}/{backbone}", "clips_per_s": len(rows) * batch_size / step,
            "data_share": data / step, "ms_per_iter": 1e3 * statistics.median(float(r["step_time_s"]) for r in rows),
            "data_ms_per_iter": 1e3 * statistics.median(float(r["data_time_s"]) for r in rows),
            "wall_s": wall, "cpu_s": cpu, "device": summary["device"], "final_loss": float(rows[-1]["loss_total"])}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m benchmarks.train_throughput", description=__doc__.splitlines()[0])
    p.add_argument("--iters", type=int, default=50)
    p.add_argument("--skip", type=int, default=3, help="first iterations left out of clips/s")
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--batch-size", type=int, default=2)
    p.add_argument("--checkpoint-every", type=int, default=50)
    p.add_argument("--root", default=None, help="an existing synthetic tree (default: generate one)")
    p.add_argument("--models", default=DEFAULT_MODELS, help="comma list of variant:backbone")
    args = p.parse_args(argv)

    with tempfile.TemporaryDirectory(prefix="vss-bench-") as tmp:
        tmp = Path(tmp)
        root = Path(args.root) if args.root else tmp / "synthetic"
        if not args.root:
            from videos.synthetic import main as make_synthetic

            t0 = time.perf_counter()
            make_synthetic(["--out", str(root)])
            print(f"generated the default synthetic set in {time.perf_counter() - t0:.1f} s")
        print(f"{args.iters} iterations, batch {args.batch_size} clips, {args.threads} torch thread(s), "
              f"clips/s over iterations {args.skip + 1}..{args.iters}")
        print(f"{'model':<28}{'clips/s':>9}{'ms/iter':>9}{'data ms':>9}{'data %':>8}{'wall s':>8}{'cpu s':>8}"
              f"{'loss':>8}")
        for spec in args.models.split(","):
            variant, backbone = spec.split(":")
            r = bench_one(variant, backbone, root, tmp / spec.replace(":", "_"), args.iters, args.threads,
                          args.batch_size, args.skip, args.checkpoint_every)
            print(f"{r['model']:<28}{r['clips_per_s']:>9.2f}{r['ms_per_iter']:>9.1f}{r['data_ms_per_iter']:>9.1f}"
                  f"{100 * r['data_share']:>7.1f}%{r['wall_s']:>8.1f}{r['cpu_s']:>8.1f}{r['final_loss']:>8.3f}",
                  flush=True)
    return 0


if __name__ == "__main__":
    run_cli(main)
