# Pretrain once, fine-tune many: for each backbone the experiment marks `pretrained: {BACKBONE: {pretrain:
# VARIANT}}`, one job trains VARIANT (a single-frame registry entry) on single frames of the pretrain dataset
# and writes its encoder in the backbone's public checkpoint layout (engine/pretrain.py: the official
# SegFormer mit_b*.pth keys, mmcv's ResNetV1c keys). Every run on that backbone then starts from the file
# through engine.train --pretrained, the strict loader a downloaded mit_b1.pth goes through.
# Priorities: the data, the encoders and then training are the critical path of a run (every training job
# waits for its encoder); the complexity counts and the FPS timings need neither and fill the cores after.


rule pretrain:
    priority: 100
    input:
        data=L.pattern("checked"),
    output:
        encoder=L.pattern("encoder"),
    params:
        root=lambda wc: PLAN.roots[wc.dataset],
        out=lambda wc: L.path("pretrain", **wc),
        variant=lambda wc: PLAN.pretrain[wc.backbone],
        args=lambda wc: PLAN.pretrain_args(wc.backbone),
        model=lambda wc: PLAN.model_identity(PLAN.pretrain[wc.backbone]),   # what the job depends on
    threads: JOB_SLOTS
    resources:
        gpu=lambda wc: PLAN.run_gpus(PLAN.pretrain[wc.backbone]),   # one process: one GPU where runs use GPUs
        cpus_per_gpu=CPUS_PER_GPU,
        mem_mb=PLAN.cfg["train"]["mem_mb"],
        runtime=PLAN.cfg["train"]["runtime_min"],
    log:
        L.log("pretrain", PRETRAIN),
    benchmark:
        L.benchmark("pretrain", PRETRAIN)
    conda:
        CONDA_ENV
    shell:
        "VSS_THREADS=1 OMP_NUM_THREADS=1 MKL_NUM_THREADS=1"
        " python -m engine.pretrain --variant {params.variant:q} --backbone {wildcards.backbone:q}"
        " --dataset {wildcards.dataset:q} --root {params.root:q} --out {params.out:q} --encoder {output.encoder:q}"
        " --data-stamp {input.data:q} --on-mismatch restart {params.args} > {log:q} 2>&1"
