"""Plots of one experiment (PNG + PDF each) in results/NAME/plots/.

    python -m reports.plots --experiment NAME [--results results]

  tradeoff     mIoU vs GFLOPs, marker area = parameters (the papers' trade-off): the SD-CPC Table 1 points as
               printed, and ours (every trained run at its dataset's test size); colour and size legends
  p_sweep      the change from P = 4 attention points: mIoU (points) and FPS (ratio), paper and ours on one axis
  ablation     mIoU change against the full method for every ablation row, paper bars beside ours (± the
               95% interval over seeds);
               rows this experiment did not run are marked, not drawn as a zero change
  training     training loss curves of every run, one panel per family (seed 0 solid, other seeds faint)
  convergence  validation mIoU at the checkpoints of every run, one panel per family (the main rows in front,
               the pretrained encoders' pretext curves in their own panel), the last quarter shaded
  claims       each claim of the claims table: our difference with its 95% interval beside the paper's,
               coloured by verdict, hollow where a side had not converged
  qualitative  a strip like SD-CPC Figure 3: frames, ground truth, then each chosen method's prediction, with
               the class legend; of the val videos, the one whose last frames hold the most object classes
A method has one colour in every figure (``method_colours``: its family's colour from common/families.py,
shades of it for the family's other variants). Missing results leave a panel empty with a note.
"""
from __future__ import annotations

import argparse
import statistics
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
from matplotlib.colors import to_rgb  # noqa: E402
from matplotlib.lines import Line2D  # noqa: E402
from matplotlib.patches import Patch  # noqa: E402
from matplotlib.ticker import FuncFormatter, LogLocator, MaxNLocator, NullFormatter  # noqa: E402

from common.cli import run_cli  # noqa: E402
from common.families import FAMILIES, backbone_label  # noqa: E402
from common.io import atomic_path  # noqa: E402
from metrics.info import METRICS  # noqa: E402
from reports import PLOTS  # noqa: E402
from reports import paper as P  # noqa: E402
from reports.claims import claims_table, load_claims, side_not_converged  # noqa: E402
from reports.results import class_info, load_inputs, run_seeds  # noqa: E402
from reports.stats import summary  # noqa: E402
from videos.info import dataset_label  # noqa: E402
from workflow.plan import Layout  # noqa: E402

MIOU = METRICS["mIoU"]
OTHER = "tab:olive"          # methods the suite does not run (reported only)
PAPER_BAR = dict(facecolor="white", edgecolor="0.35", hatch="///")
AREA_PER_M = 8.0             # marker area (pt^2) per million parameters, the same in both trade-off panels


def save(fig, out: Path, name: str) -> list[Path]:
    paths = []
    for ext in ("png", "pdf"):
        path = out / f"{name}.{ext}"
        with atomic_path(path) as tmp:
            fig.savefig(tmp, dpi=130, bbox_inches="tight", format=ext)
        paths.append(path)
    plt.close(fig)
    return paths


def _note(ax, text):
    ax.text(0.5, 0.5, text, ha="center", va="center", transform=ax.transAxes, fontsize=9, color="gray", wrap=True)


def _mean(values):
    return statistics.fmean(values) if values else None


def _std(values):
    return statistics.stdev(values) if len(values) > 1 else 0.0


def _shade(colour: str, t: float) -> tuple[float, float, float]:
    """t < 0 mixes towards black, t > 0 towards white."""
    rgb = np.array(to_rgb(colour))
    return tuple(rgb + (1 - rgb) * t if t > 0 else rgb * (1 + t))


