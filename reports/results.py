"""Reading: every result file of one experiment, found through the plan's path templates (workflow/plan.py
Layout), into one ``Measured``; and the tables that only arrange our own results (cross, complexity,
convergence, per-class IoU).

Nothing here judges a number against a paper (reports/compare.py) or formats one (reports/latex.py).
A result file that is missing is not an error (its cells read "not run", so a partial experiment still
tables); one that is not valid JSON is, naming the file.
"""
from __future__ import annotations

import json
import math
import statistics
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from common.cli import InputError
from engine.convergence import last_quarter
from metrics.info import METRICS
from reports.stats import summary
from workflow.plan import Layout

Key = tuple[str, str, str]          # (dataset, backbone, variant)
VAL_COLUMN = "val_miou"             # train_log.csv: the periodic validation mIoU (engine/convergence.py)


def _read(path: str | Path) -> dict | None:
    path = Path(path)
    try:
        return json.loads(path.read_text())
    except FileNotFoundError:
        return None
    except json.JSONDecodeError as e:
        raise InputError(f"{path}: not valid JSON ({e.msg})") from None


@dataclass
class Measured:
    """Every result of one experiment, keyed the way the tables look them up."""
    metrics: dict[Key, dict[str, list[float]]] = field(default_factory=dict)  # key -> metric key -> % per seed
    flow: dict[Key, str] = field(default_factory=dict)                        # TC flow source of the run
    complexity: dict[tuple[str, str, str, str], dict[str, Any]] = field(default_factory=dict)  # (*key, "HxW")
    fps: dict[Key, dict[str, Any]] = field(default_factory=dict)              # fps, device, threads, resolution
    devices: set[str] = field(default_factory=set)
    per_class: dict[Key, list[list[float]]] = field(default_factory=dict)     # key -> per seed: IoU % per class
    curves: dict[tuple[Key, int], list[tuple[int, float]]] = field(default_factory=dict)  # val mIoU % curve
    iterations: dict[tuple[Key, int], int] = field(default_factory=dict)     # (key, seed) -> schedule length
    pretrain: dict[tuple[str, str], dict[str, Any]] = field(default_factory=dict)  # (dataset, backbone) -> curve

    def runs_of(self, variant: str) -> list[Key]:
        return [k for k in self.metrics if k[2] == variant]

    def values(self, key: Key, metric: str) -> list[float]:
        """One percent value per seed of ``metric`` (a metrics.json key) for the run ``key``."""
        return self.metrics.get(key, {}).get(metric, [])

    def convergence(self, key: Key, seed: int) -> dict | None:
        """engine.convergence.last_quarter of one run's validation curve (None without a curve)."""
        curve, iters = self.curves.get((key, seed)), self.iterations.get((key, seed))
        return last_quarter(curve, iters) if curve and iters else None


def read_curve(log: Path) -> tuple[list[tuple[int, float]], int | None]:
    """(iteration, val mIoU %) points of a train_log.csv and its last iteration ([] / None if absent)."""
    if not log.exists():
        return [], None
    df = pd.read_csv(log)
    if df.empty or "iteration" not in df:
        return [], None
    points = []
    if VAL_COLUMN in df:
        sub = df[df[VAL_COLUMN].notna()]
        points = [(int(i), 100 * float(v)) for i, v in zip(sub["iteration"], sub[VAL_COLUMN])]
    return points, int(df["iteration"].max())


def run_seeds(plan: dict, run: dict) -> list[int]:
    """The seeds one run of the plan is trained on (its group's, else the experiment's)."""
    return list(run.get("seeds") or plan["seeds"])


