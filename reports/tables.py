"""Tables of one experiment beside the papers' numbers, and the cell-by-cell paper diff.

    python -m reports.tables --experiment NAME [--results results] [--reported config/paper/reported.csv]

Writes results/NAME/tables/:
  <table>.csv/.tex   one per paper table (sdcpc_t1, sdcpc_t2, sdcpc_t3, sdcpc_p, msaf_t1, msaf_t2, msaf_t3):
                     the paper's rows and columns, each cell as paper | ours | delta; reported-only rows
                     (methods this suite does not run) marked
  cross.csv/.tex     every trained method x dataset x metric (mIoU, WIoU, mVC8, mVC16, TC, params, GFLOPs, FPS)
  complexity.csv/.tex every params/GFLOPs count of the experiment (the papers' backbones and resolutions)
  paper_diff.csv     one row per (table, row, column): paper, ours, delta, tolerance, status, reason
  tables.tex         standalone LaTeX document that \\input's every fragment
  provenance.json    commit, config hash, inputs
Missing result files are not an error: their cells read "not run" (so a partial experiment still tables).
"""
from __future__ import annotations

import argparse
import json
import math
import statistics
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from common.cli import InputError, run_cli
from common.io import write_json, write_text
from common.provenance import config_hash, git_commit
from reports import paper as P

# "config check": a tick box of the paper (MSAF Table 3) the registry's options agree with: a check of the
# configuration, not a reproduced number, so it is counted apart from "match"
STATUSES = ("match", "deviates", "config check", "not comparable", "not run")
METRIC_KEYS = {  # our metric -> names a metrics.json may use for it (first found wins)
    # mIoU: the run's dataset's own benchmark convention (metrics.evaluate miou_benchmark), else the VSPW one
    "miou": ("miou_benchmark", "miou", "mIoU"), "wiou": ("wiou", "WIoU", "fwiou"), "mvc8": ("mvc8", "mVC8", "mvc_8"),
    "mvc16": ("mvc16", "mVC16", "mvc_16"), "tc": ("tc", "TC"),
}
CROSS_METRICS = [("mIoU", "miou"), ("WIoU", "wiou"), ("mVC8", "mvc8"), ("mVC16", "mvc16"), ("TC", "tc")]
BACKBONE_NAMES = {"mit_b0": "MiT-B0", "mit_b1": "MiT-B1", "mit_b2": "MiT-B2", "mit_b3": "MiT-B3",
                  "mit_b4": "MiT-B4", "mit_b5": "MiT-B5", "resnet18": "ResNet-18", "resnet50": "ResNet-50",
                  "resnet101": "ResNet-101", "pspnet18": "PSPNet-18", "pspnet50": "PSPNet-50",
                  "pspnet101": "PSPNet-101", "hrnet_w18": "HRNet-W18", "hrnet_w48": "HRNet-W48"}
DATASET_NAMES = {"synthetic": "synthetic", "vspw": "VSPW", "cityscapes": "Cityscapes", "camvid": "CamVid"}
COUNTING = "fvcore, 1 multiply-add = 1 FLOP, batch 1, the whole test clip (every frame the method reads)"
# an FPS ratio whose two timings spread (IQR / median, summed) wider than this is flagged: the spread is then
# as wide as the ratio's own tolerance (reports.paper.FPS_RATIO_TOLERANCE) and the verdict means nothing
FPS_SPREAD_LIMIT = 0.15


def miou_caption(dataset: str) -> str:
    """How the dataset's own benchmark averages mIoU (videos.info), for table captions."""
    from metrics.segmentation import MIOU_CONVENTIONS
    from videos.info import DATASETS

    info = DATASETS.get(dataset)
    return MIOU_CONVENTIONS[info.miou_convention if info else "present"][1]


# ---------------------------------------------------------------------------------------------- reading results
def _find(obj: Any, names: tuple[str, ...]) -> Any:
    """First value under any of ``names`` in a (possibly nested) JSON object, case-sensitive then not."""
    if isinstance(obj, dict):
        for n in names:
            if n in obj and not isinstance(obj[n], dict):
                return obj[n]
        low = {k.lower(): v for k, v in obj.items()}
        for n in names:
            if n.lower() in low and not isinstance(low[n.lower()], dict):
                return low[n.lower()]
        for k, v in obj.items():
            if isinstance(v, dict) and k != "provenance":
                got = _find(v, names)
                if got is not None:
                    return got
    return None


def _read(path: Path) -> dict | None:
    try:
        return json.loads(path.read_text())
    except FileNotFoundError:
        return None
    except json.JSONDecodeError as e:
        raise InputError(f"{path}: not valid JSON ({e.msg})") from None


