# Training: one job per (dataset, backbone, variant, seed). engine.train checkpoints every K iterations into
# the run folder; checkpoint.pt is not a declared output, so an interrupted job resumes from it. A job that
# reruns because its settings or its data changed finds a checkpoint written under other settings:
# --on-mismatch restart drops it (engine.train compares the training config and the data stamp).
# Settings are the run's own: the experiment's train block with its family's and its variant's layers over it
# (workflow/plan.py train_settings), and the weights its backbone starts from (an input: a user's file, or
# the pretrain stage's encoder, which then runs first).


rule train:
    priority: 50
    input:
        data=L.pattern("checked"),
        pretrained=PLAN.pretrained_input,
    output:
        model=L.pattern("model"),
        log=L.pattern("train_log"),
    params:
        root=lambda wc: PLAN.roots[wc.dataset],
        out=lambda wc: L.path("run", **wc),
        args=lambda wc: PLAN.train_args(wc.variant, wc.backbone),
    threads: JOB_SLOTS
    resources:
        gpu=GPUS,
        mem_mb=lambda wc: PLAN.train_resource(wc.variant, "mem_mb"),
        runtime=lambda wc: PLAN.train_resource(wc.variant, "runtime_min"),
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
