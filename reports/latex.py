"""Formatting: LaTeX fragments of the tables (booktabs; pandas ``Styler.to_latex`` writes each tabular) and
the standalone document that compiles them all.

A fragment is a ``table`` float (no placement: the including document decides), a caption that says only
what its table holds, and the tabular inside ``adjustbox{max width=\\linewidth}``, which shrinks a wide table
to the line and never enlarges a small one; a table with more rows than a page holds is a longtable instead.
Every number of a column has one precision: the most decimals the paper prints in that column (or the
column's own default). Needs booktabs, longtable, amssymb, adjustbox, xcolor.
"""
from __future__ import annotations

import math
from typing import Any

import pandas as pd

from common.families import backbone_label
from metrics.info import METRICS
from reports import paper as P
from reports.claims import side_not_converged
from reports.compare import FPS_SPREAD_LIMIT, Cell, PaperRow
from videos.info import DATASETS, dataset_label

COUNTING = "fvcore, 1 multiply-add = 1 FLOP, batch 1, the whole test clip (every frame the method reads)"
WIDE_COLUMNS = 14   # tables with more printed columns are set in \footnotesize with narrower gaps
LONG_ROWS = 30      # tables with more rows break across pages (longtable) instead of floating
DASH = "--"


def miou_definition(dataset: str) -> str:
    """How the dataset's own benchmark averages mIoU (videos.info ``miou_convention``), in words."""
    from metrics.segmentation import MIOU_CONVENTIONS

    info = DATASETS.get(dataset)
    return MIOU_CONVENTIONS[info.miou_convention if info else "present"][1]


def convention(gflops_key: str) -> str:
    """Which GFLOPs count the tables print, in words."""
    return "the papers' counting convention" if gflops_key == "gflops_paper" else "fvcore's count"


def tex_escape(text: Any) -> str:
    out = []
    for ch in str(text):
        out.append({"&": r"\&", "%": r"\%", "$": r"\$", "#": r"\#", "_": r"\_", "{": r"\{", "}": r"\}",
                    "~": r"\textasciitilde{}", "^": r"\textasciicircum{}", "\\": r"\textbackslash{}"}.get(ch, ch))
    return "".join(out)


def _missing(x: Any) -> bool:
    return x is None or (isinstance(x, float) and math.isnan(x))


def number(x: float | None, decimals: int, sign: bool = False) -> str:
    return DASH if _missing(x) else f"{x:+.{decimals}f}" if sign else f"{x:.{decimals}f}"


def data_decimals(values, default: int, most: int = 4) -> int:
    """Decimals that show the column's smallest non-zero value with two significant digits (at least
    ``default``): GFLOPs of a 32x32 input need three, those at the papers' sizes one."""
    small = min((abs(float(v)) for v in values if not _missing(v) and float(v) != 0), default=None)
    if small is None:
        return default
    return max(default, min(most, math.ceil(-math.log10(small)) + 1))


def _best(values: list[float | None], higher: bool | None) -> float | None:
    vals = [v for v in values if not _missing(v)]
    if not vals or higher is None:
        return None
    return max(vals) if higher else min(vals)


def _bold(text: str) -> str:
    return r"\textbf{" + text + "}"


def _tabular(df: pd.DataFrame, align: str, groups=(), **longtable) -> str:
    """The booktabs tabular of a frame of finished cell strings (Styler.to_latex), with a \\cmidrule under
    each multi-column header group ((first, last) column, 1-based). ``longtable``: caption and label of a
    table that breaks across pages."""
    env = {"environment": "longtable", **longtable} if longtable else {}
    tex = df.style.hide(axis="index").to_latex(hrules=True, multicol_align="c", column_format=align, **env)
    if longtable:   # the header repeated on each further page says "continued", not the whole caption again
        tex = "\n".join(r"\caption[]{(continued)} \\" if line.startswith(r"\caption[]{") else line
                        for line in tex.splitlines()) + "\n"
    if groups:
        lines = tex.splitlines()
        rules = " ".join(rf"\cmidrule(lr){{{a}-{b}}}" for a, b in groups)
        for k in [k for k, line in enumerate(lines) if line == r"\toprule"][::-1]:   # every header copy
            lines.insert(k + 2, rules)
        tex = "\n".join(lines) + "\n"
    return tex


