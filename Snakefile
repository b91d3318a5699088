# vss-bench: from nothing to tables, plots and a paper diff.
#
#   snakemake --cores 8 tables                                   embedded default (synthetic, CPU, ~25 min)
#   snakemake --cores 8 tables --config experiment=smoke         CI-sized
#   snakemake --cores 8 tables --config experiment=vspw root=/data/VSPW_480p
#
# The experiment (config/experiments/NAME.yaml; every key in config/README.md) is turned into an explicit
# job list by workflow/plan.py, which also holds the one set of path templates (Layout) the rules below and
# the report CLIs share. A wrong name is one line before any job runs. Every rule is a thin call of a CLI
# (docs/pipeline.md); outputs go to results/<experiment>/.
import os
import sys

from snakemake.utils import min_version

min_version("9.0")

sys.path.insert(0, workflow.basedir)  # the top-level folders are packages from the repo root

from common.families import BACKBONES
from common.lock import hold_or_exit
from videos.info import DATASET_NAMES
from workflow.plan import GROUP, PRETRAIN, RUN, Plan, PlanError


configfile: "config/config.yaml"


report: "workflow/report/workflow.rst"  # `snakemake --report report.html`: tables and plots with captions


onstart:  # one run per results folder: another clone writing into it is refused in one line
    hold_or_exit(PLAN.dir)


try:
    PLAN = Plan(config)
except PlanError as e:  # one line, before any job
    sys.stderr.write(f"error: {e}\n")
    sys.exit(1)

L = PLAN.layout
# Every command reads the experiment's variant registry through $VSS_VARIANTS (models.registry.registry_file).
# Set here, local jobs inherit it; `envvars` hands it on to jobs of a distributed executor.
os.environ["VSS_VARIANTS"] = PLAN.variants_path


envvars:
    "VSS_VARIANTS",


# Scheduler slots per job: with --cores larger than the machine (8 on 2 CPUs) each job claims
# cores // cpus slots so no more jobs run than there are CPUs; each process itself runs 1 thread.
# `workflow.resource_settings.cores` is --cores as given, None where a command needs none (--dag, --report,
# --summary, --list-changes, a cluster executor); `workflow.cores` would stop those at parse time.
CPUS = os.cpu_count() or 1
CORES = workflow.resource_settings.cores
JOB_SLOTS = max(1, (CORES or CPUS) // CPUS)
# GPU jobs on a cluster: CPUs per GPU for engine.train's data loader (4 workers per process on CUDA,
# engine/config.py) plus the process itself; a site profile may lower it (--set-resources train:cpus_per_gpu=4)
CPUS_PER_GPU = 8
CONDA_ENV = "../envs/vss-bench.yaml"  # relative to workflow/rules/


wildcard_constraints:
    variant="|".join(sorted(PLAN.variants, key=len, reverse=True)),
    dataset="|".join(DATASET_NAMES),
    backbone="|".join(sorted(BACKBONES, key=len, reverse=True)),
    seed=r"\d+",
    height=r"\d+",
    width=r"\d+",


include: "workflow/rules/data.smk"
include: "workflow/rules/pretrain.smk"
include: "workflow/rules/train.smk"
include: "workflow/rules/evaluate.smk"
include: "workflow/rules/complexity.smk"
include: "workflow/rules/fps.smk"
include: "workflow/rules/report.smk"


localrules:
    all,
    tables,
    complexity,
    plan,


rule all:
    input:
        rules.tables.input,


rule complexity:
    """Only the params/GFLOPs counts (no training)."""
    input:
        PLAN.complexity_dirs(),
