"""Tables of one experiment beside the papers' numbers, and the cell-by-cell paper diff.

    python -m reports.tables --experiment NAME [--results results] [--reported config/paper/reported.csv]

Writes results/NAME/tables/:
  <table>.csv/.tex   one per paper table (sdcpc_t1, sdcpc_t2, sdcpc_t3, sdcpc_p, msaf_t1, msaf_t2, msaf_t3):
                     the paper's rows and columns, each cell as paper | ours | delta; reported-only rows
                     (methods this suite does not run) marked
  cross.csv/.tex     every trained method x dataset x metric (metrics/info.py), params, GFLOPs, FPS
  complexity.csv/.tex every params/GFLOPs count of the experiment (the papers' backbones and resolutions)
  paper_diff.csv     one row per (table, row, column): paper, ours, delta, tolerance, status, reason
  tables.tex         standalone LaTeX document that \\input's every fragment
  provenance.json    commit, config hash, inputs
Missing result files are not an error: their cells read "not run" (so a partial experiment still tables); a
missing results folder is. Reading is reports/results.py, judging reports/compare.py, LaTeX reports/latex.py.
"""
from __future__ import annotations

import argparse
from pathlib import Path

import pandas as pd

from common.cli import run_cli
from common.io import write_json, write_text
from common.provenance import config_hash, git_commit
from reports import latex
from reports import paper as P
from reports.compare import Context, diff_records, paper_table, table_frame
from reports.latex import tex_escape
from reports.results import complexity_table, cross_table, gflops_key, load_inputs
from workflow.plan import Layout


def _csv(df: pd.DataFrame) -> str:
    return df.to_csv(index=False, float_format="%.4f")


def _seeds(plan: dict) -> str:
    s = plan["seeds"]
    return f"mean $\\pm$ std over seeds {', '.join(map(str, s))}" if len(s) > 1 else f"seed {s[0]}"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m reports.tables", description=__doc__.split("\n\n")[0])
    ap.add_argument("--experiment", required=True, help="experiment name (results/NAME, config/experiments/NAME.yaml)")
    ap.add_argument("--results", default="results", help="results folder (default: results)")
    ap.add_argument("--reported", default=None, help="the papers' numbers (default: config/paper/reported.csv)")
    a = ap.parse_args(argv)

    plan, variants, reported, meas = load_inputs(a.experiment, a.results, a.reported)
    gkey = gflops_key(plan)
    layout = Layout(Path(a.results) / plan["experiment"])
    out = lambda name: layout.path("table", name=name)  # noqa: E731
    stamp = f"commit {git_commit() or 'unknown'}, config hash {config_hash(plan)}"

    diff, fragments = [], []
    for table, info in P.TABLES.items():
        cols, rows = paper_table(table, reported, Context(info, meas, variants, plan, gkey))
        write_text(out(f"{table}.csv"), _csv(table_frame(cols, rows)))
        caption = latex.paper_caption(table, cols, rows, plan, gkey, stamp)
        write_text(out(f"{table}.tex"), f"% {stamp}\n" + latex.paper_tex(table, cols, rows, variants, caption))
        fragments.append(table)
        diff += diff_records(table, rows)
    write_text(out("paper_diff.csv"), _csv(pd.DataFrame(diff)))

    cross = cross_table(plan, meas, variants)
    write_text(out("cross.csv"), _csv(cross))
    devices = ", ".join(sorted(meas.devices)) or "not measured"
    flows = ", ".join(sorted(set(meas.flow.values()))) or "not measured"
    caption = (f"Every trained method, dataset and metric under one protocol (experiment "
               f"{tex_escape(plan['experiment'])}). Accuracy in percent, {_seeds(plan)}; TC flow: "
               f"{tex_escape(flows)}; Params (M) and GFLOPs at the dataset's test size ({tex_escape(latex.COUNTING)}; "
               f"{latex.convention(gkey)}); FPS on "
               f"{tex_escape(devices)}, batch 1. mIoU as each dataset's benchmark averages it: "
               + tex_escape("; ".join(f"{latex.dataset_label(d)}: {latex.miou_definition(d)}"
                                      for d in sorted({r["dataset"] for r in plan["runs"]})))
               + f". Best per dataset in bold. \\texttt{{{tex_escape(stamp)}}}")
    write_text(out("cross.tex"), f"% {stamp}\n" + latex.cross_tex(cross, caption))
    comp = complexity_table(plan, meas, variants)
    write_text(out("complexity.csv"), _csv(comp))
    caption = (f"Params (M, inference only; training-only modules apart) and GFLOPs of every count in experiment "
               f"{tex_escape(plan['experiment'])}: {tex_escape(latex.COUNTING)}; the paper convention = module "
               f"hooks over the clip + one frame's analytic attention. \\texttt{{{tex_escape(stamp)}}}")
    write_text(out("complexity.tex"), f"% {stamp}\n" + latex.complexity_tex(comp, caption))
    fragments += ["cross", "complexity"]

    write_text(out("tables.tex"), latex.standalone(plan["experiment"], stamp, fragments))
    counts = pd.DataFrame(diff).status.value_counts().to_dict() if diff else {}
    write_json(out("provenance.json"), {"git_commit": git_commit(), "config_hash": config_hash(plan),
                                        "experiment": plan["experiment"], "variants_file": plan["variants_file"],
                                        "reported": str(a.reported or P.REPORTED_PATH), "status_counts": counts})
    print(f"tables: {len(fragments)} tables, {len(diff)} paper cells ({', '.join(f'{k} {v}' for k, v in counts.items())})"
          f" -> {out('')}")
    return 0


if __name__ == "__main__":
    run_cli(main)
