"""The papers' numbers (config/paper/reported.csv): load, validate, derive, and describe each table.

reported.csv holds one row per printed cell, exactly as printed (percent, GFLOPs, millions of parameters,
frames per second). Nothing computed is typed into it: the absolute accuracies of the P sweep (the text gives
gains over P=4) and every FPS ratio to a table's baseline row are derived here, from the printed cells.

Columns: paper, table, row, backbone, variant, dataset, column, value, tolerance, resolution, note
  row         the method name as printed;  backbone  the registry backbone name when one exists, else as printed
  variant     the registry entry that reproduces the row; empty = reported only (a method this suite does not run)
  tolerance   absolute in the column's unit ("1.0"), or relative ("5%"); empty = never compared
  resolution  HxW of the network input the row was measured at
  note        free text; "[timed by <paper> on its own GPU]" marks an FPS the paper copied from another paper's
              table, which makes an FPS ratio against the paper's own timings not comparable
"""
from __future__ import annotations

import math
import re
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from common.cli import InputError
from metrics.info import METRICS

REPO_ROOT = Path(__file__).resolve().parents[1]
REPORTED_PATH = REPO_ROOT / "config" / "paper" / "reported.csv"
CSV_HEADER = ["paper", "table", "row", "backbone", "variant", "dataset", "column", "value", "tolerance",
              "resolution", "note"]


@dataclass(frozen=True)
class TableInfo:
    paper: str
    title: str
    dataset: str
    baseline: str            # variant whose row (same backbone + resolution) FPS ratios divide by
    kind: str                # "sota" (compare like with like only) or "ablation" (stand-in runs shown too)
    reference: str = ""      # variant the ablation deltas are taken against


TABLES: dict[str, TableInfo] = {
    "sdcpc_t1": TableInfo("sdcpc", "SD-CPC Table 1: state of the art on VSPW (val)", "vspw", "segformer", "sota"),
    "sdcpc_t2": TableInfo("sdcpc", "SD-CPC Table 2: state of the art on Cityscapes (val)", "cityscapes",
                          "segformer", "sota"),
    "sdcpc_t3": TableInfo("sdcpc", "SD-CPC Table 3: ablation on VSPW (val), MiT-B1", "vspw", "segformer",
                          "ablation", reference="sdcpc"),
    "sdcpc_p": TableInfo("sdcpc", "SD-CPC ablation text: attention points P, VSPW (val), MiT-B1", "vspw", "sdcpc",
                         "ablation", reference="sdcpc"),
    "msaf_t1": TableInfo("msaf", "MSAF Table 1: state of the art on Cityscapes", "cityscapes", "msaf_baseline",
                         "sota"),
    "msaf_t2": TableInfo("msaf", "MSAF Table 2: state of the art on CamVid", "camvid", "msaf_baseline", "sota"),
    "msaf_t3": TableInfo("msaf", "MSAF Table 3: ablation on Cityscapes (val), ResNet-50", "cityscapes",
                         "msaf_baseline", "ablation", reference="msaf"),
}
PAPERS = {"sdcpc": "SD-CPC (AAAI)", "msaf": "MSAF (CVPR 2023)"}

@dataclass(frozen=True)
class Column:
    """One printed column of the papers' tables, and how ours is measured for it.

    ``source``: "metrics" (a metric of metrics/info.py, percent), "complexity" (``key`` params | gflops),
    "fps", "fps_ratio" (the row's FPS over the table's baseline row, same machine), "gain" (the metric of the
    row's variant minus that of the table's reference variant: the P sweep), "options" (a tick box read from the
    variant's registry options: ``OPTION_MARKS``), "descriptive" (printed, never measured: Year)."""
    name: str
    source: str
    key: str = ""
    higher_is_better: bool | None = None
    decimals: int = 1                   # printed decimals where the paper's cells give none
    never_compared: str = ""            # why ours is shown but never scored against the paper
    paper_only: bool = False            # printed as one column (the paper's mark), not Paper | Ours | Delta

    @property
    def measured(self) -> bool:
        return self.source != "descriptive"