def method_colours(variants: dict) -> dict[str, tuple]:
    """One colour per registry variant, the same in every figure: the family's own entry (named like the
    family) in the family colour, the family's other entries in shades of it, in registry order."""
    out = {}
    for fam in FAMILIES.values():
        names = [n for n, v in variants.items() if v.family == fam.name]
        others = [n for n in names if n != fam.name]
        half = max(1, (len(others) - 1) // 2)
        for i, name in enumerate(others):   # alternately darker and lighter, further from the family colour
            level = 0.3 + 0.35 * (i // 2) / half
            out[name] = _shade(fam.colour, -level if i % 2 == 0 else level)
        if fam.name in names:
            out[fam.name] = to_rgb(fam.colour)
    return out


def place_labels(ax, points: list[tuple[float, float]], texts: list[str], areas: list[float],
                 fontsize: float = 6) -> None:
    """Label each point (a scatter marker of area ``areas`` pt^2) where its text overlaps no other label or
    marker and stays inside the axes: a few places around the marker, then further out with a leader line."""
    fig = ax.figure
    fig.canvas.draw()
    renderer = fig.canvas.get_renderer()
    frame = ax.get_window_extent(renderer)
    px = fig.dpi / 72.0                                       # display pixels per point
    centres = ax.transData.transform(points) if points else np.zeros((0, 2))
    radii = [np.sqrt(a) / 2 for a in areas]
    from matplotlib.transforms import Bbox

    markers = [Bbox.from_bounds(x - r * px, y - r * px, 2 * r * px, 2 * r * px) for (x, y), r in zip(centres, radii)]
    placed = []
    order = sorted(range(len(points)), key=lambda i: (-points[i][1], points[i][0]))
    for i in order:
        (x, y), text, r = points[i], texts[i], radii[i] + 2
        near = [(r, 0, "left", "center"), (-r, 0, "right", "center"), (0, r, "center", "bottom"),
                (0, -r, "center", "top"), (r, r, "left", "bottom"), (r, -r, "left", "top"), (-r, r, "right", "bottom"),
                (-r, -r, "right", "top")]
        far = [(dx + np.sign(dx) * k, dy + np.sign(dy) * k, ha, va) for k in (10, 22, 36, 52) for dx, dy, ha, va in near]
        others = [m for k, m in enumerate(markers) if k != i]
        best = None
        for n, (dx, dy, ha, va) in enumerate(near + far):
            ann = ax.annotate(text, (x, y), xytext=(dx, dy), textcoords="offset points", fontsize=fontsize, ha=ha,
                              va=va, arrowprops=dict(arrowstyle="-", color="0.5", lw=0.5) if n >= len(near) else None)
            box = ann.get_window_extent(renderer)
            cost = (3 * sum(_overlap(box, b) for b in placed) + sum(_overlap(box, m) for m in others)
                    + 10 * (box.width * box.height - _overlap(box, frame)))   # labels, markers, outside the axes
            if best is None or cost < best[0]:
                if best is not None:
                    best[1].remove()
                best = (cost, ann, box)
            else:
                ann.remove()
            if cost == 0:
                break
        placed.append(best[2])


def _overlap(a, b) -> float:
    w = min(a.x1, b.x1) - max(a.x0, b.x0)
    h = min(a.y1, b.y1) - max(a.y0, b.y0)
    return w * h if w > 0 and h > 0 else 0.0


def _log_x(ax):
    """A log GFLOPs axis labelled 1, 2, 5 x 10^k in plain numbers (no crowded minor-tick labels)."""
    ax.set_xscale("log")
    ax.xaxis.set_major_locator(LogLocator(base=10, subs=(1.0, 2.0, 5.0)))
    ax.xaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:g}"))
    ax.xaxis.set_minor_formatter(NullFormatter())


def _legends(fig, colour_handles):
    """Below the panels: which colour is which method, and what a marker's area means."""
    sizes = [Line2D([], [], linestyle="", marker="o", markersize=np.sqrt(AREA_PER_M * m), markerfacecolor="0.85",
                    markeredgecolor="k", markeredgewidth=0.5, label=f"{m}M params") for m in (5, 25, 80)]
    fig.legend(handles=colour_handles + sizes, loc="lower center", ncol=len(colour_handles) + len(sizes),
               fontsize=7, frameon=False, bbox_to_anchor=(0.5, -0.02), columnspacing=1.5, handletextpad=0.6,
               handlelength=3.8)


def plot_tradeoff(reported, meas, plan, variants, out):
    colours = method_colours(variants)
    fig, (ax_p, ax_o) = plt.subplots(1, 2, figsize=(12, 5.2))
    fig.subplots_adjust(bottom=0.2, wspace=0.25)
    t1 = reported[(reported.table == "sdcpc_t1") & ~reported.derived]
    pts, labels, areas, fams = [], [], [], set()
    for _, g in t1.groupby(t1.apply(P.row_id, axis=1), sort=False):
        vals = dict(zip(g.column, g.value))
        if "GFLOPs" not in vals or MIOU.name not in vals:
            continue
        row = g.iloc[0]
        v = variants.get(row.variant)
        fams.add(v.family if v else None)
        area = AREA_PER_M * vals.get("Params", 10)
        ax_p.scatter(vals["GFLOPs"], vals[MIOU.name], s=area, alpha=0.7, color=colours.get(row.variant, OTHER),
                     edgecolor="k", linewidth=0.5, zorder=3)
        name = v.label if v and "ours" in row.row.lower() else row.row
        pts.append((vals["GFLOPs"], vals[MIOU.name]))
        labels.append(f"{name}, {backbone_label(row.backbone)}")
        areas.append(area)
    _log_x(ax_p)
    ax_p.margins(0.12)
    ax_p.set(xlabel="GFLOPs (log scale, as printed)", ylabel=f"{MIOU.name} (%)",
             title="SD-CPC Table 1 (VSPW val), as printed")
    place_labels(ax_p, pts, labels, areas)

    pts, labels, areas = [], [], []
    for r in plan["runs"]:
        key = (r["dataset"], r["backbone"], r["variant"])
        h, w = plan["test_sizes"][r["dataset"]]
        comp = meas.complexity.get((*key, f"{h}x{w}"), {})
        miou = _mean(meas.values(key, MIOU.key))
        if miou is None or comp.get("gflops") is None:
            continue
        v = variants.get(r["variant"])
        fams.add(v.family if v else None)
        area = max(AREA_PER_M * (comp.get("params") or 0), 12)
        ax_o.scatter(comp["gflops"], miou, s=area, alpha=0.7, color=colours.get(r["variant"], OTHER),
                     edgecolor="k", linewidth=0.5, zorder=3)
        pts.append((comp["gflops"], miou))
        labels.append(f"{v.label if v else r['variant']}, {backbone_label(r['backbone'])}")
        areas.append(area)
    sizes = ", ".join(f"{dataset_label(d)} {h}x{w}" for d, (h, w) in plan["test_sizes"].items())
    ax_o.set(xlabel=f"GFLOPs at the test size (fvcore, log scale; {sizes})", ylabel=f"{MIOU.name} (%)",
             title=f"ours (experiment {plan['experiment']})")
    if pts:
        _log_x(ax_o)
        ax_o.margins(0.15)
        place_labels(ax_o, pts, labels, areas)
    else:
        _note(ax_o, "no run with both mIoU and a complexity count yet")
    handles = [Patch(color=to_rgb(f.colour), label=f.label) for f in FAMILIES.values() if f.name in fams]
    _legends(fig, handles + [Patch(color=OTHER, label="other methods (reported only)")])
    return save(fig, out, "tradeoff")


def _points(variant_name, variants):
    v = variants.get(variant_name)
    return v.options.get("points") if v is not None else None


def plot_p_sweep(reported, meas, plan, variants, out):
    """The change from P = 4 (the reference, SD-CPC's own setting): mIoU in points, FPS as a ratio, so the
    paper's numbers and ours share one axis."""
    ref = P.TABLES["sdcpc_p"].reference
    colour = method_colours(variants).get(ref, "tab:blue")
    fig, (ax_m, ax_f) = plt.subplots(1, 2, figsize=(11, 4))
    sweep = reported[reported.table == "sdcpc_p"]
    paper = {}
    for _, r in sweep.iterrows():
        p = _points(r.variant, variants)
        if p is not None:
            paper.setdefault(p, {})[r.column] = r.value
    p0 = _points(ref, variants)
    ps = sorted(paper)
    if p0 in paper:
        ax_m.plot(ps, [paper[p].get(MIOU.name, np.nan) - paper[p0].get(MIOU.name, np.nan) for p in ps], "o--",
                  color="0.4", label="paper (VSPW, MiT-B1)")
        ax_f.plot(ps, [paper[p].get("FPS", np.nan) / paper[p0].get("FPS", np.nan) for p in ps], "o--", color="0.4",
                  label="paper (its GPU)")
    # ours: every run of a variant that differs from the reference in `points` only, on the reference's runs
    base = variants.get(ref)
    same = lambda v: base is not None and v.family == base.family and \
        {k: x for k, x in v.options.items() if k != "points"} == {k: x for k, x in base.options.items() if k != "points"}
    drawn = 0
    for ds, bb, _ in [k for k in meas.metrics if k[2] == ref]:
        seq_m, seq_f = [], []
        for name, v in variants.items():
            if not same(v):
                continue
            vals, ref_vals = meas.values((ds, bb, name), MIOU.key), meas.values((ds, bb, ref), MIOU.key)
            if vals and ref_vals:
                seq_m.append((v.options.get("points"), _mean(vals) - _mean(ref_vals), _std(vals)))
            f, f0 = meas.fps.get((ds, bb, name)), meas.fps.get((ds, bb, ref))
            if f and f0:
                seq_f.append((v.options.get("points"), f["fps"] / f0["fps"]))
        where = f"ours ({dataset_label(ds)}, {backbone_label(bb)})"
        if seq_m:
            seq_m.sort()
            ax_m.errorbar([s[0] for s in seq_m], [s[1] for s in seq_m], yerr=[s[2] for s in seq_m], fmt="o-",
                          color=colour, capsize=3, label=where)
            drawn += 1
        if seq_f:
            seq_f.sort()
            ax_f.plot([s[0] for s in seq_f], [s[1] for s in seq_f], "o-", color=colour, label=f"{where}, this machine")
    ticks = sorted(set(ps) | {p for name, v in variants.items() if same(v) for p in [v.options.get("points")]})
    for ax in (ax_m, ax_f):
        ax.set_xticks(ticks or [4, 9, 16])
        ax.legend(fontsize=7, loc="best")
        ax.set_xlabel("attention points P")
    ax_m.axhline(0, color="k", linewidth=0.6)
    ax_f.axhline(1, color="k", linewidth=0.6)
    ax_m.set(ylabel=f"{MIOU.name} change from P={p0} (points)", title=f"{MIOU.name} vs P")
    ax_f.set(ylabel=f"FPS relative to P={p0}", title="FPS vs P")
    if not drawn:
        _note(ax_m, f"no P-sweep run in this experiment\n(only the paper's change is drawn)")
    return save(fig, out, "p_sweep")


def plot_ablation(reported, meas, plan, variants, out):
    colours = method_colours(variants)
    fig, axes = plt.subplots(1, 2, figsize=(13, 4.4))
    for ax, table in zip(axes, ("sdcpc_t3", "msaf_t3")):
        info = P.TABLES[table]
        sub = reported[(reported.table == table) & (reported.column == MIOU.name) & (reported.variant != "")]
        ref_paper = sub[sub.variant == info.reference].value
        ref_runs = [k for k in meas.metrics if k[2] == info.reference and meas.values(k, MIOU.key)]
        ref_key = ref_runs[0] if ref_runs else None
        labels, paper_d, ours_d, ours_e = [], [], [], []
        for _, r in sub.iterrows():
            if r.variant == info.reference:
                continue
            labels.append(r.row)
            paper_d.append(r.value - ref_paper.iloc[0] if len(ref_paper) else np.nan)
            vals = meas.values((ref_key[0], ref_key[1], r.variant), MIOU.key) if ref_key else []
            ours_d.append(_mean(vals) - _mean(meas.values(ref_key, MIOU.key)) if vals else np.nan)
            ours_e.append((summary(vals).half or 0.0) if vals else 0.0)   # the 95% interval over seeds
        x = np.arange(len(labels))
        ax.bar(x - 0.2, paper_d, 0.4, label=f"paper ({dataset_label(info.dataset)})", **PAPER_BAR)
        where = f"{dataset_label(ref_key[0])}, {backbone_label(ref_key[1])}" if ref_key else "not run"
        ax.bar(x + 0.2, np.nan_to_num(ours_d), 0.4, yerr=ours_e, capsize=2,
               color=colours.get(info.reference, "tab:blue"), label=f"ours ({where})")
        missing = [xi + 0.2 for xi, d in zip(x, ours_d) if np.isnan(d)]
        if missing:   # a row this experiment did not train is marked, not drawn as a zero change
            ax.scatter(missing, [0] * len(missing), marker="x", color="0.4", s=18, zorder=4,
                       label="ours: not run in this experiment")
        ax.axhline(0, color="k", linewidth=0.6)
        ax.margins(y=0.06)
        ax.set_xticks(x, labels, rotation=45, ha="right", fontsize=7)
        ref_label = variants[info.reference].label if info.reference in variants else info.reference
        ax.set(ylabel=f"{MIOU.name} change vs {ref_label} (points)", title=info.title)
        ax.legend(fontsize=7)
    return save(fig, out, "ablation")


def plot_training(plan, results, variants, out):
    colours = method_colours(variants)
    layout = Layout(Path(results) / plan["experiment"])
    fams = [f for f in FAMILIES if any(variants[r["variant"]].family == f for r in plan["runs"]
                                       if r["variant"] in variants)] or ["none"]
    fig, axes = plt.subplots(1, len(fams), figsize=(5 * len(fams), 3.8), squeeze=False)
    drawn = {f: 0 for f in fams}
    for r in plan["runs"]:
        v = variants.get(r["variant"])
        if v is None:
            continue
        ax = axes[0][fams.index(v.family)]
        for j, seed in enumerate(run_seeds(plan, r)):
            path = Path(layout.path("train_log", seed=seed, **r))
            if not path.exists():
                continue
            log = pd.read_csv(path)
            ycol = next((c for c in ("loss_total", "total", "loss") if c in log.columns), None)
            if ycol is None or "iteration" not in log.columns:
                continue
            y = log[ycol].rolling(max(1, len(log) // 20), min_periods=1).mean()
            ax.plot(log["iteration"], y, color=colours.get(r["variant"], OTHER), alpha=1.0 if j == 0 else 0.35,
                    linewidth=1, label=f"{v.label}, {backbone_label(r['backbone'])}" if j == 0 else None)
            drawn[v.family] += 1
    for f, ax in zip(fams, axes[0]):
        ax.set(xlabel="iteration", ylabel="training loss (smoothed)", title=FAMILIES[f].label if f in FAMILIES else f)
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        if drawn[f]:   # below the panel: a family's many variants would hide its curves
            ax.legend(fontsize=6, ncol=2, loc="upper center", bbox_to_anchor=(0.5, -0.16), frameon=False)
        else:
            _note(ax, "no training log yet")
    return save(fig, out, "training")


def plot_convergence(plan, meas, variants, out):
    """Validation mIoU against iterations, one panel per family plus one for the pretext runs; the main rows
    (report/main) drawn strong, the others faint; the last quarter of the schedule shaded."""
    from engine.convergence import LAST_PART

    colours = method_colours(variants)
    main = set(plan["report"].get("main") or [r["variant"] for r in plan["runs"]])
    fams = [f for f in FAMILIES if any(variants[r["variant"]].family == f for r in plan["runs"]
                                       if r["variant"] in variants)]
    panels = fams + (["pretrain"] if meas.pretrain else [])
    fig, axes = plt.subplots(1, max(1, len(panels)), figsize=(5 * max(1, len(panels)), 3.8), squeeze=False)
    drawn = {p: 0 for p in panels}
    ends = {p: 0 for p in panels}
    for r in plan["runs"]:
        v = variants.get(r["variant"])
        if v is None or v.family not in panels:
            continue
        ax = axes[0][panels.index(v.family)]
        key = (r["dataset"], r["backbone"], r["variant"])
        for j, seed in enumerate(run_seeds(plan, r)):
            curve = meas.curves.get((key, seed))
            if not curve:
                continue
            x, y = zip(*curve)
            strong = r["variant"] in main
            ax.plot(x, y, "o-" if strong else "-", markersize=2.5, linewidth=1.2 if strong else 0.7,
                    alpha=(1.0 if j == 0 else 0.6) if strong else 0.25, color=colours.get(r["variant"], OTHER),
                    label=f"{v.label}, {backbone_label(r['backbone'])}" if j == 0 and strong else None,
                    zorder=3 if strong else 2)
            drawn[v.family] += 1
            ends[v.family] = max(ends[v.family], meas.iterations[(key, seed)])
    if meas.pretrain:
        ax = axes[0][panels.index("pretrain")]
        for (ds, bb), pre in meas.pretrain.items():
            x, y = zip(*pre["curve"])
            v = variants.get(pre["variant"])
            ax.plot(x, y, "o-", markersize=2.5, color=colours.get(pre["variant"], OTHER),
                    label=f"{v.label if v else pre['variant']} pretext, {backbone_label(bb)}")
            drawn["pretrain"] += 1
            ends["pretrain"] = max(ends["pretrain"], pre["iterations"])
    for p, ax in zip(panels, axes[0]):
        title = "pretrained encoders (single frames)" if p == "pretrain" else FAMILIES[p].label
        ax.set(xlabel="iteration", ylabel=f"validation {MIOU.name} (%)", title=title)
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        if ends[p]:
            ax.axvspan(ends[p] * (1 - LAST_PART), ends[p], color="0.92", zorder=0,
                       label="last quarter" if p == panels[0] else None)
        if drawn[p]:
            ax.legend(fontsize=6, loc="lower right")
        else:
            _note(ax, "no validation curve yet")
    fig.suptitle("validation mIoU during training (faint: ablations; converged: the trend over the shaded last "
                 "quarter moves < 1 point)", fontsize=8)
    fig.tight_layout()
    return save(fig, out, "convergence")


VERDICT_COLOURS = {"reproduced": "tab:green", "contradicted": "tab:red", "inconclusive": "0.5"}


def plot_claims(reported, meas, plan, variants, out):
    """Our difference (95% interval) against the paper's for every claim tested, per paper."""
    frame = claims_table(load_claims(reported=reported, variants=variants), reported, meas, plan, variants)
    tested = frame[frame.verdict.isin(VERDICT_COLOURS)] if len(frame) else frame
    papers = list(dict.fromkeys(frame.paper)) if len(frame) else []
    heights = [max(1, len(tested[tested.paper == p])) for p in papers] or [1]
    fig, axes = plt.subplots(1, max(1, len(papers)), figsize=(13, 1.2 + 0.16 * max(heights)), squeeze=False)
    for ax, paper in zip(axes[0], papers or [None]):
        sub = tested[tested.paper == paper] if paper else tested
        if not len(sub):
            _note(ax, "no claim has both sides run in this experiment")
            ax.set_title(paper or "claims", fontsize=9)
            continue
        y = np.arange(len(sub))[::-1]
        for yi, rec in zip(y, sub.to_dict("records")):
            colour = VERDICT_COLOURS[rec["verdict"]]
            if not pd.isna(rec.get("ours_low")):
                ax.plot([rec["ours_low"], rec["ours_high"]], [yi, yi], color=colour, linewidth=1.5)
            ax.plot(rec["ours_diff"], yi, "o", color=colour, markersize=3.5,
                    markerfacecolor="white" if side_not_converged(rec) else colour)   # a side still learning
            ax.plot(rec["paper_diff"], yi, "D", markerfacecolor="white", markeredgecolor="k", markersize=3.5)
        ax.axvline(0, color="k", linewidth=0.6)
        ax.set_yticks(y, [f"{r['claim']} ({r['metric']})" + (" \u2021" if side_not_converged(r) else "")
                          for r in sub.to_dict("records")], fontsize=5.5)
        ax.set_ylim(-1, len(sub))
        ax.set(xlabel="difference A - B (points)", title=paper)
    handles = [Line2D([], [], color=c, marker="o", label=f"ours: {v}") for v, c in VERDICT_COLOURS.items()]
    handles.append(Line2D([], [], linestyle="", marker="o", markerfacecolor="white", markeredgecolor="0.3",
                          label="hollow, \u2021: a side had not converged"))
    handles.append(Line2D([], [], linestyle="", marker="D", markerfacecolor="white", markeredgecolor="k",
                          label="paper (its dataset and backbone)"))
    fig.legend(handles=handles, loc="lower center", ncol=len(handles), fontsize=7, frameon=False,
               bbox_to_anchor=(0.5, -0.01))
    from reports.stats import TEST

    fig.suptitle(f"claims: our difference with its 95% interval (verdict: {TEST}) beside the paper's", fontsize=8)
    fig.tight_layout(rect=(0, 0.03, 1, 1))
    return save(fig, out, "claims")


def _palette() -> np.ndarray:
    cmap = plt.get_cmap("tab20")
    lut = np.array([cmap(i % 20)[:3] for i in range(256)]) * 255
    lut[255] = 0  # ignore: black
    return lut


def _colourise(label: np.ndarray) -> np.ndarray:
    return _palette()[label].astype(np.uint8)


def strip_frames(ds, n: int, background: set[str], scanned: int = 32):
    """The strip's video and frames: of the first ``scanned`` videos, the one whose last ``n`` labelled frames
    show the most distinct object classes (classes not in ``background``), then the most object pixels, so
    the strip shows what the methods get right and wrong about objects, not sky."""
    objects = [k for k, name in enumerate(ds.class_names) if name not in background]
    best = None
    for video in ds.videos[:scanned]:
        frames = video.labelled[-n:]
        counts = np.bincount(np.concatenate([ds.read_label(video, f).ravel() for f in frames]), minlength=256)
        score = (int((counts[objects] > 0).sum()), int(counts[objects].sum()))
        if best is None or score > best[0]:
            best = (score, video, frames)
    return best[1], best[2]


def plot_qualitative(plan, results, variants, out):
    q = plan["report"].get("qualitative", {})
    ds_name, want = q.get("dataset"), q.get("variants", [])
    n_frames = int(q.get("frames", 4))
    layout = Layout(Path(results) / plan["experiment"])
    runs = sorted((r for r in plan["runs"] if r["dataset"] == ds_name and r["variant"] in want),
                  key=lambda r: want.index(r["variant"]))
    seed = run_seeds(plan, runs[0])[0] if runs else plan["seeds"][0]
    try:
        from videos.datasets import open_dataset

        ds = open_dataset(ds_name, plan["roots"].get(ds_name), plan["evaluate"].get("split", "val"))
        video, frames = strip_frames(ds, n_frames, class_info(plan, ds_name)[1])
    except Exception as e:  # no data (dry experiment): an empty strip with the reason
        fig, ax = plt.subplots(figsize=(6, 2))
        ax.axis("off")
        _note(ax, f"no {dataset_label(ds_name) if ds_name else 'qualitative'} data to show ({type(e).__name__})")
        return save(fig, out, "qualitative")
    from PIL import Image

    labels = [ds.read_label(video, f) for f in frames]
    rows = [("frames", [ds.read_image(video, f) for f in frames]), ("ground truth", [_colourise(x) for x in labels])]
    present = set(np.unique(np.concatenate([x.ravel() for x in labels])).tolist())
    for r in runs:
        pred_dir = Path(layout.path("pred", seed=run_seeds(plan, r)[0], **r)) / video.name
        imgs = []
        for f in frames:
            p = pred_dir / f"{f}.png"
            pred = np.array(Image.open(p)) if p.exists() else None
            if pred is not None:
                present |= set(np.unique(pred).tolist())
            imgs.append(_colourise(pred) if pred is not None else None)
        label = variants[r["variant"]].label if r["variant"] in variants else r["variant"]
        rows.append((f"{label}, {backbone_label(r['backbone'])}", imgs))
    fig, axes = plt.subplots(len(rows), len(frames), figsize=(1.6 * len(frames) + 1.2, 1.6 * len(rows) + 0.8),
                             squeeze=False)
    for i, (name, imgs) in enumerate(rows):
        for j, img in enumerate(imgs):
            ax = axes[i][j]
            ax.set_xticks([])
            ax.set_yticks([])
            if img is None:
                _note(ax, "missing")
            else:
                ax.imshow(img, interpolation="nearest")
            if j == 0:
                ax.set_ylabel(name, fontsize=7)
            if i == 0:
                ax.set_title(f"{video.name}/{frames[j]}", fontsize=6)
    lut, names = _palette() / 255, ds.class_names
    handles = [Patch(color=lut[k], label=names[k] if k < len(names) else str(k)) for k in sorted(present) if k != 255]
    if 255 in present:
        handles.append(Patch(color="k", label="ignore"))
    fig.legend(handles=handles, loc="lower center", ncol=min(len(handles), 4), fontsize=6, frameon=False,
               bbox_to_anchor=(0.5, 0.0))
    fig.suptitle(f"{dataset_label(ds_name)} {ds.split}: frames, ground truth, predictions (seed {seed})", fontsize=8)
    fig.tight_layout(rect=(0, 0.015 + 0.012 * -(-len(handles) // 4), 1, 0.97))
    return save(fig, out, "qualitative")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m reports.plots", description=__doc__.split("\n\n")[0])
    ap.add_argument("--experiment", required=True)
    ap.add_argument("--results", default="results")
    ap.add_argument("--reported", default=None)
    a = ap.parse_args(argv)

    plan, variants, reported, meas = load_inputs(a.experiment, a.results, a.reported)
    out = Path(Layout(Path(a.results) / plan["experiment"]).path("plot", name=""))
    figures = {"tradeoff": lambda: plot_tradeoff(reported, meas, plan, variants, out),
               "p_sweep": lambda: plot_p_sweep(reported, meas, plan, variants, out),
               "ablation": lambda: plot_ablation(reported, meas, plan, variants, out),
               "training": lambda: plot_training(plan, a.results, variants, out),
               "convergence": lambda: plot_convergence(plan, meas, variants, out),
               "claims": lambda: plot_claims(reported, meas, plan, variants, out),
               "qualitative": lambda: plot_qualitative(plan, a.results, variants, out)}
    assert tuple(figures) == PLOTS, "reports.PLOTS names the figures the pipeline expects"
    written = [p for name in PLOTS for p in figures[name]()]
    print(f"plots: {len(written)} files -> {out}")
    return 0


if __name__ == "__main__":
    run_cli(main)
