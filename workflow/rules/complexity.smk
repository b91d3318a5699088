# Params and GFLOPs (fvcore + the papers' convention) of every (variant, input size) of one backbone on one
# dataset, in one process: the torch start-up and fvcore's first trace are paid once per group, not once per
# count (the default's counts are about a quarter of the CPU time they took one job each). Needs no data and
# no training: random weights count the same. The group's folder is the job's output (one JSON per count
# inside, workflow/plan.py Layout "complexity"): a new variant changes the job's params and the group is
# counted again. A job declares its largest count's peak memory (common/families.py), so the profile's
# mem_mb keeps heavy counts from running side by side.


rule count_complexity:
    output:
        directory(L.pattern("complexity_group")),
    params:
        counts=lambda wc, output: PLAN.count_group_args(wc.dataset, wc.backbone, output[0]),
        models=lambda wc: PLAN.count_group_identity(wc.dataset, wc.backbone),   # what the job depends on
    threads: JOB_SLOTS
    resources:
        mem_mb=lambda wc: PLAN.count_group_mem_mb(wc.dataset, wc.backbone),
        runtime=60,   # the largest group (dilated ResNets at 1024x2048) takes a few CPU-minutes
    log:
        L.log("complexity", GROUP),
    benchmark:
        L.benchmark("complexity", GROUP)
    conda:
        CONDA_ENV
    shell:
        "VSS_THREADS=1 OMP_NUM_THREADS=1 MKL_NUM_THREADS=1"
        " python -m metrics.complexity --backbone {wildcards.backbone:q} --dataset {wildcards.dataset:q}"
        " {params.counts} > {log:q} 2>&1"
