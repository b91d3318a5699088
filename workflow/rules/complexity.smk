# Params and GFLOPs (fvcore + the papers' convention) of one variant on one backbone at one input size.
# Needs no data and no training: random weights count the same. Each job declares its peak memory
# (common/families.py), so the profile's mem_mb keeps heavy counts from running side by side.


rule count_complexity:
    output:
        L.pattern("complexity"),
    threads: JOB_SLOTS
    resources:
        mem_mb=lambda wc: PLAN.count_mem_mb(wc.backbone, int(wc.height), int(wc.width)),
    log:
        L.log("complexity", COUNT),
    benchmark:
        L.benchmark("complexity", COUNT)
    conda:
        CONDA_ENV
    shell:
        "VSS_THREADS=1 OMP_NUM_THREADS=1 MKL_NUM_THREADS=1"
        " python -m metrics.complexity --variant {wildcards.variant} --backbone {wildcards.backbone}"
        " --dataset {wildcards.dataset} --height {wildcards.height} --width {wildcards.width}"
        " --out {output} > {log} 2>&1"
