# FPS of each trained variant at its dataset's test size, on this machine. One job per (dataset, backbone)
# times all of its variants one after the other (engine.fps takes several): one start-up instead of one per
# variant, and every timing of a table row group comes from the same process. The group's folder is the
# job's output: a new or changed variant in the group changes the job's params, so the whole group is timed
# again. A timing job claims every core so nothing runs beside it (on SLURM: a node of its own,
# `--exclusive`), and uses the machine's cores (engine.fps records the thread count). Timings are only
# comparable within one run: see the table captions.


rule fps:
    output:
        directory(L.pattern("fps_group")),
    params:
        variants=lambda wc: PLAN.fps_groups()[(wc.dataset, wc.backbone)],
        out=lambda wc, output: [f"{output[0]}/{v}.json" for v in PLAN.fps_groups()[(wc.dataset, wc.backbone)]],
        size=lambda wc: PLAN.test_size(wc.dataset),
        args=PLAN.fps_args(),
        models=lambda wc: PLAN.group_identity(wc.dataset, wc.backbone),   # what the job depends on
    threads: CORES or 1   # every local core; on a cluster (no --cores) one CPU on a node of its own
    resources:
        gpu=lambda wc: PLAN.run_gpus(PLAN.fps_groups()[(wc.dataset, wc.backbone)]),
        cpus_per_gpu=CPUS_PER_GPU,
        mem_mb=2000,
        runtime=60,
        slurm_extra="--exclusive",
    log:
        L.log("fps", GROUP),
    benchmark:
        L.benchmark("fps", GROUP)
    conda:
        CONDA_ENV
    shell:
        "python -m engine.fps --variant {params.variants:q} --backbone {wildcards.backbone:q}"
        " --dataset {wildcards.dataset:q} --height {params.size[0]} --width {params.size[1]} {params.args}"
        " --out {params.out:q} > {log:q} 2>&1"
