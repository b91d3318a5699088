"""Tables of one experiment beside the papers' numbers, and the cell-by-cell paper diff.

    python -m reports.tables --experiment NAME [--results results] [--reported config/paper/reported.csv]

Writes results/NAME/tables/:
  <table>.csv/.tex   one per paper table (sdcpc_t1, sdcpc_t2, sdcpc_t3, sdcpc_p, msaf_t1, msaf_t2, msaf_t3):
                     the paper's rows and columns, each cell as paper | ours | delta; reported-only rows
                     (methods this suite does not run) marked
  cross.csv/.tex     every trained method x dataset x metric (metrics/info.py): mean, std, 95% half-width,
                     n, converged seeds; params, GFLOPs, FPS
  complexity.csv/.tex every params/GFLOPs count of the experiment (the papers' backbones and resolutions)
  convergence.csv/.tex per run and seed (and per pretrained encoder): the validation curve, its change over
                     the last quarter of the schedule, converged (engine/convergence.py)
  per_class.csv/.tex per run: every class's IoU, mean and 95% half-width over seeds (the .tex: the main rows)
  claims.csv/.tex    each testable claim of the papers: the paper's difference, ours with its 95% interval,
                     p and a verdict (reports/claims.py, reports/stats.py)
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
from reports import OWN_TABLES, latex
from reports import paper as P
from reports.claims import claims_table, load_claims
from reports.compare import Context, diff_records, paper_table, table_frame
from reports.latex import tex_escape
from reports.results import (complexity_table, convergence_table, cross_table, gflops_key, load_inputs,
                             per_class_table)
from reports.stats import TEST
from workflow.plan import Layout


def _csv(df: pd.DataFrame) -> str:
    return df.to_csv(index=False, float_format="%.4f")


def _seeds(frame: pd.DataFrame) -> str:
    ns = sorted({int(n) for n in frame.get("seeds", []) if n and n > 1})
    return (f"mean $\\pm$ half-width of the 95\\% t-interval over n = {', '.join(map(str, ns))} seeds (n and the "
            "converged seeds beside each row)" if ns else "one seed (no interval)")


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
               f"{tex_escape(plan['experiment'])}). Accuracy in percent, {_seeds(cross)}; TC flow: "
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

    conv = convergence_table(plan, meas, variants)
    write_text(out("convergence.csv"), _csv(conv))
    caption = (f"Convergence of every run of experiment {tex_escape(plan['experiment'])}: validation mIoU at the "
               "checkpoints of the schedule (convergence.csv has the curve and the jitter); converged = it moves "
               "by less than 1 point over the last quarter: the least-squares trend of the validated points there "
               f"(the final model included) over the quarter's length. \\texttt{{{tex_escape(stamp)}}}")
    write_text(out("convergence.tex"), f"% {stamp}\n" + latex.convergence_tex(conv, caption))
    per_class = per_class_table(plan, meas, variants)
    write_text(out("per_class.csv"), _csv(per_class))
    main = plan["report"].get("main") or [r["variant"] for r in plan["runs"]]
    shown = per_class[per_class.variant.isin(main)] if len(per_class) else per_class
    caption = (f"Per-class IoU (\\%) of the main rows of experiment {tex_escape(plan['experiment'])}, "
               f"{_seeds(shown.drop_duplicates(['variant', 'backbone']) if len(shown) else shown)}; "
               "$^\\circ$ a background class (every other class is an object). Every run: per\\_class.csv. "
               f"\\texttt{{{tex_escape(stamp)}}}")
    write_text(out("per_class.tex"), f"% {stamp}\n" + latex.per_class_tex(shown, caption))
    claims = claims_table(load_claims(reported=reported, variants=variants), reported, meas, plan, variants)
    write_text(out("claims.csv"), _csv(claims))
    verdicts = claims.verdict.value_counts().to_dict() if len(claims) else {}
    caption = (f"Each claim of the two papers this experiment can test. Paper: the printed difference A $-$ B "
               f"(config/paper/reported.csv); ours: mean(A) $-$ mean(B) over seeds on this experiment's data with "
               f"its 95\\% interval; verdict by {tex_escape(TEST)}: reproduced when the interval lies on the "
               "paper's side of 0, contradicted when on the other side, otherwise inconclusive; "
               "$\\ddagger$: seeds of a side had not converged when the schedule ended (their validation mIoU still "
               "moved by 1 point or more over its last quarter; converged\\_a/\\_b in claims.csv). "
               f"\\texttt{{{tex_escape(stamp)}}}")
    write_text(out("claims.tex"), f"% {stamp}\n" + latex.claims_tex(claims, caption))
    fragments += list(OWN_TABLES)

    write_text(out("tables.tex"), latex.standalone(plan["experiment"], stamp, fragments))
    counts = pd.DataFrame(diff).status.value_counts().to_dict() if diff else {}
    write_json(out("provenance.json"), {"git_commit": git_commit(), "config_hash": config_hash(plan),
                                        "experiment": plan["experiment"], "variants_file": plan["variants_file"],
                                        "reported": str(a.reported or P.REPORTED_PATH), "status_counts": counts,
                                        "verdicts": verdicts})
    print(f"tables: {len(fragments)} tables, {len(diff)} paper cells ({', '.join(f'{k} {v}' for k, v in counts.items())})"
          f"; {len(claims)} claims ({', '.join(f'{k} {v}' for k, v in verdicts.items())}) -> {out('')}")
    return 0


if __name__ == "__main__":
    run_cli(main)
