"""How long would a run need to converge? Train an experiment's runs at other schedule lengths and print, per
run, the final validation mIoU, its last-quarter change (engine/convergence.py) and the CPU time it took.

    python -m benchmarks.schedule_probe --variants segformer sdcpc --iters 240 480 960 [--full-frames]
        [--seeds 0] [--experiment default] [--results results] [--out schedule_probe] [--validate-every K]

Each probe is the experiment's own run (its data, the encoder its backbone starts from, the variant's resolved
training settings: workflow/plan.py ``train_args``) with only the schedule length changed, and with
``--full-frames`` the crop set to the whole test-size frame. engine.train is started as the pipeline starts
it (one thread) and validates about twelve times along the schedule, so four points fall in the last quarter.
Each probe keeps its folder under ``--out``: an interrupted probe resumes from its last checkpoint (a
quarter of its schedule), a finished one is read again (its CPU time then reads ``earlier``).
The experiment's data and encoders must exist (run the pipeline first). docs/reproduction-notes.md ("How
long the main rows would need") has its figures for the default.
"""
from __future__ import annotations

import argparse
import os
import resource
import shlex
import subprocess
import sys
from pathlib import Path

from common.cli import InputError, run_cli

POINTS = 12     # validations along a probe's schedule unless --validate-every says


def probe_command(plan, variant: str, backbone: str, dataset: str, seed: int, iters: int, out: Path,
                  validate_every: int, crop: tuple[int, int] | None) -> list[str]:
    """engine.train's command line for one probe: the pipeline's flags, then the probe's over them."""
    cmd = [sys.executable, "-m", "engine.train", "--variant", variant, "--backbone", backbone,
           "--dataset", dataset, "--root", plan.roots[dataset], "--out", str(out), "--seed", str(seed),
           *shlex.split(plan.train_args(variant, backbone)),
           "--iters", str(iters), "--checkpoint-every", str(max(1, iters // 4)),
           "--validate-every", str(validate_every), "--validate-final", "true", "--progress", "none"]
    return cmd + (["--crop", f"[{crop[0]}, {crop[1]}]"] if crop else [])


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m benchmarks.schedule_probe", description=__doc__.splitlines()[0])
    p.add_argument("--variants", nargs="+", required=True, help="trained variants of the experiment")
    p.add_argument("--iters", nargs="+", type=int, required=True, help="schedule lengths to probe")
    p.add_argument("--seeds", nargs="+", type=int, default=[0])
    p.add_argument("--full-frames", action="store_true", help="train on the whole test-size frame, not the crop")
    p.add_argument("--validate-every", type=int, default=None, help=f"default: iters / {POINTS}")
    p.add_argument("--experiment", default="default")
    p.add_argument("--results", default="results")
    p.add_argument("--out", default="schedule_probe", help="probe folders (OUT/<variant>/<iters>[-full]/seed<S>)")
    args = p.parse_args(argv)
    if min(args.iters) < 1:
        raise InputError(f"--iters must be positive, got {min(args.iters)}")

    from engine.convergence import last_quarter
    from reports.results import read_curve
    from workflow.plan import Plan, PlanError

    try:
        plan = Plan({"experiment": args.experiment, "results": args.results})
    except PlanError as e:
        raise InputError(str(e)) from None
    runs = {r.variant: r for r in plan.runs}
    for v in args.variants:
        if v not in runs:
            raise InputError(f"experiment '{plan.experiment}' trains no variant '{v}' (it trains "
                             f"{', '.join(sorted(runs))})")
    for run in map(runs.get, args.variants):   # its data and the weights it starts from
        for path in filter(None, (plan.roots[run.dataset], plan.pretrained.get(run.backbone))):
            if not Path(path).exists():
                raise InputError(f"{path}: missing (run `snakemake --cores 8 tables --config "
                                 f"experiment={plan.experiment}` first)")

    env = {**os.environ, "VSS_THREADS": "1", "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
    print(f"{'variant':<16} {'backbone':<9} {'seed':>4} {'iters':>6} {'frames':<8} {'mIoU':>6} "
          f"{'change':>7} {'points':>6} {'converged':>9} {'CPU s':>7}")
    for variant in args.variants:
        run = runs[variant]
        crop = plan.test_size(run.dataset) if args.full_frames else None
        for iters in args.iters:
            every = args.validate_every or max(1, iters // POINTS)
            for seed in args.seeds:
                out = Path(args.out) / variant / f"{iters}{'-full' if crop else ''}" / f"seed{seed}"
                cpu = "earlier"     # a probe finished by an earlier call is read, not timed again
                if not (out / "model.pt").exists():
                    out.parent.mkdir(parents=True, exist_ok=True)
                    before = resource.getrusage(resource.RUSAGE_CHILDREN)
                    done = subprocess.run(probe_command(plan, variant, run.backbone, run.dataset, seed, iters,
                                                        out, every, crop),
                                          env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
                    after = resource.getrusage(resource.RUSAGE_CHILDREN)
                    if done.returncode != 0:
                        last = (done.stderr.strip().splitlines() or ["no message"])[-1]
                        raise InputError(f"{out}: engine.train failed ({last})")
                    cpu = f"{after.ru_utime - before.ru_utime + after.ru_stime - before.ru_stime:.1f}"
                curve, last_iter = read_curve(out / "train_log.csv")
                q = last_quarter(curve, last_iter or iters)
                final = curve[-1][1] if curve else float("nan")
                change = "" if q["change"] is None else f"{q['change']:+.2f}"
                print(f"{variant:<16} {run.backbone:<9} {seed:>4} {iters:>6} {'full' if crop else 'crop':<8} "
                      f"{final:6.2f} {change:>7} {q['points']:>6} {str(q['converged']):>9} {cpu:>7}", flush=True)
    return 0


if __name__ == "__main__":
    run_cli(main)