@dataclass
class Measured:
    """Every result of one experiment, keyed the way the tables look them up."""
    metrics: dict[tuple, dict[str, list[float]]] = field(default_factory=dict)   # (ds, bb, v) -> key -> seeds
    flow: dict[tuple, str] = field(default_factory=dict)                        # (ds, bb, v) -> TC flow source
    complexity: dict[tuple, dict[str, float]] = field(default_factory=dict)     # (ds, bb, v, "HxW") -> values
    fps: dict[tuple, dict[str, Any]] = field(default_factory=dict)              # (ds, bb, v) -> fps, device...
    devices: set[str] = field(default_factory=set)

    def runs_of(self, variant: str) -> list[tuple]:
        return [k for k in self.metrics if k[2] == variant]


def collect(plan: dict, results: Path) -> Measured:
    m = Measured()
    root = results / plan["experiment"]
    for r in plan["runs"]:
        key = (r["dataset"], r["backbone"], r["variant"])
        for seed in plan["seeds"]:
            js = _read(root / "runs" / r["dataset"] / r["backbone"] / r["variant"] / f"seed{seed}" / "metrics.json")
            if js is None:
                continue
            for name, aliases in METRIC_KEYS.items():
                v = _find(js, aliases)
                if isinstance(v, (int, float)) and v is not None and math.isfinite(v):
                    # metrics.json holds fractions in [0, 1]; the tables print percent
                    m.metrics.setdefault(key, {}).setdefault(name, []).append(100.0 * v)
            m.metrics.setdefault(key, {})
            flow = _find(js, ("tc_flow", "flow_source", "flow"))
            if isinstance(flow, str):
                m.flow[key] = flow
    for c in plan["counts"]:
        res = f"{c['height']}x{c['width']}"
        js = _read(root / "complexity" / c["dataset"] / c["backbone"] / f"{c['variant']}@{res}.json")
        if js is None:
            continue
        params = _find(js, ("params", "params_inference"))
        m.complexity[(c["dataset"], c["backbone"], c["variant"], res)] = {
            "params": params / 1e6 if params and params > 1e4 else params,  # millions, as the papers print
            "gflops": _find(js, ("gflops", "gflops_fvcore")),
            "gflops_paper": _find(js, ("gflops_paper_convention", "gflops_paper")),
            "params_train_only": (_find(js, ("params_train_only",)) or 0) / 1e6,
        }
    for r in plan["runs"]:
        key = (r["dataset"], r["backbone"], r["variant"])
        js = _read(root / "fps" / r["dataset"] / r["backbone"] / f"{r['variant']}.json")
        if js is None:
            continue
        dev = js.get("device_name") or js.get("provenance", {}).get("device_name") or js.get("device") or "?"
        m.fps[key] = {"fps": _find(js, ("fps",)), "device": str(dev), "threads": _find(js, ("threads",)),
                      "resolution": _find(js, ("resolution",)), "spread": _spread(js)}
        m.devices.add(str(dev))
    return m


def _spread(fps_json: dict) -> float | None:
    """IQR / median of an FPS timing (engine.fps), None for a file without quartiles."""
    q1, q3, fps = fps_json.get("fps_q1"), fps_json.get("fps_q3"), fps_json.get("fps")
    return (q3 - q1) / fps if None not in (q1, q3, fps) and fps > 0 else None


def _mean_std(values: list[float]) -> tuple[float | None, float | None, int]:
    if not values:
        return None, None, 0
    return statistics.fmean(values), (statistics.stdev(values) if len(values) > 1 else 0.0), len(values)


# ---------------------------------------------------------------------------------------------- one cell
@dataclass
class Cell:
    paper: float | None
    ours: float | None = None
    std: float | None = None
    n: int = 0
    status: str = "not run"
    reason: str = ""
    source: str = ""
    decimals: int | None = None   # as the paper printed the value
    unstable_timing: bool = False  # an FPS ratio whose timings spread wider than FPS_SPREAD_LIMIT

    @property
    def delta(self) -> float | None:
        """ours - paper, only where the two may be compared (a delta across datasets or devices means nothing)."""
        if self.paper is None or self.ours is None or self.status not in ("match", "deviates"):
            return None
        return self.ours - self.paper


def _options_mark(variant, column: str) -> float:
    o = variant.options
    if column == "MonA":  # motion alignment with MSAF's decoupled transformer (a vanilla one is "Baseline + TR")
        return float(bool(o.get("motion_alignment")) and o.get("motion_transformer", "decoupled") == "decoupled")
    return float(bool(o.get({"StaA": "state_alignment", "SemA": "semantic_assignment"}[column])))


