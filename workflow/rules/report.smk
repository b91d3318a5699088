# Tables (CSV + LaTeX + paper_diff.csv) and plots from every result of the experiment.
import json as _json

PLAN_JSON = _json.dumps(PLAN.to_json(), sort_keys=True)
from reports.paper import TABLES as _PAPER_TABLES

TABLES = [f"{R}/tables/{name}.{ext}" for name in (*_PAPER_TABLES, "cross", "complexity") for ext in ("csv", "tex")]
TABLES += [f"{R}/tables/{name}" for name in ("paper_diff.csv", "tables.tex", "provenance.json")]
PLOTS = [f"{R}/plots/{name}.{ext}" for name in ("tradeoff", "p_sweep", "ablation", "training", "qualitative")
         for ext in ("png", "pdf")]


rule plan:
    """The resolved experiment (with --config overrides) for the report CLIs; rewritten only when it changes
    (Snakemake reruns a job whose params changed)."""
    output:
        f"{R}/plan.json",
    params:
        plan=PLAN_JSON,
    run:
        from common.io import write_text

        write_text(output[0], params.plan + "\n")


def qualitative_preds(wildcards=None):
    """Seed-0 predictions of the variants the qualitative strip shows (those this experiment trains)."""
    q = PLAN.cfg.get("report", {}).get("qualitative", {})
    want = q.get("variants", [])
    seed = PLAN.seeds[0]
    return [f"{PLAN.run_dir(r, seed)}/pred" for r in PLAN.runs
            if r.variant in want and r.dataset == q.get("dataset")]


rule report_tables:
    input:
        plan=f"{R}/plan.json",
        reported="config/paper/reported.csv",
        metrics=PLAN.metrics_files(),
        complexity=PLAN.complexity_files(),
        fps=PLAN.fps_files(),
    output:
        TABLES,
    log:
        f"{R}/logs/report/tables.log",
    shell:
        "python -m reports.tables --experiment {PLAN.experiment} --results {PLAN.results} > {log} 2>&1"


rule report_plots:
    input:
        plan=f"{R}/plan.json",
        reported="config/paper/reported.csv",
        metrics=PLAN.metrics_files(),
        logs=PLAN.train_logs(),
        complexity=PLAN.complexity_files(),
        fps=PLAN.fps_files(),
        preds=qualitative_preds,
    output:
        PLOTS,
    log:
        f"{R}/logs/report/plots.log",
    shell:
        "MPLBACKEND=Agg python -m reports.plots --experiment {PLAN.experiment} --results {PLAN.results} > {log} 2>&1"


rule tables:
    """Everything: tables, plots and the paper diff of the chosen experiment."""
    input:
        TABLES,
        PLOTS,
