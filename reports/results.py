"""Reading: every result file of one experiment, found through the plan's path templates (workflow/plan.py
Layout), into one ``Measured``; and the two tables that only arrange our own results (cross, complexity).

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
from metrics.info import METRICS
from workflow.plan import Layout

Key = tuple[str, str, str]          # (dataset, backbone, variant)


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

    def runs_of(self, variant: str) -> list[Key]:
        return [k for k in self.metrics if k[2] == variant]

    def values(self, key: Key, metric: str) -> list[float]:
        """One percent value per seed of ``metric`` (a metrics.json key) for the run ``key``."""
        return self.metrics.get(key, {}).get(metric, [])


def collect(plan: dict, results: str | Path) -> Measured:
    m = Measured()
    layout = Layout(Path(results) / plan["experiment"])
    for r in plan["runs"]:
        key = (r["dataset"], r["backbone"], r["variant"])
        for seed in plan["seeds"]:
            js = _read(layout.path("metrics", seed=seed, **r))
            if js is None:
                continue
            per_metric = m.metrics.setdefault(key, {})
            for metric in METRICS.values():
                v = js.get(metric.key, js.get(metric.fallback_key) if metric.fallback_key else None)
                if isinstance(v, (int, float)) and math.isfinite(v):
                    per_metric.setdefault(metric.key, []).append(metric.percent(v))
            if isinstance(js.get("tc_flow"), str):
                m.flow[key] = js["tc_flow"]
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
            mean, std, _ = mean_std(meas.values(key, metric.key))
            rec[metric.name], rec[f"{metric.name} std"] = mean, std
        rec["seeds"] = len(meas.values(key, METRICS["mIoU"].key))
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
