import json
import shlex

# Training: one job per (dataset, backbone, variant, seed). engine.train checkpoints every K iterations into
# the run folder; checkpoint.pt is not a declared output, so an interrupted job resumes from it. When the job
# reruns because its settings or data changed, the old checkpoint would be resumed (or refused by
# engine.train): the job keeps a fingerprint of what it trains (.train_fingerprint) and drops a checkpoint
# written under another one.


rule train:
    input:
        data=f"{R}/data/{{dataset}}.checked",
    output:
        model=f"{R}/runs/{{dataset}}/{{backbone}}/{{variant}}/seed{{seed}}/model.pt",
        log=f"{R}/runs/{{dataset}}/{{backbone}}/{{variant}}/seed{{seed}}/train_log.csv",
    params:
        root=lambda wc: PLAN.roots[wc.dataset],
        out=lambda wc, output: os.path.dirname(output.model),
        iters=TRAIN.get("iters", 1000),
        every=TRAIN.get("checkpoint_every", 500),
        cfgfile=TRAIN.get("config") or "/dev/null",
        extra=(f"--config {TRAIN['config']}" if TRAIN.get("config") else "")
        + "".join(f" --{k.replace('_', '-')} {shlex.quote(json.dumps(v))}" for k, v in TRAIN.get("options", {}).items())
        + " " + REGISTRY_FLAG["engine.train"],
    threads: JOB_SLOTS
    resources:
        gpu=GPUS,
        mem_mb=TRAIN.get("mem_mb", 2000),
        runtime=TRAIN.get("runtime_min", 60),
    log:
        f"{R}/logs/train/{{dataset}}/{{backbone}}/{{variant}}/seed{{seed}}.log",
    shell:
        "fp=\"$(cat {input.data}) iters={params.iters} $(cat {params.cfgfile} 2>/dev/null | sha256sum)"
        " {params.extra}\"; cd_out={params.out}; mkdir -p $cd_out;"
        " if [ \"$(cat $cd_out/.train_fingerprint 2>/dev/null)\" != \"$fp\" ]; then rm -f $cd_out/checkpoint.pt; fi;"
        " echo \"$fp\" > $cd_out/.train_fingerprint;"
        " {THREAD_ENV} python -m engine.train --variant {wildcards.variant} --backbone {wildcards.backbone}"
        " --dataset {wildcards.dataset} --root {params.root} --out {params.out} --iters {params.iters}"
        " --seed {wildcards.seed} --checkpoint-every {params.every} {params.extra} > {log} 2>&1"
