# FPS of each trained variant at its dataset's test size, on this machine. A timing job claims every core
# so nothing else runs beside it, and uses the machine's cores (engine.fps records the thread count). Timings
# are only comparable within one run: see the table captions.


rule fps:
    output:
        f"{R}/fps/{{dataset}}/{{backbone}}/{{variant}}.json",
    params:
        size=lambda wc: "--height {} --width {}".format(*PLAN.test_size(wc.dataset)),
        warmup=FPS.get("warmup", 5),
        iters=FPS.get("iters", 200),
        extra=REGISTRY_FLAG["engine.fps"],
    threads: workflow.cores
    resources:
        gpu=GPUS,
        mem_mb=2000,
    log:
        f"{R}/logs/fps/{{dataset}}/{{backbone}}/{{variant}}.log",
    shell:
        "{REGISTRY_ENV} python -m engine.fps --variant {wildcards.variant} --backbone {wildcards.backbone}"
        " --dataset {wildcards.dataset} {params.size} --warmup {params.warmup} --iters {params.iters}"
        " --out {output} {params.extra} > {log} 2>&1"
