# Tables (CSV + LaTeX + paper_diff.csv) and plots from every result of the experiment. The report CLIs read
# the plan (plan.json) and find every result through the same path templates (workflow/plan.py Layout).
import json as _json

from reports.paper import TABLES as _PAPER_TABLES
from reports import OWN_TABLES as _OWN_TABLES, PLOTS as _PLOTS
from common.codeversion import report_code_version
from workflow.plan import report_entry

TABLES = [L.path("table", name=f"{name}.{ext}") for name in (*_PAPER_TABLES, *_OWN_TABLES)
          for ext in ("csv", "tex")]
TABLES += [L.path("table", name=name) for name in ("paper_diff.csv", "tables.tex", "provenance.json")]
PLOTS = [L.path("plot", name=f"{name}.{ext}") for name in _PLOTS for ext in ("png", "pdf")]
# `snakemake --report report.html`: every CSV table and PNG plot with its caption (workflow/report/*.rst)
_TITLES = {name: t.title for name, t in _PAPER_TABLES.items()}
REPORTED = [report(p, **e) if (e := report_entry(p, _TITLES)) else p for p in TABLES + PLOTS]


rule plan:
    """The resolved experiment (with --config overrides) for the report CLIs; rewritten only when it changes
    (Snakemake reruns a job whose params changed)."""
    output:
        L.path("plan"),
    params:
        plan=_json.dumps(PLAN.to_json(), sort_keys=True),
    log:
        L.log("report", "plan"),
    run:
        from common.io import write_text

        write_text(output[0], f"{params.plan}\n")
        write_text(log[0], f"wrote {output[0]}\n")


rule report_tables:
    input:
        plan=L.path("plan"),
        reported="config/paper/reported.csv",
        metrics=PLAN.run_files("metrics"),
        logs=PLAN.run_files("train_log"),
        encoders=PLAN.encoder_files(),
        claims="config/paper/claims.yaml",
        complexity=PLAN.complexity_dirs(),
        fps=PLAN.fps_dirs(),
    output:
        REPORTED[: len(TABLES)],
    params:
        experiment=PLAN.experiment,
        results=PLAN.results,
        code=report_code_version(),   # not in the command: a changed report module redraws (common/codeversion.py)
    log:
        L.log("report", "tables"),
    conda:
        CONDA_ENV
    shell:
        "python -m reports.tables --experiment {params.experiment:q} --results {params.results:q} > {log:q} 2>&1"


rule report_plots:
    input:
        plan=L.path("plan"),
        reported="config/paper/reported.csv",
        metrics=PLAN.run_files("metrics"),
        logs=PLAN.run_files("train_log"),
        encoders=PLAN.encoder_files(),
        claims="config/paper/claims.yaml",
        complexity=PLAN.complexity_dirs(),
        fps=PLAN.fps_dirs(),
        preds=PLAN.qualitative_preds(),
    output:
        REPORTED[len(TABLES) :],
    params:
        experiment=PLAN.experiment,
        results=PLAN.results,
        code=report_code_version(),   # not in the command: a changed report module redraws (common/codeversion.py)
    log:
        L.log("report", "plots"),
    conda:
        CONDA_ENV
    shell:
        "MPLBACKEND=Agg python -m reports.plots --experiment {params.experiment:q} --results {params.results:q}"
        " > {log:q} 2>&1"


rule tables:
    """Everything: tables, plots and the paper diff of the chosen experiment."""
    input:
        TABLES,
        PLOTS,
