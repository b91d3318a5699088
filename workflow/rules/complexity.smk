# Params and GFLOPs (fvcore + the papers' convention) of one variant on one backbone at one input size.
# Needs no data and no training: random weights count the same.


def complexity_mem_mb(wildcards):
    """Rough peak memory of one traced forward (CPU, float32, batch 1). Measured: PSPNet-101 at 1024x2048
    (one frame) peaks at 2.7 GB, SD-CPC MiT-B5 at 480x853 (three frames) at 1.7 GB. Declaring it (with the
    profile's mem_mb) keeps several heavy counts from running at once on a small machine."""
    pixels = int(wildcards.height) * int(wildcards.width)
    heavy = wildcards.backbone.startswith(("resnet", "pspnet", "hrnet"))
    per_mpix = 2500 if heavy else 1500
    return int(1000 + per_mpix * pixels / 1e6)


rule count_complexity:
    output:
        f"{R}/complexity/{{dataset}}/{{backbone}}/{{variant}}@{{height}}x{{width}}.json",
    params:
        extra=REGISTRY_FLAG["metrics.complexity"],
    threads: JOB_SLOTS
    resources:
        mem_mb=complexity_mem_mb,
    log:
        f"{R}/logs/complexity/{{dataset}}/{{backbone}}/{{variant}}@{{height}}x{{width}}.log",
    shell:
        "{THREAD_ENV} python -m metrics.complexity --variant {wildcards.variant} --backbone {wildcards.backbone}"
        " --dataset {wildcards.dataset} --height {wildcards.height} --width {wildcards.width}"
        " --out {output} {params.extra} > {log} 2>&1"
