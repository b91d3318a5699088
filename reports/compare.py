"""Judging: each printed cell of the papers' tables beside our value, and whether the two may be compared.

    rows = paper_table("sdcpc_t1", reported, ctx)     # PaperRow per printed row (+ registry rows asking for one)
    rows[0].cells["mIoU"]                             # Cell: paper, ours, std, status, reason, run, device

A cell's status is one of STATUSES: "match" / "deviates" only ever compare like with like (same variant,
backbone, dataset and input size, within the tolerance of config/paper/reported.csv); "config check" for a
tick box of the paper (MSAF Table 3) the registry's options agree with (a check of the configuration, not a
reproduced number, so counted apart); "not comparable" when ours exists but measures something else (say
why in ``reason``); "not run" when we have no number.
How ours is measured depends on the column's ``source`` (reports.paper.Column): one function per source.
Reading the results is reports/results.py; printing them is reports/latex.py.
"""
from __future__ import annotations

import statistics
from dataclasses import dataclass, field
from typing import Any, Callable

import pandas as pd

from metrics.info import METRICS
from reports import paper as P
from reports.results import Key, Measured, mean_std
from reports.stats import summary

STATUSES = ("match", "deviates", "config check", "not comparable", "not run")
# an FPS ratio whose two timings spread (IQR / median, summed) wider than this is flagged: the spread is then
# as wide as the ratio's own tolerance (reports.paper.FPS_RATIO_TOLERANCE) and the verdict means little
FPS_SPREAD_LIMIT = 0.15


@dataclass
class Cell:
    paper: float | None
    ours: float | None = None
    std: float | None = None             # over seeds; None for one seed
    n: int = 0                           # seeds (or 1 for a count/timing)
    half: float | None = None            # half-width of the 95% interval over seeds (reports/stats.py)
    status: str = "not run"
    reason: str = ""
    source: str = ""                     # where ours came from, in words (paper_diff.csv ours_source)
    decimals: int | None = None          # as the paper printed this cell
    tolerance: str = ""
    run: tuple[str, str] | None = None   # (dataset, backbone) ours was measured on
    device: str | None = None            # FPS cells: the machine
    flow: str | None = None              # TC cells: the flow source
    unstable_timing: bool = False        # FPS ratio cells: the two timings spread wider than FPS_SPREAD_LIMIT

    @property
    def delta(self) -> float | None:
        """ours - paper, only where the two may be compared (a delta across datasets or devices means nothing)."""
        if self.paper is None or self.ours is None or self.status not in ("match", "deviates"):
            return None
        return self.ours - self.paper


@dataclass
class PaperRow:
    row: str                              # the method as printed
    backbone: str
    resolution: str
    variant: str                          # registry entry; "" = reported only
    dataset: str
    reported_only: bool = False
    ours_only: bool = False               # a registry variant asking for a row the paper does not print
    cells: dict[str, Cell] = field(default_factory=dict)


@dataclass
class Context:
    """What every cell of one table is judged with."""
    info: P.TableInfo
    meas: Measured
    variants: dict
    plan: dict
    gflops_key: str = "gflops"           # which count the cells compare: "gflops" (fvcore) or "gflops_paper"


def _score(cell: Cell, ours: float, std: float | None = None, n: int = 1, src: str = "") -> None:
    """Set ours and judge it against the paper with the cell's tolerance."""
    cell.ours, cell.std, cell.n, cell.source = ours, std, n, src
    if cell.paper is None:
        cell.status, cell.reason = "not comparable", "no paper value"
        return
    ok = P.within(cell.paper, ours, cell.tolerance)
    if ok is None:
        cell.status, cell.reason = "not comparable", cell.reason or "no tolerance for this column"
    else:
        cell.status = "match" if ok else "deviates"


def _shown(cell: Cell, ours: float, reason: str, std: float | None = None, n: int = 1, src: str = "") -> None:
    """Ours is shown beside the paper's but measures something else: never scored."""
    cell.ours, cell.std, cell.n, cell.source = ours, std, n, src
    cell.status, cell.reason = "not comparable", reason


def _stand_in(v: str, ctx: Context) -> Key | None:
    """Ablation tables: a run of the same variant on another dataset/backbone, shown but never compared."""
    runs = ctx.meas.runs_of(v)
    return runs[0] if (ctx.info.kind == "ablation" and runs) else None


