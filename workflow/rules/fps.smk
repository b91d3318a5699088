# FPS of each trained variant at its dataset's test size, on this machine. One job per (dataset, backbone)
# times all of its variants one after the other (engine.fps takes several): one start-up instead of one per
# variant, and every timing of a table row group comes from the same process. The group's folder is the
# job's output: a new variant in the group changes the job's params, so the whole group is timed again.
# A timing job claims every core so nothing runs beside it, and uses the machine's cores (engine.fps
# records the thread count). Timings are only comparable within one run: see the table captions.


rule fps:
    output:
        directory(L.pattern("fps_group")),
    params:
        variants=lambda wc: " ".join(PLAN.fps_groups()[(wc.dataset, wc.backbone)]),
        out=lambda wc, output: " ".join(f"{output[0]}/{v}.json" for v in PLAN.fps_groups()[(wc.dataset, wc.backbone)]),
        size=lambda wc: "--height {} --width {}".format(*PLAN.test_size(wc.dataset)),
        args=PLAN.fps_args(),
    threads: workflow.cores
    resources:
        gpu=GPUS,
        mem_mb=2000,
    log:
        L.log("fps", GROUP),
    benchmark:
        L.benchmark("fps", GROUP)
    conda:
        CONDA_ENV
    shell:
        "python -m engine.fps --variant {params.variants} --backbone {wildcards.backbone}"
        " --dataset {wildcards.dataset} {params.size} {params.args} --out {params.out} > {log} 2>&1"
