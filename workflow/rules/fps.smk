# FPS of each trained variant at its dataset's test size, on this machine. One job per (dataset, backbone)
# times all of its variants one after the other (engine.fps takes several): one start-up instead of one per
# variant, and every timing of a table row group comes from the same process. A timing job claims every
# core so nothing runs beside it, and uses the machine's cores (engine.fps records the thread count).
# Timings are only comparable within one run: see the table captions. A new variant in a group reruns the
# group's job, so the group is always timed together.

# Their names vary (fps_<dataset>_<backbone>), so `--set-resources fps:KEY=VALUE` (e.g. the slurm profile's
# GPU request) is read here and applied to every one of them.
_FPS_OVERRIDES = getattr(workflow.resource_settings, "_parsed_overwrite_resources", {}).get("fps", {})
FPS_RESOURCES = {"gpu": GPUS, "mem_mb": 2000,
                 **{k: getattr(v, "_value", v) for k, v in dict(_FPS_OVERRIDES).items()}}

for (_dataset, _backbone), _variants in PLAN.fps_groups().items():

    rule:
        name:
            f"fps_{_dataset}_{_backbone}"
        output:
            [f"{R}/fps/{_dataset}/{_backbone}/{v}.json" for v in _variants],
        params:
            dataset=_dataset,
            backbone=_backbone,
            variants=" ".join(_variants),
            size="--height {} --width {}".format(*PLAN.test_size(_dataset)),
            warmup=FPS.get("warmup", 5),
            iters=FPS.get("iters", 200),
            repeats=f"--repeats {FPS['repeats']}" if "repeats" in FPS else "",
            extra=REGISTRY_FLAG["engine.fps"],
        threads: workflow.cores
        resources:
            **FPS_RESOURCES,
        log:
            f"{R}/logs/fps/{_dataset}/{_backbone}.log",
        shell:
            "{REGISTRY_ENV} python -m engine.fps --variant {params.variants} --backbone {params.backbone}"
            " --dataset {params.dataset} {params.size} --warmup {params.warmup} --iters {params.iters} {params.repeats}"
            " --out {output} {params.extra} > {log} 2>&1"