def measure_cell(row: dict, column: str, info: P.TableInfo, meas: Measured, variants: dict, plan: dict,
                 gflops_key: str = "gflops") -> Cell:
    """Our value of one paper cell, and whether it may be compared."""
    dec = row.get("decimals")
    cell = Cell(paper=row.get("value"), decimals=None if dec is None or pd.isna(dec) else int(dec))
    v, ds, bb, res = row["variant"], row["dataset"], row["backbone"], row["resolution"]
    source, key, _ = P.MEASURE[column]
    if not v:
        cell.reason = f"reported only: {row['row']} is not implemented in this suite"
        return cell
    if v not in variants:
        cell.reason = f"variant {v} is not in the registry {plan.get('variants_file')}"
        return cell
    tol = row.get("tolerance", "")

    def judge(ours, std=None, n=1, src=""):
        cell.ours, cell.std, cell.n, cell.source = ours, std, n, src
        if cell.paper is None:
            cell.status, cell.reason = "not comparable", "no paper value"
            return
        ok = P.within(cell.paper, ours, tol)
        if ok is None:
            cell.status, cell.reason = "not comparable", cell.reason or "no tolerance for this column"
        else:
            cell.status = "match" if ok else "deviates"

    def stand_in(kind: str):
        """Ablation tables: a run of the same variant on another dataset/backbone, shown but never compared."""
        runs = meas.runs_of(v)
        return runs[0] if (info.kind == "ablation" and runs) else None

    if source == "options":
        judge(_options_mark(variants[v], column), src="registry options")
        if cell.status == "match":
            cell.status, cell.reason = "config check", "the registry's options agree with the paper's tick box"
        elif cell.status == "deviates":
            cell.reason = "the registry's options contradict the paper's tick box"
        return cell
    if source == "metrics":
        exact = (ds, bb, v)
        use = exact if meas.metrics.get(exact, {}).get(key) else stand_in("metrics")
        vals = meas.metrics.get(use, {}).get(key, []) if use else []
        if not vals:
            cell.reason = f"no run of {v} on {ds}/{bb} in this experiment"
            return cell
        mean, std, n = _mean_std(vals)
        src = f"{use[0]}/{use[1]}, {n} seed(s)" + (f", TC flow {meas.flow.get(use)}" if key == "tc" else "")
        if use != exact:
            cell.ours, cell.std, cell.n, cell.source = mean, std, n, src
            cell.status = "not comparable"
            cell.reason = f"ours measured on {use[0]}/{use[1]}, the paper on {ds}/{bb}"
            return cell
        if column == "mIoU-T":
            cell.ours, cell.std, cell.n, cell.source = mean, std, n, src
            cell.status, cell.reason = "not comparable", "paper: test split (evaluation server); ours: val split"
            return cell
        judge(mean, std, n, src)
        flow = meas.flow.get(use)
        if key == "tc" and cell.status in ("match", "deviates") and not (flow or "").startswith("learned"):
            # the papers warped with learned flow (FlowNet2, RAFT): TC under another flow is another number
            cell.status = "not comparable"
            cell.reason = f"flow source differs: ours {flow}, the paper a learned flow"
        return cell
    if source == "complexity":
        got = meas.complexity.get((ds, bb, v, res))
        name = {"gflops": gflops_key}.get(key, key)
        if not got or got.get(name) is None:
            cell.reason = f"{v} on {bb} at {res} was not counted in this experiment"
            return cell
        judge(got[name], src=f"{ds} {res}" + (" (paper convention)" if name == "gflops_paper" else " (fvcore)"))
        if cell.status == "deviates":
            hints = []
            if key == "gflops":
                other = "gflops_paper" if name == "gflops" else "gflops"
                if got.get(other) is not None and P.within(cell.paper, got[other], tol):
                    hints.append(f"the {'paper-convention' if other == 'gflops_paper' else 'fvcore'} count "
                                 f"{got[other]:.1f} matches")
            for (d2, b2, v2, r2), g2 in meas.complexity.items():
                if (d2, b2, v2) == (ds, bb, v) and r2 != res and g2.get(name) is not None \
                        and P.within(cell.paper, g2[name], tol):
                    hints.append(f"matches at {r2} ({g2[name]:.1f})")
            cell.reason = "; ".join(hints)
        return cell
    if source == "fps":
        exact = (ds, bb, v)
        use = exact if exact in meas.fps else stand_in("fps")
        if not use or use not in meas.fps:
            cell.reason = f"no FPS of {v} on {ds}/{bb} in this experiment"
            return cell
        f = meas.fps[use]
        cell.ours, cell.n, cell.source = f["fps"], 1, f"{use[0]}/{use[1]} on {f['device']}"
        cell.status = "not comparable"
        cell.reason = f"absolute FPS depends on the device (ours: {f['device']}"
        cell.reason += f", {use[0]}/{use[1]})" if use != exact else ")"
        return cell
    if source == "derived" and key == "fps_ratio":
        base = info.baseline
        pairs = [(k, (k[0], k[1], base)) for k in meas.fps if k[2] == v and (k[0], k[1], base) in meas.fps]
        exact = [p for p in pairs if p[0][:2] == (ds, bb)]
        pick = exact[0] if exact else (pairs[0] if pairs and info.kind == "ablation" else None)
        if not pick:
            cell.reason = f"needs FPS of {v} and {base} on {ds}/{bb}"
            return cell
        ratio = meas.fps[pick[0]]["fps"] / meas.fps[pick[1]]["fps"]
        src = f"{pick[0][0]}/{pick[0][1]} on {meas.fps[pick[0]]['device']}"
        if not exact:
            cell.ours, cell.n, cell.source = ratio, 1, src
            cell.status, cell.reason = "not comparable", f"ours measured on {pick[0][0]}/{pick[0][1]}"
            return cell
        if row.get("not_comparable"):
            cell.ours, cell.n, cell.source = ratio, 1, src
            cell.status, cell.reason = "not comparable", row["not_comparable"]
            return cell
        judge(ratio, src=src)
        if cell.status == "deviates":
            cell.reason = "ratio to the baseline on another device and input size may differ"
        spreads = [meas.fps[k].get("spread") for k in pick]
        if None not in spreads and sum(spreads) > FPS_SPREAD_LIMIT:
            flag = (f"timing spread large: FPS IQR {100 * spreads[0]:.0f}% and {100 * spreads[1]:.0f}% of the "
                    f"median (over {100 * FPS_SPREAD_LIMIT:.0f}% together), the ratio is uncertain")
            cell.reason = "; ".join(r for r in (flag, cell.reason) if r)
            cell.unstable_timing = True
        return cell
    if source == "derived":  # P-sweep gains: ours = metric(variant) - metric(reference), same dataset/backbone
        ref = info.reference
        cands = [k for k in meas.metrics if k[2] == v and meas.metrics[k].get(key)
                 and meas.metrics.get((k[0], k[1], ref), {}).get(key)]
        exact = [k for k in cands if k[:2] == (ds, bb)]
        use = exact[0] if exact else (cands[0] if cands else None)
        if not use:
            cell.reason = f"needs runs of {v} and {ref} on the same dataset/backbone"
            return cell
        gain = statistics.fmean(meas.metrics[use][key]) - statistics.fmean(meas.metrics[(use[0], use[1], ref)][key])
        if exact:
            judge(gain, src=f"{use[0]}/{use[1]}")
        else:
            cell.ours, cell.n, cell.source = gain, 1, f"{use[0]}/{use[1]}"
            cell.status, cell.reason = "not comparable", f"ours measured on {use[0]}/{use[1]}"
        return cell
    cell.status, cell.reason = "not comparable", "descriptive column"
    return cell


