# Inference (prediction PNGs, one atomic folder) and metrics (mIoU, WIoU, mVC8, mVC16, TC).


rule infer:
    input:
        model=f"{R}/runs/{{dataset}}/{{backbone}}/{{variant}}/seed{{seed}}/model.pt",
        data=f"{R}/data/{{dataset}}.checked",
    output:
        directory(f"{R}/runs/{{dataset}}/{{backbone}}/{{variant}}/seed{{seed}}/pred"),
    params:
        root=lambda wc: PLAN.roots[wc.dataset],
        split=EVAL.get("split", "val"),
        extra=REGISTRY_FLAG["engine.infer"],
    threads: JOB_SLOTS
    resources:
        gpu=GPUS,
        mem_mb=TRAIN.get("mem_mb", 2000),
    log:
        f"{R}/logs/infer/{{dataset}}/{{backbone}}/{{variant}}/seed{{seed}}.log",
    shell:
        "{THREAD_ENV} python -m engine.infer --checkpoint {input.model} --dataset {wildcards.dataset}"
        " --root {params.root} --split {params.split} --pred {output} {params.extra} > {log} 2>&1"


rule evaluate:
    input:
        pred=f"{R}/runs/{{dataset}}/{{backbone}}/{{variant}}/seed{{seed}}/pred",
    output:
        f"{R}/runs/{{dataset}}/{{backbone}}/{{variant}}/seed{{seed}}/metrics.json",
    params:
        root=lambda wc: PLAN.roots[wc.dataset],
        split=EVAL.get("split", "val"),
        flow=EVAL.get("tc_flow", "gt"),
        vc=(f"--vc-min-frames {EVAL['vc_min_frames']}" if "vc_min_frames" in EVAL else "")
        + (f" --tc-videos {EVAL['tc_videos']}" if "tc_videos" in EVAL else ""),
    threads: JOB_SLOTS
    resources:
        mem_mb=1000,
    log:
        f"{R}/logs/evaluate/{{dataset}}/{{backbone}}/{{variant}}/seed{{seed}}.log",
    shell:
        "{THREAD_ENV} python -m metrics.evaluate --dataset {wildcards.dataset} --root {params.root}"
        " --split {params.split} --pred {input.pred} --out {output} --tc-flow {params.flow} {params.vc} > {log} 2>&1"