def _other_size(row: dict, ds: str, ctx: Context) -> str | None:
    """Why a run of the row's dataset/backbone/variant is not the row's measurement: it was tested at another
    input size (MSAF Table 1 prints a ResNet-18 row per test size; one run fills at most the row of its own)."""
    size = (ctx.plan.get("test_sizes") or {}).get(ds)
    if not size or row.get("resolution") in (None, "", f"{size[0]}x{size[1]}"):
        return None
    return f"ours tested at {size[0]}x{size[1]}, the paper's row at {row['resolution']}"


# ---------------------------------------------------------------------------------------------- per source
def _metrics(cell: Cell, row: dict, col: P.Column, ctx: Context) -> None:
    v, ds, bb, meas = row["variant"], row["dataset"], row["backbone"], ctx.meas
    exact = (ds, bb, v)
    use = exact if meas.values(exact, col.key) else _stand_in(v, ctx)
    vals = meas.values(use, col.key) if use else []
    if not vals:
        cell.reason = f"no run of {v} on {ds}/{bb} in this experiment"
        return
    mean, std, n = mean_std(vals)
    cell.half = summary(vals).half
    tc = col.key == METRICS["TC"].key
    src = f"{use[0]}/{use[1]}, {n} seed(s)" + (f", TC flow {meas.flow.get(use)}" if tc else "")
    cell.run, cell.flow = use[:2], (meas.flow.get(use) if tc else None)
    if use != exact:
        _shown(cell, mean, f"ours measured on {use[0]}/{use[1]}, the paper on {ds}/{bb}", std, n, src)
    elif other := _other_size(row, ds, ctx):
        _shown(cell, mean, other, std, n, src)
    elif col.never_compared:
        _shown(cell, mean, col.never_compared, std, n, src)
    else:
        _score(cell, mean, std, n, src)
        flow = meas.flow.get(use) or ""
        if tc and cell.status in ("match", "deviates") and not flow.startswith("learned"):
            # the papers warped with learned flow (FlowNet2, RAFT): TC under another flow is another number
            _shown(cell, mean, f"flow source differs: ours {flow}, the paper a learned flow", std, n, src)


def _complexity(cell: Cell, row: dict, col: P.Column, ctx: Context) -> None:
    v, ds, bb, res = row["variant"], row["dataset"], row["backbone"], row["resolution"]
    got = ctx.meas.complexity.get((ds, bb, v, res))
    name = ctx.gflops_key if col.key == "gflops" else col.key
    if not got or got.get(name) is None:
        cell.reason = f"{v} on {bb} at {res} was not counted in this experiment"
        return
    _score(cell, got[name], src=f"{ds} {res}" + (" (paper convention)" if name == "gflops_paper" else " (fvcore)"))
    if cell.status != "deviates":
        return
    hints = []
    if col.key == "gflops":   # say when the other counting convention, or another input size, matches
        other = "gflops_paper" if name == "gflops" else "gflops"
        if got.get(other) is not None and P.within(cell.paper, got[other], cell.tolerance):
            hints.append(f"the {'paper-convention' if other == 'gflops_paper' else 'fvcore'} count "
                         f"{got[other]:.1f} matches")
    for (d2, b2, v2, r2), g2 in ctx.meas.complexity.items():
        if (d2, b2, v2) == (ds, bb, v) and r2 != res and g2.get(name) is not None \
                and P.within(cell.paper, g2[name], cell.tolerance):
            hints.append(f"matches at {r2} ({g2[name]:.1f})")
    cell.reason = "; ".join(hints)


def _fps(cell: Cell, row: dict, col: P.Column, ctx: Context) -> None:
    v, ds, bb, fps = row["variant"], row["dataset"], row["backbone"], ctx.meas.fps
    exact = (ds, bb, v)
    use = exact if exact in fps else _stand_in(v, ctx)
    if not use or use not in fps:
        cell.reason = f"no FPS of {v} on {ds}/{bb} in this experiment"
        return
    f = fps[use]
    where = f", {use[0]}/{use[1]})" if use != exact else ")"
    other = _other_size(row, ds, ctx) if use == exact else None
    _shown(cell, f["fps"], f"absolute FPS depends on the device (ours: {f['device']}" + where
           + (f"; {other}" if other else ""), src=f"{use[0]}/{use[1]} on {f['device']}")
    cell.run, cell.device = use[:2], f["device"]