# ---------------------------------------------------------------------------------------------- formatting
def tex_escape(text: Any) -> str:
    s = str(text)
    out = []
    for ch in s:
        out.append({"&": r"\&", "%": r"\%", "$": r"\$", "#": r"\#", "_": r"\_", "{": r"\{", "}": r"\}",
                    "~": r"\textasciitilde{}", "^": r"\textasciicircum{}", "\\": r"\textbackslash{}"}.get(ch, ch))
    return "".join(out)


def _fmt(x: float | None, column: str, decimals: int | None = None) -> str:
    if x is None or (isinstance(x, float) and math.isnan(x)):
        return "--"
    if decimals is not None and column not in ("MonA", "StaA", "SemA"):
        return f"{x:.{decimals}f}"
    if column in ("MonA", "StaA", "SemA"):
        return r"\checkmark" if x >= 0.5 else ""
    if column == "Year":
        return f"{x:.0f}"
    if column in ("FPS ratio",):
        return f"{x:.2f}"
    if column in ("FPS",):
        return f"{x:.2f}"
    return f"{x:.1f}" if abs(x) >= 10 or column in ("GFLOPs", "Params") else f"{x:.2f}"


def _best(values: list[float | None], higher: bool | None) -> float | None:
    vals = [v for v in values if v is not None and not (isinstance(v, float) and math.isnan(v))]
    if not vals or higher is None:
        return None
    return max(vals) if higher else min(vals)


def backbone_name(bb: str) -> str:
    return BACKBONE_NAMES.get(bb, bb)