def place(df: pd.DataFrame, align: str, caption: str, label: str, groups=(), wide: bool = False) -> str:
    """A fragment: a ``table`` float whose tabular shrinks to the line width when wider (never enlarged), or,
    for more rows than a page holds, a longtable that breaks across pages."""
    size = [r"\footnotesize", r"\setlength{\tabcolsep}{3pt}"] if wide else []
    if len(df) > LONG_ROWS:
        return "\n".join(["{" + "".join(size), _tabular(df, align, groups, caption=caption, label=label).rstrip("\n"),
                          "}", ""])
    return "\n".join([r"\begin{table}", r"\centering", *size, r"\caption{" + caption + "}", r"\label{" + label + "}",
                      r"\begin{adjustbox}{max width=\linewidth}", _tabular(df, align, groups).rstrip("\n"),
                      r"\end{adjustbox}", r"\end{table}", ""])


# ---------------------------------------------------------------------------------------------- paper tables
def row_name(r: PaperRow, variants: dict) -> str:
    """The row as printed, except a paper's own method ("Ours", "SD-CPC(ours)"), which takes the registry
    label: beside our "Ours" column it would read as ours."""
    name = r.row
    if "ours" in name.lower() and r.variant in variants:
        name = variants[r.variant].label
    name = tex_escape(name)
    if r.reported_only:
        return r"\textit{" + name + r"}$^\dagger$"
    return name + r"$^\ast$" if r.ours_only else name


def column_decimals(cols: list[str], rows: list[PaperRow]) -> dict[str, int]:
    """One precision per column: the most decimals the paper prints in it, else the column's default."""
    return {c: max([r.cells[c].decimals for r in rows if r.cells[c].decimals is not None and
                    r.cells[c].paper is not None], default=P.COLUMNS[c].decimals) for c in cols}


def _mark(cell: Cell) -> str:
    """A tick-box cell: the paper's mark; where the registry variant's options disagree, flagged."""
    text = r"\checkmark" if not _missing(cell.paper) and cell.paper >= 0.5 else ""
    if cell.ours is not None and not _missing(cell.paper) and (cell.ours >= 0.5) != (cell.paper >= 0.5):
        text += r"$^{\neq}$"
    return text


def paper_tex(table: str, cols: list[str], rows: list[PaperRow], variants: dict, caption: str) -> str:
    dec = column_decimals(cols, rows)
    best_paper = {c: _best([r.cells[c].paper for r in rows], P.COLUMNS[c].higher_is_better) for c in cols}
    best_ours = {c: _best([r.cells[c].ours for r in rows], P.COLUMNS[c].higher_is_better) for c in cols}
    header = [("", "Method"), ("", "Backbone")]
    groups = []
    for c in cols:
        name = tex_escape(c.replace("_", " "))
        if P.COLUMNS[c].paper_only:
            header.append(("", name))
        else:
            groups.append((len(header) + 1, len(header) + 3))
            header += [(name, "Paper"), (name, "Ours"), (name, r"$\Delta$")]
    first_res = rows[0].resolution if rows else ""
    body = []
    for r in rows:
        bb = tex_escape(backbone_label(r.backbone)) + (f" ({r.resolution})" if r.resolution != first_res else "")
        line = [row_name(r, variants), bb]
        for c in cols:
            cell, col, d = r.cells[c], P.COLUMNS[c], dec[c]
            if col.source == "options":
                line.append(_mark(cell))
                continue
            if col.paper_only:
                line.append(number(cell.paper, d))
                continue
            p = number(cell.paper, d)
            if not _missing(cell.paper) and cell.paper == best_paper[c]:
                p = _bold(p)
            o = number(cell.ours, d)
            if cell.ours is not None:
                if cell.half is not None and cell.n > 1:   # the 95% interval over seeds
                    o += r"{\scriptsize$\pm$" + number(cell.half, d) + "}"
                if cell.ours == best_ours[c]:
                    o = _bold(o)
                if cell.status == "not comparable":
                    o = r"\textcolor{gray}{" + o + "}"
                if cell.unstable_timing:
                    o += r"$^\S$"
            line += [p, o, number(cell.delta, d, sign=True)]
        body.append(line)
    df = pd.DataFrame(body, columns=pd.MultiIndex.from_tuples(header))
    align = "ll" + "".join("c" if P.COLUMNS[c].paper_only else "rrr" for c in cols)
    return place(df, align, caption, f"tab:{table}", groups, wide=len(header) > WIDE_COLUMNS)


