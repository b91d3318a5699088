"""Where the time of a pipeline run went: jobs and job-minutes per stage.

    python -m benchmarks.pipeline_time [--results results --experiment default]

Reads every Snakemake ``benchmark:`` record of the run (results/<experiment>/benchmarks/<stage>/<job>.tsv,
the job's wall seconds ``s``) and prints one line per stage, its slowest jobs, and the totals. Every job of
the CPU pipeline runs one torch thread, so on a machine whose cores run nothing else a job's wall time is
its CPU time; on a shared machine it overstates what the job needs. (Snakemake's own ``cpu_time`` column
samples the process tree every few seconds and misses most of a short job, so it is not used.)
"""
from __future__ import annotations

import argparse
import csv
from pathlib import Path

from common.cli import InputError, run_cli


def read(results: Path, experiment: str) -> dict[str, list[tuple[str, float]]]:
    """stage -> [(job, wall s)] from the run's benchmark files."""
    root = results / experiment / "benchmarks"
    if not root.is_dir():
        raise InputError(f"{root}: no benchmark records (run the pipeline first)")
    stages: dict[str, list[tuple[str, float]]] = {}
    for tsv in sorted(root.rglob("*.tsv")):
        rows = list(csv.DictReader(tsv.open(), delimiter="\t"))
        if not rows:
            continue
        stage = tsv.relative_to(root).parts[0]
        job = str(tsv.relative_to(root / stage).with_suffix(""))
        stages.setdefault(stage, []).append((job, float(rows[-1]["s"])))
    return stages


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m benchmarks.pipeline_time", description=__doc__.splitlines()[0])
    p.add_argument("--results", default="results")
    p.add_argument("--experiment", default="default")
    p.add_argument("--slowest", type=int, default=3, help="jobs listed per stage")
    a = p.parse_args(argv)
    stages = read(Path(a.results), a.experiment)
    total_jobs, total_wall = 0, 0.0
    print(f"{'stage':<12} {'jobs':>5} {'job-min':>8}  slowest (s)")
    for stage, jobs in sorted(stages.items(), key=lambda kv: -sum(j[1] for j in kv[1])):
        wall = sum(j[1] for j in jobs)
        slow = ", ".join(f"{name} {s:.0f}" for name, s in sorted(jobs, key=lambda j: -j[1])[:a.slowest])
        print(f"{stage:<12} {len(jobs):>5} {wall / 60:>8.1f}  {slow}")
        total_jobs, total_wall = total_jobs + len(jobs), total_wall + wall
    print(f"{'total':<12} {total_jobs:>5} {total_wall / 60:>8.1f}")
    return 0


if __name__ == "__main__":
    run_cli(main)