def collect(plan: dict, results: str | Path) -> Measured:
    m = Measured()
    layout = Layout(Path(results) / plan["experiment"])
    for r in plan["runs"]:
        key = (r["dataset"], r["backbone"], r["variant"])
        for seed in run_seeds(plan, r):
            js = _read(layout.path("metrics", seed=seed, **r))
            curve, iters = read_curve(Path(layout.path("train_log", seed=seed, **r)))
            if js is None:
                if curve:
                    m.curves[(key, seed)], m.iterations[(key, seed)] = curve, iters
                continue
            per_metric = m.metrics.setdefault(key, {})
            for metric in METRICS.values():
                v = js.get(metric.key, js.get(metric.fallback_key) if metric.fallback_key else None)
                if isinstance(v, (int, float)) and math.isfinite(v):
                    per_metric.setdefault(metric.key, []).append(metric.percent(v))
            miou = METRICS["mIoU"]
            final = js.get(miou.key, js.get(miou.fallback_key))
            if iters and isinstance(final, (int, float)) and math.isfinite(final):
                final = miou.percent(final)
                # the final model, scored by engine.validate (its in-training point, if any, is the same)
                curve = [p for p in curve if p[0] != iters] + [(iters, final)]
            if curve:
                m.curves[(key, seed)], m.iterations[(key, seed)] = curve, iters
            if isinstance(js.get("tc_flow"), str):
                m.flow[key] = js["tc_flow"]
            if isinstance(js.get("iou_per_class"), list):
                m.per_class.setdefault(key, []).append(
                    [math.nan if v is None else 100 * float(v) for v in js["iou_per_class"]])
    for job in plan.get("pretrain", []):
        curve, iters = read_curve(Path(layout.path("pretrain", **job)) / "train_log.csv")
        if curve:
            m.pretrain[(job["dataset"], job["backbone"])] = {"variant": job["variant"], "curve": curve,
                                                               "iterations": iters}
    for c in plan["counts"]:
        js = _read(layout.path("complexity", **c))
        if js is None:
            continue
        m.complexity[(c["dataset"], c["backbone"], c["variant"], f"{c['height']}x{c['width']}")] = {
            "params": js["params"] / 1e6,            # millions, as the papers print
            "gflops": js.get("gflops"),
            "gflops_paper": js.get("gflops_paper_convention"),
            "params_train_only": (js.get("params_train_only") or 0) / 1e6,
        }
    for r in plan["runs"]:
        js = _read(layout.path("fps", **r))
        if js is None:
            continue
        dev = str(js.get("device_name") or js.get("device") or "?")
        m.fps[(r["dataset"], r["backbone"], r["variant"])] = {
            "fps": js.get("fps"), "device": dev, "threads": js.get("threads"), "resolution": js.get("resolution"),
            "spread": fps_spread(js)}
        m.devices.add(dev)
    return m


def fps_spread(fps_json: dict) -> float | None:
    """IQR / median of an engine.fps timing; None for a file without quartiles."""
    q1, q3, fps = fps_json.get("fps_q1"), fps_json.get("fps_q3"), fps_json.get("fps")
    return (q3 - q1) / fps if None not in (q1, q3, fps) and fps > 0 else None


def mean_std(values: list[float]) -> tuple[float | None, float | None, int]:
    """(mean, std over seeds or None for one seed, number of seeds)."""
    if not values:
        return None, None, 0
    return statistics.fmean(values), (statistics.stdev(values) if len(values) > 1 else None), len(values)


def measured_convergence(plan: dict, meas: Measured, key: Key) -> list[dict]:
    """engine.convergence.last_quarter of every seed of the run ``key`` whose curve allows a judgement."""
    seeds = {s for r in plan["runs"] if (r["dataset"], r["backbone"], r["variant"]) == key for s in run_seeds(plan, r)}
    return [c for s in sorted(seeds) for c in [meas.convergence(key, s)] if c and c["change"] is not None]


def converged_seeds(conv: list[dict]) -> str | None:
    """"k/n": k of the n judged seeds converged; None where no seed was judged (no curve along the schedule)."""
    return f"{sum(c['converged'] for c in conv)}/{len(conv)}" if conv else None


def class_info(plan: dict, dataset: str) -> tuple[list[str], set[str]]:
    """(class names, background class names) of a dataset of the plan: the reader's names, and the
    generator's background classes for a generated set (every other class is an object). Without the data:
    "class k" and no background."""
    try:
        from videos.datasets import open_dataset

        ds = open_dataset(dataset, plan["roots"][dataset], plan["evaluate"].get("split", "val"))
        return list(ds.class_names), set(getattr(ds, "meta", {}).get("background_classes", []))
    except Exception:   # noqa: BLE001 - no data at hand (a dry experiment): generic names
        from videos.info import dataset_info

        return [f"class {k}" for k in range(dataset_info(dataset).num_classes)], set()


def gflops_key(plan: dict) -> str:
    """Which GFLOPs count the tables print (experiment report/gflops): fvcore's or the papers' convention."""
    return "gflops_paper" if plan["report"].get("gflops") == "paper" else "gflops"


# ---------------------------------------------------------------------------------------------- our tables
def cross_table(plan: dict, meas: Measured, variants: dict) -> pd.DataFrame:
    """Every trained method x dataset x metric, with params/GFLOPs at the dataset's test size and FPS."""
    recs = []
    for r in plan["runs"]:
        key = (r["dataset"], r["backbone"], r["variant"])
        h, w = plan["test_sizes"][r["dataset"]]
        comp = meas.complexity.get((*key, f"{h}x{w}"), {})
        v = variants.get(r["variant"])
        rec = {"method": v.label if v else r["variant"], "variant": r["variant"], "family": v.family if v else "",
               "backbone": r["backbone"], "dataset": r["dataset"], "resolution": f"{h}x{w}"}
        for metric in METRICS.values():
            sm = summary(meas.values(key, metric.key))
            rec[metric.name], rec[f"{metric.name} std"], rec[f"{metric.name} ci95"] = sm.mean, sm.std, sm.half
        rec["seeds"] = len(meas.values(key, METRICS["mIoU"].key))
        conv = measured_convergence(plan, meas, key)
        rec["converged"] = converged_seeds(conv)
        rec["last-quarter change"] = max((c["change"] for c in conv), key=abs) if conv else None
        rec["Params"] = comp.get("params")
        rec["GFLOPs"] = comp.get(gflops_key(plan))
        rec["FPS"] = meas.fps.get(key, {}).get("fps")
        rec["TC flow"] = meas.flow.get(key)
        recs.append(rec)
    return pd.DataFrame(recs)


