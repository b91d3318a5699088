# Data: generate a dataset whose table row has a generator (when the experiment gives no root for it), then
# check every dataset once. The check's stamp names the data it checked; training jobs hand it to
# engine.train, so a checkpoint of a run on other data is never resumed.


rule generate_data:
    """A generated tree: python -m GENERATOR, the module named by the dataset's row of videos/info.py."""
    priority: 100
    output:
        directory(L.pattern("generated")),
    params:
        generator=lambda wc: PLAN.generator(wc.dataset),
        args=lambda wc: PLAN.generate_args(wc.dataset),
    resources:
        runtime=30,
    log:
        L.log("data", "{dataset}.generate"),
    benchmark:
        L.benchmark("data", "{dataset}.generate")
    conda:
        CONDA_ENV
    shell:
        "python -m {params.generator:q} --out {output:q} {params.args} > {log:q} 2>&1"


rule check_data:
    """python -m videos.check: one line per problem and a failed job, before any training starts."""
    priority: 100
    input:
        PLAN.generated_input,
    output:
        L.pattern("checked"),
    params:
        root=lambda wc: PLAN.roots[wc.dataset],
    resources:
        runtime=240,   # reads every frame and label of a real dataset once
    log:
        L.log("data", "{dataset}.check"),
    conda:
        CONDA_ENV
    shell:
        "python -m videos.check --dataset {wildcards.dataset:q} --root {params.root:q} --stamp {output:q} > {log:q} 2>&1"
