"""The claims table: each claim of the two papers that this experiment's runs can test, with our difference,
its interval, the paper's difference and a verdict.

    claims = load_claims()                          # config/paper/claims.yaml, expanded and checked
    frame = claims_table(claims, reported, meas, plan, variants)

A claim is "A does better than B on metric m" (config/paper/claims.yaml). The paper's difference is
value(A) - value(B) in the claim's table of config/paper/reported.csv (after reports.paper.derive, so the
P sweep's absolutes exist); never typed. Ours is mean(A) - mean(B) over the seeds of the two runs on one
dataset and backbone (one row per pair this experiment trains both on), with Welch's 95% interval and p
(reports/stats.py), and the verdict: reproduced (our interval on the paper's side of 0), contradicted (on
the other side) or inconclusive. Claims whose sides this experiment does not train are listed as "not run".
Beside each verdict, how many seeds of each side converged (``converged_a``/``converged_b``, "k/n" of the seeds
whose validation curve was judged, engine/convergence.py) and ``both_converged``: a verdict on runs still
learning when their schedule ended is about that schedule, not yet about the methods.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from common.cli import InputError
from common.inputs import load_yaml
from metrics.info import METRICS
from reports import paper as P
from reports.results import converged_seeds, measured_convergence
from reports.stats import TEST, difference, verdict

CLAIMS_PATH = P.REPO_ROOT / "config" / "paper" / "claims.yaml"
NOT_RUN = "not run"
KEYS = {"paper", "table", "a", "b", "below", "backbone", "metrics", "text"}


@dataclass(frozen=True)
class Claim:
    paper: str
    table: str
    a: str              # the variant the paper says does better
    b: str
    metric: str         # a metric of metrics/info.py by name (mIoU, mVC8, TC, ...)
    backbone: str       # the paper's rows to read ("" = the table's only rows of a and b)
    text: str


def _rows(reported: pd.DataFrame, table: str, variant: str, backbone: str) -> pd.DataFrame:
    sub = reported[(reported.table == table) & (reported.variant == variant)]
    return sub[sub.backbone == backbone] if backbone else sub


def load_claims(path: str | Path | None = None, reported: pd.DataFrame | None = None,
                variants: dict | None = None) -> list[Claim]:
    """The claims file expanded (``below`` = one claim per other row of the table) and checked against the
    papers' tables and the registry: a bad entry is one line naming the file and the entry."""
    path = Path(path) if path else CLAIMS_PATH
    raw = load_yaml(path, "claims file") or {}
    reported = P.load(variants=variants) if reported is None else reported
    out: list[Claim] = []
    for i, entry in enumerate(raw.get("claims", [])):
        where = f"{path}: claims/{i}"
        if not isinstance(entry, dict) or set(entry) - KEYS:
            raise InputError(f"{where}: an entry is a mapping of {', '.join(sorted(KEYS))}")
        table = entry.get("table")
        if table not in P.TABLES or P.TABLES[table].paper != entry.get("paper"):
            raise InputError(f"{where}: table {table!r} is not a table of paper {entry.get('paper')!r}")
        bad = [m for m in entry.get("metrics", []) if m not in METRICS]
        if bad or not entry.get("metrics"):
            raise InputError(f"{where}: metrics {bad or '[]'} are not metrics of metrics/info.py ({', '.join(METRICS)})")
        if "below" in entry:
            top = entry["below"]
            others = [v for v in dict.fromkeys(reported[(reported.table == table) & (reported.variant != "")].variant)
                      if v != top]
            pairs = [(top, v) for v in others]
        else:
            pairs = [(entry.get("a"), entry.get("b"))]
        for a, b in pairs:
            for side in (a, b):
                if variants is not None and side not in variants:
                    raise InputError(f"{where}: variant {side!r} is not in the registry")
            for m in entry["metrics"]:
                c = Claim(entry["paper"], table, a, b, m, entry.get("backbone", ""), entry.get("text", ""))
                for side in (a, b):
                    rows = _rows(reported, table, side, c.backbone)
                    if len(rows[rows.column == m]) != 1:
                        raise InputError(f"{where}: {table} has {len(rows[rows.column == m])} rows of {side} with a "
                                         f"{m} cell{' on ' + c.backbone if c.backbone else ''} (need exactly one)")
                if not any((o.a, o.b, o.metric) == (a, b, m) for o in out):
                    out.append(c)
    return out


def paper_difference(claim: Claim, reported: pd.DataFrame) -> tuple[float, float]:
    """(value of A, value of B) as printed (or derived from printed cells) in the claim's table."""
    def value(variant):
        rows = _rows(reported, claim.table, variant, claim.backbone)
        return float(rows[rows.column == claim.metric].value.iloc[0])
    return value(claim.a), value(claim.b)


def _both_converged(conv_a: list[dict], conv_b: list[dict]) -> bool | None:
    """False when a judged seed of either side did not converge, True when both sides were judged and every
    seed converged, else None (a side's convergence not judged)."""
    if any(not c["converged"] for c in conv_a + conv_b):
        return False
    return True if conv_a and conv_b else None


def side_not_converged(rec) -> bool:
    """A claims-table row with a judged seed of either side not converged (``both_converged`` False; None,
    where a side's convergence was not judged, is not marked): ‡ in claims.tex, hollow in the claims plot."""
    return rec.get("both_converged") is False


def claims_table(claims: list[Claim], reported: pd.DataFrame, meas, plan: dict, variants: dict) -> pd.DataFrame:
    """One row per claim and per (dataset, backbone) this experiment trains both sides on."""
    recs = []
    for c in claims:
        key = METRICS[c.metric].key
        pa, pb = paper_difference(c, reported)
        label = lambda v: variants[v].label if v in variants else v   # noqa: E731
        base = {"paper": P.PAPERS[c.paper], "table": c.table, "claim": f"{label(c.a)} > {label(c.b)}",
                "metric": c.metric, "a": c.a, "b": c.b, "paper_a": pa, "paper_b": pb, "paper_diff": pa - pb,
                "where": c.text}
        pairs = [k[:2] for k in meas.metrics if k[2] == c.a and meas.values(k, key)
                 and meas.values((k[0], k[1], c.b), key)]
        if not pairs:
            recs.append({**base, "dataset": "", "backbone": "", "verdict": NOT_RUN})
            continue
        for ds, bb in pairs:
            va, vb = meas.values((ds, bb, c.a), key), meas.values((ds, bb, c.b), key)
            d = difference(va, vb)
            conv_a = measured_convergence(plan, meas, (ds, bb, c.a))
            conv_b = measured_convergence(plan, meas, (ds, bb, c.b))
            recs.append({**base, "dataset": ds, "backbone": bb, "ours_a": sum(va) / len(va), "ours_b": sum(vb) / len(vb),
                         "ours_diff": d.diff, "ours_low": d.low, "ours_high": d.high, "p": d.p, "df": d.df,
                         "n_a": d.n_a, "n_b": d.n_b, "verdict": verdict(d, pa - pb), "test": TEST,
                         "converged_a": converged_seeds(conv_a), "converged_b": converged_seeds(conv_b),
                         "both_converged": _both_converged(conv_a, conv_b)})
    return pd.DataFrame(recs)