COMPLEXITY_COLUMNS = {"Params": "params", "Params train-only": "params_train_only", "GFLOPs fvcore": "gflops",
                      "GFLOPs paper convention": "gflops_paper"}


def complexity_table(plan: dict, meas: Measured, variants: dict) -> pd.DataFrame:
    """Every params/GFLOPs count of the experiment (the papers' backbones and resolutions)."""
    recs = []
    for c in plan["counts"]:
        res = f"{c['height']}x{c['width']}"
        got = meas.complexity.get((c["dataset"], c["backbone"], c["variant"], res), {})
        v = variants.get(c["variant"])
        recs.append({"method": v.label if v else c["variant"], "variant": c["variant"], "backbone": c["backbone"],
                     "dataset": c["dataset"], "resolution": res,
                     **{col: got.get(k) for col, k in COMPLEXITY_COLUMNS.items()}})
    return pd.DataFrame(recs)


def convergence_table(plan: dict, meas: Measured, variants: dict) -> pd.DataFrame:
    """One row per trained run and seed (and per pretrained encoder): the validated mIoU curve, the change
    over the last quarter of the schedule and whether it is below engine.convergence.TOLERANCE."""
    recs = []

    def record(stage, method, variant, dataset, backbone, seed, curve, iters):
        c = last_quarter(curve, iters) if curve and iters else {"from": None, "points": 0, "change": None,
                                                                 "range": None, "converged": None}
        recs.append({"stage": stage, "method": method, "variant": variant, "backbone": backbone, "dataset": dataset,
                     "seed": seed, "iterations": iters, "final mIoU": curve[-1][1] if curve else None,
                     "last quarter from": c["from"], "points in last quarter": c["points"],
                     "last-quarter change": c["change"], "last-quarter range": c["range"],
                     "converged": c["converged"],
                     "curve": " ".join(f"{it}:{v:.2f}" for it, v in curve)})

    for (ds, bb), pre in meas.pretrain.items():
        v = variants.get(pre["variant"])
        record("pretrain", f"{v.label if v else pre['variant']} (pretext)", pre["variant"], ds, bb, 0,
               pre["curve"], pre["iterations"])
    for r in plan["runs"]:
        key = (r["dataset"], r["backbone"], r["variant"])
        v = variants.get(r["variant"])
        for seed in run_seeds(plan, r):
            record("train", v.label if v else r["variant"], r["variant"], r["dataset"], r["backbone"], seed,
                   meas.curves.get((key, seed), []), meas.iterations.get((key, seed)))
    return pd.DataFrame(recs)


def per_class_table(plan: dict, meas: Measured, variants: dict) -> pd.DataFrame:
    """Per trained run: every class's IoU (%), mean and 95% half-width over seeds, and n. Classes the
    generator draws as background are marked in the column ``object`` of the long form."""
    recs = []
    for r in plan["runs"]:
        key = (r["dataset"], r["backbone"], r["variant"])
        seeds = meas.per_class.get(key)
        if not seeds:
            continue
        names, background = class_info(plan, r["dataset"])
        v = variants.get(r["variant"])
        for k, name in enumerate(names):
            sm = summary([s[k] for s in seeds if k < len(s)])
            recs.append({"method": v.label if v else r["variant"], "variant": r["variant"], "backbone": r["backbone"],
                         "dataset": r["dataset"], "class": name, "object": name not in background,
                         "IoU": sm.mean, "IoU std": sm.std, "IoU ci95": sm.half, "seeds": sm.n})
    return pd.DataFrame(recs)


def load_inputs(experiment: str, results: str | Path, reported_csv: str | None):
    """What every report CLI reads: the experiment's plan, its variant registry, the papers' numbers and
    our measured results. A missing results folder, a bad plan or registry is an InputError naming it."""
    from models.registry import load_variants
    from reports import paper as P
    from workflow.plan import REPO_ROOT, PlanError, load_plan

    if not Path(results).is_dir():
        raise InputError(f"{results}: results folder not found (--results: where the pipeline wrote "
                         "results/<experiment>/)")
    try:
        plan = load_plan(experiment, results)
    except PlanError as e:
        raise InputError(str(e)) from None
    vf = Path(plan["variants_file"])
    variants = load_variants(vf if vf.is_absolute() else REPO_ROOT / vf)
    return plan, variants, P.load(reported_csv, variants), collect(plan, results)