# ---------------------------------------------------------------------------------------------- the tables
def paper_table(table: str, reported: pd.DataFrame, meas: Measured, variants: dict, plan: dict, gflops_key: str):
    """Rows (dicts) of one paper table: paper rows in printed order, then registry variants that ask for a row
    (their ``tables`` key) without a printed one."""
    info = P.TABLES[table]
    sub = reported[reported.table == table]
    cols = P.table_columns(reported, table)
    rows = []
    for rid, cells in sub.groupby(sub.apply(P.row_id, axis=1), sort=False):
        first = cells.iloc[0].to_dict()
        by_col = {r["column"]: r for r in cells.to_dict("records")}
        out = {"row": first["row"], "backbone": first["backbone"], "resolution": first["resolution"],
               "variant": first["variant"], "dataset": first["dataset"], "reported_only": not first["variant"],
               "cells": {}}
        for c in cols:
            spec = by_col.get(c, {**first, "column": c, "value": None, "tolerance": "", "note": ""})
            if P.MEASURE[c][0] == "descriptive":
                out["cells"][c] = Cell(paper=spec["value"], status="not comparable", reason="descriptive column")
                continue
            cell = measure_cell(spec, c, info, meas, variants, plan, gflops_key)
            if spec.get("note"):
                cell.reason = "; ".join(x for x in (cell.reason, f"paper note: {spec['note']}") if x)
            out["cells"][c] = cell
        rows.append(out)
    listed = {r["variant"] for r in rows}
    ref = next((r for r in rows if r["variant"]), None)
    for name, v in variants.items():
        if table in getattr(v, "tables", ()) and name not in listed and ref is not None:
            spec0 = {"row": v.label, "backbone": ref["backbone"], "resolution": ref["resolution"], "variant": name,
                     "dataset": ref["dataset"], "value": None, "tolerance": ""}
            out = {**{k: spec0[k] for k in ("row", "backbone", "resolution", "variant", "dataset")},
                   "reported_only": False, "ours_only": True, "cells": {}}
            for c in cols:
                if P.MEASURE[c][0] == "descriptive":
                    out["cells"][c] = Cell(paper=None, status="not comparable", reason="descriptive column")
                    continue
                cell = measure_cell({**spec0, "column": c}, c, info, meas, variants, plan, gflops_key)
                out["cells"][c] = cell
            rows.append(out)
    return cols, rows


def table_csv(cols, rows) -> pd.DataFrame:
    recs = []
    for r in rows:
        rec = {"method": r["row"], "backbone": r["backbone"], "resolution": r["resolution"], "variant": r["variant"],
               "reported_only": r["reported_only"], "ours_only": r.get("ours_only", False)}
        for c in cols:
            cell = r["cells"][c]
            rec[f"{c} paper"] = cell.paper
            rec[f"{c} ours"] = cell.ours
            rec[f"{c} ours_std"] = cell.std
            rec[f"{c} delta"] = cell.delta
            rec[f"{c} status"] = cell.status
        recs.append(rec)
    return pd.DataFrame(recs)


def _tex_header(cols: list[str], lead: list[str], triple: bool = True) -> list[str]:
    n_lead = len(lead)
    spec = "l" * n_lead + ("rrr" if triple else "r") * len(cols)
    lines = [r"\begin{tabular}{" + spec + "}", r"\toprule"]
    if triple:
        top = [""] * n_lead + [r"\multicolumn{3}{c}{" + tex_escape(c) + "}" for c in cols]
        lines.append(" & ".join(top) + r" \\")
        rules = " ".join(rf"\cmidrule(lr){{{n_lead + 1 + 3 * i}-{n_lead + 3 + 3 * i}}}" for i in range(len(cols)))
        lines.append(rules)
        lines.append(" & ".join(lead + ["Paper", "Ours", r"$\Delta$"] * len(cols)) + r" \\")
    else:
        lines.append(" & ".join(lead + [tex_escape(c) for c in cols]) + r" \\")
    lines.append(r"\midrule")
    return lines