def paper_caption(table: str, cols: list[str], rows: list[PaperRow], plan: dict, gflops_key: str,
                  stamp: str) -> str:
    """What this table holds, and only that: its dataset and input size, where ours come from, and the
    counting, device and flow notes of the columns it has."""
    info = P.TABLES[table]
    cells = [c for r in rows for c in r.cells.values()]
    sources = {P.COLUMNS[c].source for c in cols}
    res = sorted({r.resolution for r in rows})
    runs = sorted({c.run for c in cells if c.ours is not None and c.run})
    parts = [tex_escape(info.title) + ".", f"Paper: {dataset_label(info.dataset)} at {', '.join(res)}."]
    if runs:
        where = "; ".join(f"{dataset_label(d)}, {backbone_label(b)}" for d, b in runs)
        ns = sorted({c.n for c in cells if c.ours is not None and c.half is not None})
        parts.append(f"Ours: {tex_escape(where)}; " + (f"mean $\\pm$ half-width of the 95\\% t-interval over "
                                                       f"n = {', '.join(map(str, ns))} seeds." if ns
                                                       else "one seed (no interval)."))
    elif sources & {"metrics", "gain", "fps", "fps_ratio"}:
        parts.append("Ours: no run of these rows in this experiment.")
    if "complexity" in sources:
        parts.append("Params (M) and GFLOPs counted at the paper's input size on the paper's dataset, with no "
                     f"training ({tex_escape(COUNTING)}; "
                     f"{convention(gflops_key)}).")
    if sources & {"fps", "fps_ratio"}:
        devices = sorted({c.device for c in cells if c.device})
        parts.append(f"FPS: {tex_escape(', '.join(devices)) if devices else 'not measured in this experiment'}"
                     + ("; absolute FPS is never compared across devices, FPS ratio = the row over the table's "
                        "baseline on the same machine." if devices else "."))
    if any(P.COLUMNS[c].key == METRICS["mIoU"].key for c in cols):
        parts.append(f"mIoU: {tex_escape(miou_definition(info.dataset))}, as the {dataset_label(info.dataset)} "
                     "benchmark averages it.")
    if any(P.COLUMNS[c].key == METRICS["TC"].key for c in cols):
        flows = sorted({c.flow for c in cells if c.flow})
        parts.append(f"TC flow: {tex_escape(', '.join(flows)) if flows else 'not measured'}.")
    marks = []
    if any(r.reported_only for r in rows):
        marks.append(r"$\dagger$ reported only (not run by this suite)")
    if any(r.ours_only for r in rows):
        marks.append(r"$\ast$ registry variant without a paper row")
    if any(c.status == "not comparable" and c.ours is not None for c in cells):
        marks.append(r"grey: shown, not comparable (paper\_diff.csv says why)")
    if any(c.unstable_timing for c in cells):
        marks.append(r"$\S$: FPS ratio whose two timings spread wider than "
                     f"{100 * FPS_SPREAD_LIMIT:.0f}" + r"\% of their medians (paper\_diff.csv)")
    if any(r"$^{\neq}$" in _mark(c) for r in rows for k, c in r.cells.items() if P.COLUMNS[k].source == "options"):
        marks.append(r"$\neq$: the registry variant's options differ from the paper's mark")
    if marks:
        parts.append("; ".join(marks) + ".")
    parts.append(r"\texttt{" + tex_escape(stamp) + "}")
    return " ".join(parts)


