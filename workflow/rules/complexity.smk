# Params and GFLOPs (fvcore + the papers' convention) of one variant on one backbone at one input size.
# Needs no data and no training: random weights count the same. Each job declares its peak memory
# (common/families.py), so the profile's mem_mb keeps heavy counts from running side by side.


rule count_complexity:
    output:
        L.pattern("complexity"),
    params:
        model=lambda wc: PLAN.model_identity(wc.variant),   # not in the command: what the job depends on
    threads: JOB_SLOTS
    resources:
        mem_mb=lambda wc: PLAN.count_mem_mb(wc.backbone, int(wc.height), int(wc.width)),
        runtime=60,   # the largest count (dilated ResNet-101 at 1024x2048) takes about a CPU-minute
    log:
        L.log("complexity", COUNT),
    benchmark:
        L.benchmark("complexity", COUNT)
    conda:
        CONDA_ENV
    shell:
        "VSS_THREADS=1 OMP_NUM_THREADS=1 MKL_NUM_THREADS=1"
        " python -m metrics.complexity --variant {wildcards.variant:q} --backbone {wildcards.backbone:q}"
        " --dataset {wildcards.dataset:q} --height {wildcards.height:q} --width {wildcards.width:q}"
        " --out {output:q} > {log:q} 2>&1"
