# Per trained run: predict the split (PNG folder, atomic) and score it (every metric of metrics/info.py), in
# one process (engine.validate = engine.infer then metrics.evaluate; one torch start-up per run, not two).
# One GPU where the run trained on GPUs.


rule evaluate:
    priority: 40
    input:
        model=L.pattern("model"),
        data=L.pattern("checked"),
    output:
        pred=directory(L.pattern("pred")),
        metrics=L.pattern("metrics"),
    params:
        root=lambda wc: PLAN.roots[wc.dataset],
        args=PLAN.evaluate_args(),
        scale=lambda wc: PLAN.test_scale_args(wc.dataset),
    threads: JOB_SLOTS
    resources:
        gpu=lambda wc: PLAN.run_gpus(wc.variant),
        cpus_per_gpu=CPUS_PER_GPU,
        mem_mb=lambda wc: PLAN.train_resource(wc.variant, "mem_mb"),
        runtime=PLAN.cfg["evaluate"]["runtime_min"],
    log:
        L.log("evaluate", RUN),
    benchmark:
        L.benchmark("evaluate", RUN)
    conda:
        CONDA_ENV
    shell:
        "VSS_THREADS=1 OMP_NUM_THREADS=1 MKL_NUM_THREADS=1"
        " python -m engine.validate --checkpoint {input.model:q} --dataset {wildcards.dataset:q}"
        " --root {params.root:q} --pred {output.pred:q} --out {output.metrics:q} {params.args} {params.scale}"
        " > {log:q} 2>&1"