def _columns() -> dict[str, Column]:
    cols = [Column(m.name, "metrics", m.key, m.higher_is_better, m.decimals) for m in METRICS.values()]
    cols += [Column(f"{m.name}_gain", "gain", m.key, m.higher_is_better, m.decimals) for m in METRICS.values()]
    miou = METRICS["mIoU"]
    cols += [  # MSAF Table 2 prints CamVid val and test mIoU apart
        Column("mIoU-V", "metrics", miou.key, True, miou.decimals),
        Column("mIoU-T", "metrics", miou.key, True, miou.decimals,
               never_compared="paper: test split (evaluation server); ours: val split"),
        Column("GFLOPs", "complexity", "gflops", False, 1),
        Column("Params", "complexity", "params", False, 1),
        Column("FPS", "fps", "fps", True, 2),
        Column("FPS ratio", "fps_ratio", "fps", True, 2),
        *(Column(mark, "options", mark, None, 0, paper_only=True) for mark in ("MonA", "StaA", "SemA")),
        Column("Year", "descriptive", "", None, 0, paper_only=True),
    ]
    return {c.name: c for c in cols}


COLUMNS: dict[str, Column] = _columns()

# MSAF Table 3's tick boxes, read from a variant's options: motion alignment with MSAF's decoupled
# transformer (a vanilla one is "Baseline + TR"), state alignment, semantic assignment
OPTION_MARKS = {
    "MonA": lambda o: bool(o.get("motion_alignment")) and o.get("motion_transformer", "decoupled") == "decoupled",
    "StaA": lambda o: bool(o.get("state_alignment")),
    "SemA": lambda o: bool(o.get("semantic_assignment")),
}
FPS_RATIO_TOLERANCE = "15%"
# A printed FPS the paper took from another paper's table (timed on that paper's GPU) carries this tag in its
# note; a ratio with such a cell on one side and the paper's own timing on the other is not like-for-like.
TIMED_ELSEWHERE = re.compile(r"\[timed by (?P<source>[^\]]+?) on its own GPU\]")


def _timed_elsewhere(note: str) -> str | None:
    m = TIMED_ELSEWHERE.search(note or "")
    return m["source"] if m else None


def _err(path, line, msg) -> InputError:
    return InputError(f"{path}:{line}: {msg}")


def load_reported(path: str | Path | None = None, variants: dict | None = None) -> pd.DataFrame:
    """The printed cells, validated. ``variants``: the registry ({name: Variant}) to check names against."""
    path = Path(path) if path else REPORTED_PATH
    try:
        df = pd.read_csv(path, dtype=str, keep_default_na=False)
    except FileNotFoundError:
        raise InputError(f"{path}: file not found") from None
    if list(df.columns) != CSV_HEADER:
        raise InputError(f"{path}: header must be {','.join(CSV_HEADER)}; got {','.join(df.columns)}")
    values = []
    for i, r in enumerate(df.itertuples(index=False), start=2):  # line 1 is the header
        if r.paper not in PAPERS:
            raise _err(path, i, f"paper '{r.paper}' unknown (known: {', '.join(PAPERS)})")
        if r.table not in TABLES or TABLES[r.table].paper != r.paper:
            raise _err(path, i, f"table '{r.table}' is not a table of paper '{r.paper}'")
        if r.column not in COLUMNS:
            raise _err(path, i, f"column '{r.column}' unknown (known: {', '.join(COLUMNS)})")
        if not re.fullmatch(r"\d+x\d+", r.resolution):
            raise _err(path, i, f"resolution '{r.resolution}' is not HxW")
        if r.tolerance and not re.fullmatch(r"\d+(\.\d+)?%?", r.tolerance):
            raise _err(path, i, f"tolerance '{r.tolerance}' is neither a number nor a percentage")
        if variants is not None and r.variant and r.variant not in variants:
            raise _err(path, i, f"variant '{r.variant}' is not in the registry")
        try:
            v = float(r.value)
        except ValueError:
            raise _err(path, i, f"value '{r.value}' is not a number") from None
        if not math.isfinite(v):
            raise _err(path, i, f"value '{r.value}' is not finite")
        values.append(v)
    # decimals as printed ("39.90" keeps two): the tables print the paper's numbers exactly as the paper did
    df["decimals"] = [len(t.split(".")[1]) if "." in t else 0 for t in df["value"]]
    df["value"] = values
    df["derived"] = False
    df["not_comparable"] = ""      # a reason, for derived cells that mix two papers' devices
    key = ["table", "row", "backbone", "resolution", "column"]
    dup = df[df.duplicated(key, keep=False)]
    if len(dup):
        r = dup.iloc[0]
        raise InputError(f"{path}: cell {r.table}/{r.row}/{r.backbone}@{r.resolution}/{r.column} appears twice")
    return df


