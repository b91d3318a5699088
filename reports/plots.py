"""Plots of one experiment (PNG + PDF each) in results/NAME/plots/.

    python -m reports.plots --experiment NAME [--results results]

  tradeoff     mIoU vs GFLOPs, marker area = parameters (the papers' trade-off): the SD-CPC Table 1 points as
               printed, and ours (every trained run at its dataset's test size)
  p_sweep      mIoU and FPS vs the number of attention points P: the paper (text of the ablation) and ours
  ablation     mIoU change against the full method for every ablation row, paper bars beside ours (± std)
  training     training loss curves of every run (seed 0 solid, other seeds faint)
  qualitative  a strip like SD-CPC Figure 3: frames, ground truth, then each chosen method's prediction
Missing results leave a panel empty with a note (a partial experiment still plots).
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

from common.cli import run_cli  # noqa: E402
from common.io import atomic_path  # noqa: E402
from reports import paper as P  # noqa: E402
from reports.tables import backbone_name, load_inputs  # noqa: E402

FAMILY_COLOURS = {"segformer": "tab:gray", "sdcpc": "tab:blue", "msaf": "tab:orange"}


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


def plot_tradeoff(reported, meas, plan, variants, out):
    fig, (ax_p, ax_o) = plt.subplots(1, 2, figsize=(11, 4.2))
    t1 = reported[(reported.table == "sdcpc_t1") & ~reported.derived]
    for rid, g in t1.groupby(t1.apply(P.row_id, axis=1), sort=False):
        vals = dict(zip(g.column, g.value))
        if "GFLOPs" not in vals or "mIoU" not in vals:
            continue
        row = g.iloc[0]
        fam = variants[row.variant].family if row.variant in variants else None
        ax_p.scatter(vals["GFLOPs"], vals["mIoU"], s=6 * vals.get("Params", 10), alpha=0.6,
                     color=FAMILY_COLOURS.get(fam, "tab:green"), edgecolor="k", linewidth=0.5)
        ax_p.annotate(f"{row.row} {backbone_name(row.backbone)}", (vals["GFLOPs"], vals["mIoU"]), fontsize=6,
                      xytext=(3, 3), textcoords="offset points")
    ax_p.set_xscale("log")
    ax_p.set(xlabel="GFLOPs (log, as printed)", ylabel="mIoU (%)", title="SD-CPC Table 1 (VSPW), paper")
    drawn = 0
    for r in plan["runs"]:
        key = (r["dataset"], r["backbone"], r["variant"])
        h, w = plan["test_sizes"][r["dataset"]]
        comp = meas.complexity.get((*key, f"{h}x{w}"), {})
        miou = _mean(meas.metrics.get(key, {}).get("miou", []))
        if miou is None or comp.get("gflops") is None:
            continue
        v = variants.get(r["variant"])
        ax_o.scatter(comp["gflops"], miou, s=40 * max(comp.get("params") or 1, 0.2), alpha=0.6,
                     color=FAMILY_COLOURS.get(v.family if v else None, "tab:green"), edgecolor="k", linewidth=0.5)
        ax_o.annotate(v.label if v else r["variant"], (comp["gflops"], miou), fontsize=6, xytext=(3, 3),
                      textcoords="offset points")
        drawn += 1
    ax_o.set(xlabel="GFLOPs at the dataset's test size", ylabel="mIoU (%)",
             title=f"ours ({plan['experiment']}; marker area = params)")
    if not drawn:
        _note(ax_o, "no run with both mIoU and a complexity count yet")
    return save(fig, out, "tradeoff")


def _points(variant_name, variants):
    v = variants.get(variant_name)
    return v.options.get("points") if v is not None else None


def plot_p_sweep(reported, meas, plan, variants, out):
    fig, (ax_m, ax_f) = plt.subplots(1, 2, figsize=(12, 4))
    fig.subplots_adjust(wspace=0.5)
    sweep = reported[reported.table == "sdcpc_p"]
    pts = {}
    for _, r in sweep.iterrows():
        p = _points(r.variant, variants)
        if p is not None:
            pts.setdefault(p, {})[r.column] = r.value
    ps = sorted(pts)
    ax_m.plot(ps, [pts[p].get("mIoU") for p in ps], "o--", color="tab:gray", label="paper (VSPW, MiT-B1)")
    ax_f.plot(ps, [pts[p].get("FPS") for p in ps], "o--", color="tab:gray", label="paper (RTX 4090)")
    # ours: every sdcpc-family run whose options differ from sdcpc's in `points` only
    base = variants.get("sdcpc")
    ours_m, ours_f = {}, {}
    for key, vals in meas.metrics.items():
        v = variants.get(key[2])
        if v is None or base is None or v.family != "sdcpc":
            continue
        if {k: x for k, x in v.options.items() if k != "points"} != {k: x for k, x in base.options.items()
                                                                      if k != "points"}:
            continue
        if vals.get("miou"):
            ours_m.setdefault((key[0], key[1]), []).append((v.options.get("points"), vals["miou"]))
        if key in meas.fps:
            ours_f.setdefault((key[0], key[1]), []).append((v.options.get("points"), meas.fps[key]["fps"]))
    tm, tf = ax_m.twinx(), ax_f.twinx()
    for (ds, bb), seq in ours_m.items():
        seq.sort()
        tm.errorbar([s[0] for s in seq], [_mean(s[1]) for s in seq], yerr=[_std(s[1]) for s in seq], fmt="o-",
                    color="tab:blue", label=f"ours ({ds}, {backbone_name(bb)})", capsize=3)
    for (ds, bb), seq in ours_f.items():
        seq.sort()
        tf.plot([s[0] for s in seq], [s[1] for s in seq], "o-", color="tab:blue",
                label=f"ours ({ds}, {backbone_name(bb)})")
    ax_m.set(xlabel="attention points P", ylabel="paper mIoU (%)", title="mIoU vs P")
    tm.set_ylabel("our mIoU (%)", color="tab:blue")
    ax_f.set(xlabel="attention points P", ylabel="paper FPS", title="FPS vs P")
    tf.set_ylabel("our FPS (this machine)", color="tab:blue")
    for ax, tw in ((ax_m, tm), (ax_f, tf)):
        h1, l1 = ax.get_legend_handles_labels()
        h2, l2 = tw.get_legend_handles_labels()
        ax.legend(h1 + h2, l1 + l2, fontsize=7, loc="lower left")
        ax.set_xticks(ps or [4, 9, 16])
    if not ours_m:
        _note(tm, "no P-sweep run in this experiment")
    return save(fig, out, "p_sweep")


def plot_ablation(reported, meas, plan, variants, out):
    fig, axes = plt.subplots(1, 2, figsize=(13, 4.2))
    for ax, table in zip(axes, ("sdcpc_t3", "msaf_t3")):
        info = P.TABLES[table]
        sub = reported[(reported.table == table) & (reported.column == "mIoU") & (reported.variant != "")]
        ref_paper = sub[sub.variant == info.reference].value
        labels, paper_d, ours_d, ours_e = [], [], [], []
        ref_runs = [k for k in meas.metrics if k[2] == info.reference and meas.metrics[k].get("miou")]
        ref_key = ref_runs[0] if ref_runs else None
        for _, r in sub.iterrows():
            if r.variant == info.reference:
                continue
            labels.append(r.row)
            paper_d.append(r.value - ref_paper.iloc[0] if len(ref_paper) else np.nan)
            key = (ref_key[0], ref_key[1], r.variant) if ref_key else None
            vals = meas.metrics.get(key, {}).get("miou", []) if key else []
            if vals and ref_key:
                ours_d.append(_mean(vals) - _mean(meas.metrics[ref_key]["miou"]))
                ours_e.append(_std(vals))
            else:
                ours_d.append(np.nan)
                ours_e.append(0.0)
        x = np.arange(len(labels))
        ax.bar(x - 0.2, paper_d, 0.4, color="tab:gray", label=f"paper ({P.DATASET_LABEL.get(info.dataset, info.dataset)})")
        where = f"{ref_key[0]}, {backbone_name(ref_key[1])}" if ref_key else "not run"
        ax.bar(x + 0.2, ours_d, 0.4, yerr=ours_e, capsize=2, color=FAMILY_COLOURS.get(P.TABLES[table].paper, "tab:blue"),
               label=f"ours ({where})")
        ax.axhline(0, color="k", linewidth=0.6)
        ax.set_xticks(x, labels, rotation=45, ha="right", fontsize=7)
        ax.set(ylabel=f"mIoU change vs {variants[info.reference].label if info.reference in variants else ''} (points)",
               title=info.title)
        ax.legend(fontsize=7)
    return save(fig, out, "ablation")


def plot_training(plan, results, variants, out):
    fams = sorted({variants[r["variant"]].family for r in plan["runs"] if r["variant"] in variants}) or ["none"]
    fig, axes = plt.subplots(1, len(fams), figsize=(5 * len(fams), 3.8), squeeze=False)
    drawn = {f: 0 for f in fams}
    cmap = plt.get_cmap("tab20")
    for i, r in enumerate(plan["runs"]):
        v = variants.get(r["variant"])
        if v is None:
            continue
        ax = axes[0][fams.index(v.family)]
        for j, seed in enumerate(plan["seeds"]):
            path = results / plan["experiment"] / "runs" / r["dataset"] / r["backbone"] / r["variant"] / f"seed{seed}" / "train_log.csv"
            if not path.exists():
                continue
            log = pd.read_csv(path)
            ycol = next((c for c in ("loss_total", "total", "loss") if c in log.columns), None)
            if ycol is None or "iteration" not in log.columns:
                continue
            y = log[ycol].rolling(max(1, len(log) // 20), min_periods=1).mean()
            ax.plot(log["iteration"], y, color=cmap(i % 20), alpha=1.0 if j == 0 else 0.35, linewidth=1,
                    label=v.label if j == 0 else None)
            drawn[v.family] += 1
    for f, ax in zip(fams, axes[0]):
        ax.set(xlabel="iteration", ylabel="training loss (smoothed)", title=f"{f}")
        if drawn[f]:
            ax.legend(fontsize=6, ncol=2)
        else:
            _note(ax, "no training log yet")
    return save(fig, out, "training")


def _colourise(label: np.ndarray, k: int) -> np.ndarray:
    cmap = plt.get_cmap("tab20")
    lut = np.array([cmap(i % 20)[:3] for i in range(256)]) * 255
    lut[255] = 0  # ignore: black
    return lut[label].astype(np.uint8)


def plot_qualitative(plan, results, variants, out):
    q = plan.get("report", {}).get("qualitative", {})
    ds_name, want = q.get("dataset", "synthetic"), q.get("variants", [])
    n_frames = int(q.get("frames", 4))
    seed = plan["seeds"][0]
    runs = [r for r in plan["runs"] if r["dataset"] == ds_name and r["variant"] in want]
    runs.sort(key=lambda r: want.index(r["variant"]))
    root = plan["roots"].get(ds_name)
    try:
        from videos.datasets import open_dataset

        ds = open_dataset(ds_name, root, plan.get("evaluate", {}).get("split", "val"))
        video = ds.videos[0]
        frames = video.labelled[-n_frames:]
    except Exception as e:  # no data (dry experiment): an empty strip with the reason
        fig, ax = plt.subplots(figsize=(6, 2))
        ax.axis("off")
        _note(ax, f"no {ds_name} data to show ({type(e).__name__})")
        return save(fig, out, "qualitative")
    from PIL import Image

    rows = [("frames", [ds.read_image(video, f) for f in frames]),
            ("ground truth", [_colourise(ds.read_label(video, f), ds.num_classes) for f in frames])]
    for r in runs:
        pred_dir = results / plan["experiment"] / "runs" / r["dataset"] / r["backbone"] / r["variant"] / f"seed{seed}" / "pred" / video.name
        imgs = []
        for f in frames:
            p = pred_dir / f"{f}.png"
            imgs.append(_colourise(np.array(Image.open(p)), ds.num_classes) if p.exists() else None)
        label = variants[r["variant"]].label if r["variant"] in variants else r["variant"]
        rows.append((f"{label} ({backbone_name(r['backbone'])})", imgs))
    fig, axes = plt.subplots(len(rows), len(frames), figsize=(1.6 * len(frames) + 1.2, 1.6 * len(rows)),
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
    fig.suptitle(f"{ds_name} {ds.split}: frames, ground truth, predictions (seed {seed})", fontsize=8)
    return save(fig, out, "qualitative")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m reports.plots", description=__doc__.split("\n\n")[0])
    ap.add_argument("--experiment", required=True)
    ap.add_argument("--results", default="results")
    ap.add_argument("--reported", default=None)
    a = ap.parse_args(argv)

    plan, variants, reported, meas = load_inputs(a.experiment, a.results, a.reported)
    results = Path(a.results)
    out = results / plan["experiment"] / "plots"
    written = []
    written += plot_tradeoff(reported, meas, plan, variants, out)
    written += plot_p_sweep(reported, meas, plan, variants, out)
    written += plot_ablation(reported, meas, plan, variants, out)
    written += plot_training(plan, results, variants, out)
    written += plot_qualitative(plan, results, variants, out)
    print(f"plots: {len(written)} files -> {out}")
    return 0


if __name__ == "__main__":
    run_cli(main)