def table_tex(table: str, cols, rows, caption: str, label: str) -> str:
    higher = {c: P.MEASURE[c][2] for c in cols}
    best_paper = {c: _best([r["cells"][c].paper for r in rows], higher[c]) for c in cols}
    best_ours = {c: _best([r["cells"][c].ours for r in rows], higher[c]) for c in cols}
    # ours printed with the paper's precision for that column (most decimals it uses)
    col_dec = {c: max([r["cells"][c].decimals for r in rows if r["cells"][c].decimals is not None], default=None)
               for c in cols}
    lines = [r"\begin{table}[t]", r"\centering", r"\caption{" + caption + "}", r"\label{" + label + "}",
             r"\resizebox{\linewidth}{!}{%"]
    lines += _tex_header(cols, ["Method", "Backbone"])
    for r in rows:
        name = tex_escape(r["row"])
        if r["reported_only"]:
            name = r"\textit{" + name + r"}$^\dagger$"
        elif r.get("ours_only"):
            name = name + r"$^\ast$"
        bb = tex_escape(backbone_name(r["backbone"]))
        if r["resolution"] != (rows[0]["resolution"] if rows else ""):
            bb += f" ({r['resolution']})"
        cells = [name, bb]
        for c in cols:
            cell = r["cells"][c]
            p = _fmt(cell.paper, c, cell.decimals)
            if cell.paper is not None and best_paper[c] is not None and cell.paper == best_paper[c]:
                p = r"\textbf{" + p + "}"
            if cell.ours is None:
                o = "--"
            else:
                o = _fmt(cell.ours, c, col_dec[c])
                if cell.std and cell.n > 1:
                    o += r"{\scriptsize$\pm$" + _fmt(cell.std, c, col_dec[c]) + "}"
                if best_ours[c] is not None and cell.ours == best_ours[c]:
                    o = r"\textbf{" + o + "}"
                if cell.status == "not comparable":
                    o = r"\textcolor{gray}{" + o + "}"
                if cell.unstable_timing:
                    o += r"$^\S$"
            d = "--" if cell.delta is None or c in ("MonA", "StaA", "SemA", "Year") else f"{cell.delta:+.{max(col_dec[c] or 1, 1)}f}"
            cells += [p, o, d]
        lines.append(" & ".join(cells) + r" \\")
    lines += [r"\bottomrule", r"\end{tabular}}", r"\end{table}", ""]
    return "\n".join(lines)


def caption_for(table: str, rows, meas: Measured, plan: dict, gflops_key: str, stamp: str) -> str:
    info = P.TABLES[table]
    used = sorted({c.source.split(",")[0] for r in rows for c in r["cells"].values()
                   if c.ours is not None and c.source and "/" in c.source.split(",")[0].split(" on ")[0]})
    devices = sorted({meas.fps[k]["device"] for k in meas.fps}) or ["not measured"]
    flows = sorted(set(meas.flow.values())) or ["--"]
    res = sorted({r["resolution"] for r in rows})
    seeds = plan["seeds"]
    parts = [
        tex_escape(info.title) + ".",
        f"Paper: {DATASET_NAMES[info.dataset]} at {', '.join(res)}.",
        "Ours: " + (tex_escape("; ".join(used)) if used else "no accuracy run of these rows in this experiment") + ";",
        f"mean $\\pm$ std over seeds {tex_escape(', '.join(map(str, seeds)))}.",
        "Params and GFLOPs counted at the paper's resolution on the paper's dataset "
        f"({tex_escape(COUNTING)}; {'paper convention' if gflops_key == 'gflops_paper' else 'fvcore'} count).",
        f"mIoU: {tex_escape(miou_caption(info.dataset))}, as the {DATASET_NAMES[info.dataset]} benchmark averages it.",
        f"FPS device: {tex_escape(', '.join(devices))}; FPS is the median of timed blocks.",
        f"TC flow: {tex_escape(', '.join(flows))}.",
        r"$\dagger$ reported only (not run by this suite); $\ast$ registry variant without a paper row;"
        r" grey: not comparable (see paper\_diff.csv); $\S$ FPS ratio whose timings spread wider than "
        + f"{100 * FPS_SPREAD_LIMIT:.0f}" + r"\% of the median.",
        r"\texttt{" + tex_escape(stamp) + "}",
    ]
    return " ".join(parts)


def cross_table(plan: dict, meas: Measured, variants: dict, gflops_key: str) -> pd.DataFrame:
    recs = []
    for r in plan["runs"]:
        key = (r["dataset"], r["backbone"], r["variant"])
        h, w = plan["test_sizes"][r["dataset"]]
        comp = meas.complexity.get((*key, f"{h}x{w}"), {})
        v = variants.get(r["variant"])
        rec = {"method": v.label if v else r["variant"], "variant": r["variant"], "family": v.family if v else "",
               "backbone": r["backbone"], "dataset": r["dataset"], "resolution": f"{h}x{w}"}
        for col, key2 in CROSS_METRICS:
            mean, std, n = _mean_std(meas.metrics.get(key, {}).get(key2, []))
            rec[col], rec[f"{col} std"] = mean, std
        rec["seeds"] = len(meas.metrics.get(key, {}).get("miou", []))
        rec["Params"] = comp.get("params")
        rec["GFLOPs"] = comp.get(gflops_key)
        rec["FPS"] = meas.fps.get(key, {}).get("fps")
        rec["TC flow"] = meas.flow.get(key)
        recs.append(rec)
    return pd.DataFrame(recs)