# ---------------------------------------------------------------------------------------------- our tables
def cross_tex(df: pd.DataFrame, caption: str) -> str:
    """Every trained method x dataset: the metrics table's columns, params, GFLOPs, FPS; best per dataset in
    bold, ± the half-width of the 95% interval where a run has several seeds; n (seeds) and how many of them
    converged (engine/convergence.py)."""
    cols = {**{m.name: (m.higher_is_better, m.decimals) for m in METRICS.values()},
            "Params": (False, 2), "GFLOPs": (False, 1), "FPS": (True, 1)}
    dec = {c: data_decimals(df[c] if c in df else [], d) for c, (_, d) in cols.items()}
    best = {}
    for ds, g in (df.groupby("dataset") if len(df) else []):
        best[ds] = {c: _best([None if _missing(x) else float(x) for x in g[c]], h) for c, (h, _) in cols.items()}
    body = []
    for rec in df.to_dict("records"):
        line = [tex_escape(rec["method"]), tex_escape(backbone_label(rec["backbone"])),
                tex_escape(dataset_label(rec["dataset"])), str(rec["seeds"]),
                DASH if _missing(rec.get("converged")) else str(rec["converged"])]
        for c in cols:
            x = rec[c]
            if _missing(x):
                line.append(DASH)
                continue
            s = number(float(x), dec[c])
            half = rec.get(f"{c} ci95")
            if not _missing(half) and rec["seeds"] > 1:
                s += r"{\scriptsize$\pm$" + number(float(half), dec[c]) + "}"
            if float(x) == best[rec["dataset"]][c]:
                s = _bold(s)
            line.append(s)
        body.append(line)
    frame = pd.DataFrame(body, columns=["Method", "Backbone", "Dataset", "n", "Conv.", *cols])
    return place(frame, "lllrr" + "r" * len(cols), caption, "tab:cross", wide=True)


def convergence_tex(df: pd.DataFrame, caption: str) -> str:
    """One line per run and seed: the schedule, the final mIoU, the last quarter's change, converged."""
    body = []
    for rec in df.to_dict("records"):
        change = rec["last-quarter change"]
        body.append([tex_escape(rec["method"]), tex_escape(backbone_label(rec["backbone"])), str(rec["seed"]),
                     DASH if _missing(rec["iterations"]) else str(int(rec["iterations"])),
                     number(None if _missing(rec["final mIoU"]) else float(rec["final mIoU"]), 2),
                     DASH if _missing(change) else f"{float(change):+.2f}",
                     DASH if _missing(rec["converged"]) else (r"\checkmark" if rec["converged"] else "no")])
    frame = pd.DataFrame(body, columns=["Run", "Backbone", "Seed", "Iterations", "Final mIoU",
                                        "Last-quarter trend", "Converged"])
    return place(frame, "llrrrrc", caption, "tab:convergence")


