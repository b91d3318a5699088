# Training: one job per (dataset, backbone, variant, seed). engine.train checkpoints every K iterations into
# the run folder; checkpoint.pt is not a declared output, so an interrupted job resumes from it. A job that
# reruns because its settings, its data or its model changed finds a checkpoint written under others:
# --on-mismatch restart drops it (engine.train compares the training config, the data stamp and the model).
# Settings are the run's own: the experiment's train block with its family's and its variant's layers over it
# (workflow/plan.py train_settings), and the weights its backbone starts from (an input: a user's file, or
# the pretrain stage's encoder, which then runs first). `gpus: N` >= 2 starts N DDP processes with torchrun
# and asks the executor for N GPUs.


rule train:
    priority: 50
    input:
        data=L.pattern("checked"),
        pretrained=PLAN.pretrained_input,
    output:
        model=L.pattern("model"),
        log=L.pattern("train_log"),
    params:
        launch=lambda wc: PLAN.train_launcher(wc.variant),
        root=lambda wc: PLAN.roots[wc.dataset],
        out=lambda wc: L.path("run", **wc),
        args=lambda wc: PLAN.train_args(wc.variant, wc.backbone),
        model=lambda wc: PLAN.model_identity(wc.variant),   # not in the command: what the job depends on
    threads: JOB_SLOTS
    resources:
        gpu=lambda wc: PLAN.train_gpus(wc.variant),
        cpus_per_gpu=CPUS_PER_GPU,
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
        " {params.launch:q} -m engine.train --variant {wildcards.variant:q} --backbone {wildcards.backbone:q}"
        " --dataset {wildcards.dataset:q} --root {params.root:q} --out {params.out:q} --seed {wildcards.seed:q}"
        " --data-stamp {input.data:q} --on-mismatch restart {params.args} > {log:q} 2>&1"