def cross_tex(df: pd.DataFrame, caption: str) -> str:
    cols = [c for c, _ in CROSS_METRICS] + ["Params", "GFLOPs", "FPS"]
    higher = {**{c: True for c, _ in CROSS_METRICS}, "Params": False, "GFLOPs": False, "FPS": True}
    lines = [r"\begin{table}[t]", r"\centering", r"\caption{" + caption + "}", r"\label{tab:cross}",
             r"\resizebox{\linewidth}{!}{%"]
    lines += _tex_header(cols, ["Method", "Backbone", "Dataset"], triple=False)
    best = {}
    for (ds,), g in df.groupby(["dataset"]) if len(df) else []:
        best[ds] = {c: _best([None if pd.isna(x) else float(x) for x in g[c]], higher[c]) for c in cols}
    for rec in df.to_dict("records"):
        cells = [tex_escape(rec["method"]), tex_escape(backbone_name(rec["backbone"])),
                 tex_escape(DATASET_NAMES.get(rec["dataset"], rec["dataset"]))]
        for c in cols:
            x = rec[c]
            if x is None or pd.isna(x):
                cells.append("--")
                continue
            s = _fmt(float(x), c)
            std = rec.get(f"{c} std")
            if std is not None and not pd.isna(std) and rec["seeds"] > 1:
                s += r"{\scriptsize$\pm$" + _fmt(float(std), c) + "}"
            if best[rec["dataset"]][c] is not None and float(x) == best[rec["dataset"]][c]:
                s = r"\textbf{" + s + "}"
            cells.append(s)
        lines.append(" & ".join(cells) + r" \\")
    lines += [r"\bottomrule", r"\end{tabular}}", r"\end{table}", ""]
    return "\n".join(lines)


def complexity_table(plan: dict, meas: Measured, variants: dict) -> pd.DataFrame:
    recs = []
    for c in plan["counts"]:
        res = f"{c['height']}x{c['width']}"
        got = meas.complexity.get((c["dataset"], c["backbone"], c["variant"], res), {})
        v = variants.get(c["variant"])
        recs.append({"method": v.label if v else c["variant"], "variant": c["variant"], "backbone": c["backbone"],
                     "dataset": c["dataset"], "resolution": res, "Params": got.get("params"),
                     "Params train-only": got.get("params_train_only"), "GFLOPs fvcore": got.get("gflops"),
                     "GFLOPs paper convention": got.get("gflops_paper")})
    return pd.DataFrame(recs)


def complexity_tex(df: pd.DataFrame, caption: str) -> str:
    cols = ["Params", "GFLOPs fvcore", "GFLOPs paper convention"]
    lines = [r"\begin{table}[t]", r"\centering", r"\caption{" + caption + "}", r"\label{tab:complexity}",
             r"\resizebox{\linewidth}{!}{%"]
    lines += _tex_header(cols, ["Method", "Backbone", "Dataset", "Input"], triple=False)
    for rec in df.to_dict("records"):
        cells = [tex_escape(rec["method"]), tex_escape(backbone_name(rec["backbone"])),
                 tex_escape(DATASET_NAMES.get(rec["dataset"], rec["dataset"])), rec["resolution"]]
        cells += ["--" if rec[c] is None or pd.isna(rec[c]) else f"{float(rec[c]):.2f}" for c in cols]
        lines.append(" & ".join(cells) + r" \\")
    lines += [r"\bottomrule", r"\end{tabular}}", r"\end{table}", ""]
    return "\n".join(lines)


STANDALONE = r"""\documentclass[10pt]{article}
%% Generated by python -m reports.tables; compiles every table fragment of this folder.
\usepackage[landscape,margin=1.5cm]{geometry}
\usepackage{booktabs,amssymb,graphicx,xcolor}
\begin{document}
\section*{vss-bench: experiment \texttt{%(experiment)s}}
%(stamp)s
%(inputs)s
\end{document}
"""


def _csv(df: pd.DataFrame) -> str:
    return df.to_csv(index=False, float_format="%.4f")


