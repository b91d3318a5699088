# vss-bench: from nothing to tables, plots and a paper diff.
#
#   snakemake --cores 8 tables                                   embedded default (synthetic, CPU, ~25 min)
#   snakemake --cores 8 tables --config experiment=smoke         CI-sized
#   snakemake --cores 8 tables --config experiment=vspw root=/data/VSPW_480p
#
# The experiment (config/experiments/NAME.yaml) is turned into an explicit job list by workflow/plan.py
# (validated by config/schemas/experiment.schema.yaml; a wrong name is one line before any job runs).
# Every rule is a thin call of a CLI (docs/architecture.md); outputs go to results/<experiment>/.
import os
import sys

sys.path.insert(0, workflow.basedir)  # the top-level folders are packages from the repo root

from common.lock import hold_or_exit
from workflow.plan import FAMILY_BACKBONES, Plan, PlanError, cli_flags, gpu_count


configfile: "config/config.yaml"


onstart:  # one run per results folder: another clone writing into it is refused in one line
    hold_or_exit(PLAN.dir)


try:
    PLAN = Plan(config)
except PlanError as e:  # one line, before any job
    sys.stderr.write(f"error: {e}\n")
    sys.exit(1)

R = str(PLAN.dir)
EVAL = PLAN.cfg.get("evaluate", {})
TRAIN = PLAN.cfg.get("train", {})
FPS = PLAN.cfg.get("fps", {})
GPUS = 1 if gpu_count() > 0 else 0  # the `gpu` resource a rule holds; the profile says how many exist
# Scheduler slots per job: with --cores larger than the machine (8 on 2 CPUs) each job claims
# cores // cpus slots so no more jobs run than there are CPUs; each process itself runs 1 thread.
CPUS = os.cpu_count() or 1
JOB_SLOTS = max(1, workflow.cores // CPUS) if GPUS == 0 else 1
# The registry every job reads (--config variants_file=...): exported as $VSS_VARIANTS and passed as --registry
# to the CLIs that declare that flag (found in their source, see workflow/plan.py).
REGISTRY_ENV = f"VSS_VARIANTS={PLAN.variants_path}"
THREAD_ENV = f"{REGISTRY_ENV} VSS_THREADS=1 OMP_NUM_THREADS=1 MKL_NUM_THREADS=1"
REGISTRY_FLAG = {m: (f"--registry {PLAN.variants_path}" if "--registry" in cli_flags(m) else "")
                 for m in ("engine.train", "engine.infer", "engine.fps", "metrics.complexity")}


wildcard_constraints:
    variant="|".join(sorted(PLAN.variants, key=len, reverse=True)),
    dataset="synthetic|vspw|cityscapes|camvid",
    backbone="|".join(sorted({b for bbs in FAMILY_BACKBONES.values() for b in bbs}, key=len, reverse=True)),
    seed=r"\d+",
    height=r"\d+",
    width=r"\d+",


include: "workflow/rules/data.smk"
include: "workflow/rules/train.smk"
include: "workflow/rules/evaluate.smk"
include: "workflow/rules/complexity.smk"
include: "workflow/rules/fps.smk"
include: "workflow/rules/report.smk"


localrules: all, tables, complexity, plan


rule all:
    input:
        rules.tables.input,


rule complexity:
    """Only the params/GFLOPs counts (no training)."""
    input:
        PLAN.complexity_files(),
