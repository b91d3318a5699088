# Per trained run: predict the split (PNG folder, atomic) and score it (mIoU, WIoU, mVC8, mVC16, TC), in one
# process (engine.validate = engine.infer then metrics.evaluate; one torch start-up per run, not two).


rule evaluate:
    input:
        model=f"{R}/runs/{{dataset}}/{{backbone}}/{{variant}}/seed{{seed}}/model.pt",
        data=f"{R}/data/{{dataset}}.checked",
    output:
        pred=directory(f"{R}/runs/{{dataset}}/{{backbone}}/{{variant}}/seed{{seed}}/pred"),
        metrics=f"{R}/runs/{{dataset}}/{{backbone}}/{{variant}}/seed{{seed}}/metrics.json",
    params:
        root=lambda wc: PLAN.roots[wc.dataset],
        split=EVAL.get("split", "val"),
        flow=EVAL.get("tc_flow", "gt"),
        vc=(f"--vc-min-frames {EVAL['vc_min_frames']}" if "vc_min_frames" in EVAL else "")
        + (f" --vc-convention {EVAL['vc_convention']}" if "vc_convention" in EVAL else "")
        + (f" --tc-videos {EVAL['tc_videos']}" if "tc_videos" in EVAL else ""),
        # the experiment's test size (datasets/<name>/test_size) is the keep-ratio box inference resizes into
        scale=lambda wc: "" if wc.dataset == "synthetic" else "--test-scale {}x{}".format(*PLAN.test_size(wc.dataset)),
        extra=REGISTRY_FLAG["engine.infer"],
    threads: JOB_SLOTS
    resources:
        gpu=GPUS,
        mem_mb=TRAIN.get("mem_mb", 2000),
    log:
        f"{R}/logs/evaluate/{{dataset}}/{{backbone}}/{{variant}}/seed{{seed}}.log",
    shell:
        "{THREAD_ENV} python -m engine.validate --checkpoint {input.model} --dataset {wildcards.dataset}"
        " --root {params.root} --split {params.split} --pred {output.pred} --out {output.metrics}"
        " --tc-flow {params.flow} {params.vc} {params.scale} {params.extra} > {log} 2>&1"
