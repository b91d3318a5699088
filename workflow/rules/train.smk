# Training: one job per (dataset, backbone, variant, seed). engine.train checkpoints every K iterations into
# the run folder; checkpoint.pt is not a declared output, so an interrupted job resumes from it. A job that
# reruns because its settings or its data changed finds a checkpoint written under other settings:
# --on-mismatch restart drops it (engine.train compares the training config and the data stamp).


rule train:
    input:
        data=L.pattern("checked"),
    output:
        model=L.pattern("model"),
        log=L.pattern("train_log"),
    params:
        root=lambda wc: PLAN.roots[wc.dataset],
        out=lambda wc: L.path("run", **wc),
        args=PLAN.train_args(),
    threads: JOB_SLOTS
    resources:
        gpu=GPUS,
        mem_mb=PLAN.cfg["train"]["mem_mb"],
        runtime=PLAN.cfg["train"]["runtime_min"],
    log:
        L.log("train", RUN),
    benchmark:
        L.benchmark("train", RUN)
    conda:
        CONDA_ENV
    shell:
        "VSS_THREADS=1 OMP_NUM_THREADS=1 MKL_NUM_THREADS=1"
        " python -m engine.train --variant {wildcards.variant} --backbone {wildcards.backbone}"
        " --dataset {wildcards.dataset} --root {params.root} --out {params.out} --seed {wildcards.seed}"
        " --data-stamp {input.data} --on-mismatch restart {params.args} > {log} 2>&1"