def row_id(r) -> str:
    """One paper row: (method as printed, backbone, resolution) is unique within a table."""
    return f"{r['row']}|{r['backbone']}|{r['resolution']}"


def derive(df: pd.DataFrame) -> pd.DataFrame:
    """Add the cells the papers imply but do not print: P-sweep absolutes and FPS ratios to the baseline row."""
    extra = []
    # P sweep: absolute accuracy = SD-CPC (MiT-B1) row of Table 1 + the gain the text states
    t1 = df[(df.table == "sdcpc_t1") & (df.variant == "sdcpc") & (df.backbone == "mit_b1")]
    ref = dict(zip(t1.column, t1.value))
    for (rname, bb, res), rows in df[df.table == "sdcpc_p"].groupby(["row", "backbone", "resolution"], sort=False):
        base = rows.iloc[0]
        gains = dict(zip(rows.column, rows.value))
        for col in (c.removesuffix("_gain") for c in table_columns(df, "sdcpc_p") if c.endswith("_gain")):
            if col not in ref:
                continue
            gain = gains.get(f"{col}_gain", 0.0 if base.variant == "sdcpc" else None)
            if gain is None:
                continue
            extra.append({**base.to_dict(), "column": col, "value": round(ref[col] + gain, 4), "tolerance": "1.0",
                          "decimals": 1,
                          "derived": True,
                          "note": f"derived: Table 1 SD-CPC MiT-B1 {ref[col]} + gain {gain} stated in the text"})
    # FPS ratios: a row's FPS / the FPS of the table's baseline variant on the same backbone and resolution
    for table, info in TABLES.items():
        fps = df[(df.table == table) & (df.column == "FPS")]
        for _, r in fps.iterrows():
            if not r.variant or r.variant == info.baseline:
                continue
            base = fps[(fps.variant == info.baseline) & (fps.backbone == r.backbone) & (fps.resolution == r.resolution)]
            if len(base) != 1:
                continue
            b = base.iloc[0]
            elsewhere = {row.row: _timed_elsewhere(row.note) for row in (r, b)}
            mixed = len(set(elsewhere.values())) > 1     # one side timed by another paper, on another GPU
            why = "; ".join(f"{name} FPS timed by {src} on its own GPU" for name, src in elsewhere.items() if src)
            extra.append({**r.to_dict(), "column": "FPS ratio", "value": round(r.value / b.value, 4), "decimals": 2,
                          "tolerance": FPS_RATIO_TOLERANCE, "derived": True,
                          "not_comparable": (f"the paper's ratio divides timings from two devices ({why}, the other "
                                             f"by {PAPERS[info.paper]}): not like-for-like") if mixed else "",
                          "note": f"derived: FPS {r.value} / {b.row} FPS {b.value} (same table, backbone, resolution)"})
    if extra:
        df = pd.concat([df, pd.DataFrame(extra)], ignore_index=True)
    return df


def within(paper: float, ours: float, tolerance: str) -> bool | None:
    """Is ours within the tolerance of paper? None when the cell carries no tolerance."""
    if not tolerance:
        return None
    if tolerance.endswith("%"):
        return abs(ours - paper) <= abs(paper) * float(tolerance[:-1]) / 100 + 1e-9
    return abs(ours - paper) <= float(tolerance) + 1e-9


# Printed column order across both papers (each table uses a subset; MSAF prints TC after FPS)
COLUMN_ORDER = ["Year", "MonA", "StaA", "SemA", "mIoU", "mIoU-V", "mIoU-T", "WIoU", "mVC8", "mVC16", "GFLOPs",
                "Params", "FPS", "TC", "FPS ratio", "mIoU_gain", "mVC8_gain", "mVC16_gain"]


def table_columns(df: pd.DataFrame, table: str) -> list[str]:
    """The table's columns in printed order, derived ones (FPS ratio, P-sweep gains) last."""
    present = set(df[df.table == table].column)
    return [c for c in COLUMN_ORDER if c in present]


def load(path: str | Path | None = None, variants: dict | None = None) -> pd.DataFrame:
    return derive(load_reported(path, variants))
