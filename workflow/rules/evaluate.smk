# Per trained run: predict the split (PNG folder, atomic) and score it (every metric of metrics/info.py), in
# one process (engine.validate = engine.infer then metrics.evaluate; one torch start-up per run, not two).


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
        gpu=GPUS,
        mem_mb=PLAN.cfg["train"]["mem_mb"],
    log:
        L.log("evaluate", RUN),
    benchmark:
        L.benchmark("evaluate", RUN)
    conda:
        CONDA_ENV
    shell:
        "VSS_THREADS=1 OMP_NUM_THREADS=1 MKL_NUM_THREADS=1"
        " python -m engine.validate --checkpoint {input.model} --dataset {wildcards.dataset} --root {params.root}"
        " --pred {output.pred} --out {output.metrics} {params.args} {params.scale} > {log} 2>&1"
