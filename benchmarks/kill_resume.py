"""kill -9 the pipeline at several points, run the README's command again, compare the tables.

    python -m benchmarks.kill_resume [--experiment smoke] [--work DIR] [--points checkpoint,evaluate,report,main]

Runs the experiment once uninterrupted (the reference), then once per kill point: the same command
(`snakemake --cores 2 tables --config experiment=... results=...`, started in its own session), killed with
SIGKILL when the point is reached, then the same command again. Prints, per point, where it was killed, what
the rerun did (exit status, jobs run) and whether every table CSV equals the reference's. FPS columns and
rows are left out of the comparison: two runs never time alike (the tables say so in their captions).

Kill points: ``checkpoint`` (a training job has written checkpoint.pt, not yet model.pt: the whole process
group, as a crashed machine), ``evaluate`` (a prediction folder is being written), ``report`` (the report
step has started), ``main`` (only the snakemake process, at the first checkpoint: its jobs run on as
orphans, as when a login shell dies).
"""
from __future__ import annotations

import argparse
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pandas as pd

REPO = Path(__file__).resolve().parents[1]


def command(experiment: str, results: Path) -> list[str]:
    exe = shutil.which("snakemake") or sys.executable
    head = [exe] if exe.endswith("snakemake") else [exe, "-m", "snakemake"]
    return head + ["--cores", "2", "tables", "--config", f"experiment={experiment}", f"results={results}"]


def reached(point: str, out: Path) -> bool:
    """Whether the run in ``out`` (results/<experiment>) has reached the kill point."""
    if point in ("checkpoint", "main"):
        return any(not (c.parent / "model.pt").exists() for c in out.glob("runs/*/*/*/*/checkpoint.pt"))
    if point == "evaluate":
        return any(out.glob("runs/*/*/*/*/.pred.tmp.*"))
    if point == "report":
        return (out / "logs" / "report" / "tables.log").exists() and not (out / "tables" / "cross.csv").exists()
    raise ValueError(point)


def run_to(point: str, cmd: list[str], out: Path, timeout: float = 1200) -> str:
    """Start the run, SIGKILL it at ``point``; returns what was killed."""
    proc = subprocess.Popen(cmd, cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            start_new_session=True)
    start = time.time()
    while not reached(point, out):
        if proc.poll() is not None:
            return f"finished before {point} (exit {proc.returncode})"
        if time.time() - start > timeout:
            os.killpg(proc.pid, signal.SIGKILL)
            return "timed out"
        time.sleep(0.02)
    if point == "main":
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
        what = "snakemake alone (its jobs ran on)"
    else:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
        what = "the whole process group"
    return f"{what} after {time.time() - start:.1f} s"


def tables(out: Path) -> dict[str, pd.DataFrame]:
    frames = {}
    for csv in sorted((out / "tables").glob("*.csv")):
        df = pd.read_csv(csv, keep_default_na=False, dtype=str)
        df = df[[c for c in df.columns if "FPS" not in c]]
        if "column" in df.columns:
            df = df[~df["column"].str.contains("FPS")]
        frames[csv.name] = df.reset_index(drop=True)
    return frames


def compare(a: dict[str, pd.DataFrame], b: dict[str, pd.DataFrame]) -> str:
    if set(a) != set(b):
        return f"different files: {sorted(set(a) ^ set(b))}"
    differ = [name for name in a if not a[name].equals(b[name])]
    return "identical" if not differ else f"differ: {', '.join(differ)}"


def rerun(cmd: list[str]) -> tuple[int, str]:
    res = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True)
    text = res.stdout + res.stderr
    m = re.search(r"Job stats:\n.*?\n-+\s+-+\n(.*?)\ntotal\s+(\d+)", text, re.S)
    jobs = "nothing to do" if m is None else (f"{m.group(2)} jobs (" + ", ".join(
        f"{line.split()[0]} {line.split()[1]}" for line in m.group(1).splitlines() if line.strip()) + ")")
    if res.returncode:
        jobs += " | " + " ".join(text.strip().splitlines()[-3:])
    return res.returncode, jobs


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m benchmarks.kill_resume", description=__doc__.split("\n\n")[0])
    p.add_argument("--experiment", default="smoke")
    p.add_argument("--work", default=None, help="folder for the result trees (default: a new temporary one)")
    p.add_argument("--points", default="checkpoint,evaluate,report,main")
    args = p.parse_args(argv)
    work = Path(args.work or tempfile.mkdtemp(prefix="vss-kill-"))
    exp = Path(args.experiment).stem
    t0 = time.time()
    ref = subprocess.run(command(args.experiment, work / "reference"), cwd=REPO, capture_output=True, text=True)
    if ref.returncode:
        print(ref.stderr[-3000:], file=sys.stderr)
        return 1
    print(f"reference run: {time.time() - t0:.0f} s, {len(tables(work / 'reference' / exp))} tables ({work})")
    reference = tables(work / "reference" / exp)
    ok = True
    for point in args.points.split(","):
        results = work / point
        cmd = command(args.experiment, results)
        killed = run_to(point, cmd, results / exp)
        time.sleep(1)
        rc, jobs = rerun(cmd)
        if point == "main" and rc:   # the orphans may still hold their outputs: once more, as a user would
            time.sleep(5)
            rc, again = rerun(cmd)
            jobs += f"; again: exit {rc}, {again}"
        verdict = compare(reference, tables(results / exp)) if rc == 0 else "no tables"
        ok &= rc == 0 and verdict == "identical"
        print(f"{point}: killed {killed}; rerun exit {rc}, {jobs}; tables vs reference: {verdict}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