def _fps_ratio(cell: Cell, row: dict, col: P.Column, ctx: Context) -> None:
    v, ds, bb, fps, base = row["variant"], row["dataset"], row["backbone"], ctx.meas.fps, ctx.info.baseline
    pairs = [(k, (k[0], k[1], base)) for k in fps if k[2] == v and (k[0], k[1], base) in fps]
    exact = [p for p in pairs if p[0][:2] == (ds, bb)]
    pick = exact[0] if exact else (pairs[0] if pairs and ctx.info.kind == "ablation" else None)
    if not pick:
        cell.reason = f"needs FPS of {v} and {base} on {ds}/{bb}"
        return
    ratio = fps[pick[0]]["fps"] / fps[pick[1]]["fps"]
    src = f"{pick[0][0]}/{pick[0][1]} on {fps[pick[0]]['device']}"
    cell.run, cell.device = pick[0][:2], fps[pick[0]]["device"]
    if not exact:
        _shown(cell, ratio, f"ours measured on {pick[0][0]}/{pick[0][1]}", src=src)
        return
    if row.get("not_comparable"):   # the paper's own ratio divides timings from two devices
        _shown(cell, ratio, row["not_comparable"], src=src)
        return
    if other := _other_size(row, ds, ctx):
        _shown(cell, ratio, other, src=src)
        return
    _score(cell, ratio, src=src)
    if cell.status == "deviates":
        cell.reason = "ratio to the baseline on another device and input size may differ"
    spreads = [fps[k].get("spread") for k in pick]
    if None not in spreads and sum(spreads) > FPS_SPREAD_LIMIT:
        flag = (f"timing spread large: FPS IQR {100 * spreads[0]:.0f}% and {100 * spreads[1]:.0f}% of the "
                f"median (over {100 * FPS_SPREAD_LIMIT:.0f}% together), the ratio is uncertain")
        cell.reason = "; ".join(r for r in (flag, cell.reason) if r)
        cell.unstable_timing = True


def _gain(cell: Cell, row: dict, col: P.Column, ctx: Context) -> None:
    """P-sweep gains: ours = metric(variant) - metric(reference), on the same dataset/backbone."""
    v, ds, bb, meas, ref = row["variant"], row["dataset"], row["backbone"], ctx.meas, ctx.info.reference
    cands = [k for k in meas.metrics if k[2] == v and meas.values(k, col.key)
             and meas.values((k[0], k[1], ref), col.key)]
    exact = [k for k in cands if k[:2] == (ds, bb)]
    use = exact[0] if exact else (cands[0] if cands else None)
    if not use:
        cell.reason = f"needs runs of {v} and {ref} on the same dataset/backbone"
        return
    gain = statistics.fmean(meas.values(use, col.key)) - statistics.fmean(meas.values((use[0], use[1], ref), col.key))
    cell.run = use[:2]
    if exact and (other := _other_size(row, ds, ctx)):
        _shown(cell, gain, other, src=f"{use[0]}/{use[1]}")
    elif exact:
        _score(cell, gain, src=f"{use[0]}/{use[1]}")
    else:
        _shown(cell, gain, f"ours measured on {use[0]}/{use[1]}", src=f"{use[0]}/{use[1]}")


def _options(cell: Cell, row: dict, col: P.Column, ctx: Context) -> None:
    _score(cell, float(P.OPTION_MARKS[col.key](ctx.variants[row["variant"]].options)), src="registry options")
    if cell.status == "match":
        cell.status, cell.reason = "config check", "the registry's options agree with the paper's tick box"
    elif cell.status == "deviates":
        cell.reason = "the registry's options contradict the paper's tick box"


MEASURE: dict[str, Callable[[Cell, dict, P.Column, Context], None]] = {
    "metrics": _metrics, "complexity": _complexity, "fps": _fps, "fps_ratio": _fps_ratio, "gain": _gain,
    "options": _options,
}