def load_inputs(experiment: str, results: str | Path, reported_csv: str | None):
    """What every report CLI reads: the experiment's plan, its variant registry, the papers' numbers and
    our measured results. A bad plan or registry is an InputError naming the file."""
    from models.registry import load_variants
    from workflow.plan import REPO_ROOT, PlanError, load_plan

    try:
        plan = load_plan(experiment, results)
    except PlanError as e:
        raise InputError(str(e)) from None
    vf = Path(plan["variants_file"])
    variants = load_variants(vf if vf.is_absolute() else REPO_ROOT / vf)
    return plan, variants, P.load(reported_csv, variants), collect(plan, Path(results))


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m reports.tables", description=__doc__.split("\n\n")[0])
    ap.add_argument("--experiment", required=True, help="experiment name (results/NAME, config/experiments/NAME.yaml)")
    ap.add_argument("--results", default="results", help="results folder (default: results)")
    ap.add_argument("--reported", default=None, help="the papers' numbers (default: config/paper/reported.csv)")
    a = ap.parse_args(argv)

    plan, variants, reported, meas = load_inputs(a.experiment, a.results, a.reported)
    results = Path(a.results)
    gflops_key = "gflops_paper" if plan.get("report", {}).get("gflops") == "paper" else "gflops"
    out = results / plan["experiment"] / "tables"
    stamp = f"commit {git_commit() or 'unknown'}, config hash {config_hash(plan)}"

    diff, inputs = [], []
    for table in P.TABLES:
        cols, rows = paper_table(table, reported, meas, variants, plan, gflops_key)
        write_text(out / f"{table}.csv", _csv(table_csv(cols, rows)))
        cap = caption_for(table, rows, meas, plan, gflops_key, stamp)
        write_text(out / f"{table}.tex", f"% {stamp}\n" + table_tex(table, cols, rows, cap, f"tab:{table}"))
        inputs.append(table)
        for r in rows:
            for c, cell in r["cells"].items():
                if P.MEASURE[c][0] == "descriptive":
                    continue
                diff.append({"paper": P.TABLES[table].paper, "table": table, "row": r["row"],
                             "backbone": r["backbone"], "resolution": r["resolution"], "variant": r["variant"],
                             "column": c, "paper_value": cell.paper, "ours": cell.ours, "ours_std": cell.std,
                             "seeds": cell.n, "delta": cell.delta,
                             "tolerance": _tolerance(reported, table, r, c), "status": cell.status,
                             "reason": cell.reason, "ours_source": cell.source})
    write_text(out / "paper_diff.csv", _csv(pd.DataFrame(diff)))

    cross = cross_table(plan, meas, variants, gflops_key)
    write_text(out / "cross.csv", _csv(cross))
    devices = ", ".join(sorted(meas.devices)) or "not measured"
    cap = (f"Every trained method, dataset and metric under one protocol (experiment {tex_escape(plan['experiment'])}). "
           f"Accuracy in percent, mean $\\pm$ std over seeds {tex_escape(', '.join(map(str, plan['seeds'])))}; "
           f"TC flow: {tex_escape(', '.join(sorted(set(meas.flow.values()))) or '--')}; Params (M) and GFLOPs at the "
           f"dataset's test size ({tex_escape(COUNTING)}); FPS on {tex_escape(devices)}. mIoU as each dataset's "
           f"benchmark averages it: "
           + tex_escape("; ".join(f"{DATASET_NAMES[d]}: {miou_caption(d)}" for d in sorted({r['dataset'] for r in plan['runs']})))
           + ". Best per dataset in bold. "
           r"\texttt{" + tex_escape(stamp) + "}")
    write_text(out / "cross.tex", f"% {stamp}\n" + cross_tex(cross, cap))
    comp = complexity_table(plan, meas, variants)
    write_text(out / "complexity.csv", _csv(comp))
    cap = (f"Params (M, inference only; training-only modules apart) and GFLOPs of every count in experiment "
           f"{tex_escape(plan['experiment'])}: {tex_escape(COUNTING)}; the paper convention = module hooks over "
           r"the clip + one frame's analytic attention. \texttt{" + tex_escape(stamp) + "}")
    write_text(out / "complexity.tex", f"% {stamp}\n" + complexity_tex(comp, cap))
    inputs += ["cross", "complexity"]

    write_text(out / "tables.tex", STANDALONE % {
        "experiment": tex_escape(plan["experiment"]), "stamp": tex_escape(stamp),
        "inputs": "\n".join(rf"\input{{{name}.tex}}\clearpage" for name in inputs)})
    counts = pd.DataFrame(diff).status.value_counts().to_dict() if diff else {}
    write_json(out / "provenance.json", {"git_commit": git_commit(), "config_hash": config_hash(plan),
                                         "experiment": plan["experiment"], "variants_file": plan["variants_file"],
                                         "reported": str(a.reported or P.REPORTED_PATH), "status_counts": counts})
    print(f"tables: {len(inputs)} tables, {len(diff)} paper cells ({', '.join(f'{k} {v}' for k, v in counts.items())})"
          f" -> {out}")
    return 0


def _tolerance(reported: pd.DataFrame, table: str, row: dict, column: str) -> str:
    hit = reported[(reported.table == table) & (reported.row == row["row"]) & (reported.backbone == row["backbone"])
                   & (reported.resolution == row["resolution"]) & (reported.column == column)]
    return hit.iloc[0].tolerance if len(hit) else ""


if __name__ == "__main__":
    run_cli(main)