def per_class_tex(df: pd.DataFrame, caption: str) -> str:
    """Classes as rows, methods as columns: IoU mean ± the 95% half-width over seeds; objects marked."""
    if df.empty:
        return place(pd.DataFrame({"Class": [DASH]}), "l", caption, "tab:per_class")
    methods = list(dict.fromkeys(zip(df.method, df.backbone)))
    body = []
    for name, g in df.groupby("class", sort=False):
        line = [tex_escape(name) + ("" if bool(g["object"].iloc[0]) else r"$^\circ$")]
        for m, b in methods:
            rec = g[(g.method == m) & (g.backbone == b)]
            if rec.empty or _missing(rec["IoU"].iloc[0]):
                line.append(DASH)
                continue
            s = number(float(rec["IoU"].iloc[0]), 1)
            if not _missing(rec["IoU ci95"].iloc[0]):
                s += r"{\scriptsize$\pm$" + number(float(rec["IoU ci95"].iloc[0]), 1) + "}"
            line.append(s)
        body.append(line)
    cols = ["Class"] + [f"{tex_escape(m)} ({tex_escape(backbone_label(b))})" for m, b in methods]
    return place(pd.DataFrame(body, columns=cols), "l" + "r" * len(methods), caption, "tab:per_class",
                 wide=len(methods) > 6)


NOT_CONVERGED_MARK = r"$^\ddagger$"   # a claim side with seeds not converged (claims.csv converged_a/_b)


def claims_tex(df: pd.DataFrame, caption: str) -> str:
    """One line per claim: the paper's difference, ours with its 95% interval, p, n and the verdict."""
    body = []
    for rec in df.to_dict("records"):
        ours = DASH if _missing(rec.get("ours_diff")) else f"{float(rec['ours_diff']):+.2f}"
        if not _missing(rec.get("ours_low")):
            ours += f" [{float(rec['ours_low']):+.2f}, {float(rec['ours_high']):+.2f}]"
        n = DASH if _missing(rec.get("n_a")) else f"{int(rec['n_a'])}/{int(rec['n_b'])}"
        body.append([tex_escape(rec["claim"]).replace(">", "$>$"), tex_escape(rec["metric"]),
                     tex_escape(rec["table"].replace("_", " ")),
                     f"{float(rec['paper_diff']):+.2f}", ours,
                     DASH if _missing(rec.get("p")) else f"{float(rec['p']):.3f}", n,
                     tex_escape(rec["verdict"]) + (NOT_CONVERGED_MARK if side_not_converged(rec) else "")])
    frame = pd.DataFrame(body, columns=["Claim", "Metric", "Table", "Paper", r"Ours [95\% CI]", "p", "n",
                                        "Verdict"])
    return place(frame, "lllrrrrl", caption, "tab:claims")


def complexity_tex(df: pd.DataFrame, caption: str) -> str:
    cols = ["Params", "GFLOPs fvcore", "GFLOPs paper convention"]
    dec = {c: data_decimals(df[c] if c in df else [], 2) for c in cols}
    body = [[tex_escape(rec["method"]), tex_escape(backbone_label(rec["backbone"])),
             tex_escape(dataset_label(rec["dataset"])), rec["resolution"]]
            + [number(None if _missing(rec[c]) else float(rec[c]), dec[c]) for c in cols]
            for rec in df.to_dict("records")]
    frame = pd.DataFrame(body, columns=["Method", "Backbone", "Dataset", "Input", *cols])
    return place(frame, "llll" + "r" * len(cols), caption, "tab:complexity")


STANDALONE = r"""\documentclass[10pt]{article}
%% Generated by python -m reports.tables; compiles every table fragment of this folder.
\usepackage[landscape,margin=1.5cm]{geometry}
\usepackage{booktabs,longtable,amssymb,adjustbox,xcolor,float}
\usepackage[tableposition=top]{caption}
\floatplacement{table}{H}
\begin{document}
\section*{vss-bench: experiment \texttt{%(experiment)s}}
%(stamp)s
%(inputs)s
\end{document}
"""


def standalone(experiment: str, stamp: str, fragments: list[str]) -> str:
    """A document that inputs every fragment: the heading first (tables are placed where they stand)."""
    return STANDALONE % {"experiment": tex_escape(experiment), "stamp": tex_escape(stamp),
                         "inputs": "\n".join(rf"\input{{{name}.tex}}" for name in fragments)}