def judge(row: dict, col: P.Column, ctx: Context) -> Cell:
    """Our value of one paper cell (``row``: its reported.csv fields), and whether it may be compared."""
    dec = row.get("decimals")
    cell = Cell(paper=row.get("value"), decimals=None if dec is None or pd.isna(dec) else int(dec),
                tolerance=row.get("tolerance", ""))
    if not col.measured:
        cell.status, cell.reason = "not comparable", "descriptive column"
        return cell
    v = row["variant"]
    if not v:
        cell.reason = f"reported only: {row['row']} is not implemented in this suite"
    elif v not in ctx.variants:
        cell.reason = f"variant {v} is not in the registry {ctx.plan.get('variants_file')}"
    else:
        MEASURE[col.source](cell, row, col, ctx)
    return cell


# ---------------------------------------------------------------------------------------------- one table
def paper_table(table: str, reported: pd.DataFrame, ctx: Context) -> tuple[list[str], list[PaperRow]]:
    """Rows of one paper table: paper rows in printed order, then registry variants that ask for a row
    (their ``tables`` key) without a printed one."""
    sub = reported[reported.table == table]
    cols = P.table_columns(reported, table)
    rows: list[PaperRow] = []
    for _, cells in sub.groupby(sub.apply(P.row_id, axis=1), sort=False):
        first = cells.iloc[0].to_dict()
        by_col = {r["column"]: r for r in cells.to_dict("records")}
        out = PaperRow(first["row"], first["backbone"], first["resolution"], first["variant"], first["dataset"],
                       reported_only=not first["variant"])
        for c in cols:
            spec = by_col.get(c, {**first, "column": c, "value": None, "tolerance": "", "note": ""})
            cell = judge(spec, P.COLUMNS[c], ctx)
            if spec.get("note") and P.COLUMNS[c].measured:
                cell.reason = "; ".join(x for x in (cell.reason, f"paper note: {spec['note']}") if x)
            out.cells[c] = cell
        rows.append(out)
    listed = {r.variant for r in rows}
    ref = next((r for r in rows if r.variant), None)
    for name, v in ctx.variants.items():
        if table in v.tables and name not in listed and ref is not None:
            out = PaperRow(v.label, ref.backbone, ref.resolution, name, ref.dataset, ours_only=True)
            spec = {"row": v.label, "backbone": ref.backbone, "resolution": ref.resolution, "variant": name,
                    "dataset": ref.dataset, "value": None, "tolerance": ""}
            out.cells = {c: judge({**spec, "column": c}, P.COLUMNS[c], ctx) for c in cols}
            rows.append(out)
    return cols, rows


def table_frame(cols: list[str], rows: list[PaperRow]) -> pd.DataFrame:
    """The CSV of one paper table: each column as paper | ours | ours_std | delta | status."""
    recs = []
    for r in rows:
        rec: dict[str, Any] = {"method": r.row, "backbone": r.backbone, "resolution": r.resolution,
                               "variant": r.variant, "reported_only": r.reported_only, "ours_only": r.ours_only}
        for c in cols:
            cell = r.cells[c]
            rec.update({f"{c} paper": cell.paper, f"{c} ours": cell.ours, f"{c} ours_std": cell.std,
                        f"{c} ours_ci95": cell.half, f"{c} seeds": cell.n if cell.ours is not None else None,
                        f"{c} delta": cell.delta, f"{c} status": cell.status})
        recs.append(rec)
    return pd.DataFrame(recs)


def diff_records(table: str, rows: list[PaperRow]) -> list[dict]:
    """paper_diff.csv: one record per measured (row, column) of one table."""
    out = []
    for r in rows:
        for c, cell in r.cells.items():
            if not P.COLUMNS[c].measured:
                continue
            out.append({"paper": P.TABLES[table].paper, "table": table, "row": r.row, "backbone": r.backbone,
                        "resolution": r.resolution, "variant": r.variant, "column": c, "paper_value": cell.paper,
                        "ours": cell.ours, "ours_std": cell.std, "ours_ci95": cell.half, "seeds": cell.n,
                        "delta": cell.delta,
                        "tolerance": cell.tolerance, "status": cell.status, "reason": cell.reason,
                        "ours_source": cell.source})
    return out
