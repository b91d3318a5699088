# Data: generate the synthetic set (when the experiment has no root for it), then check every dataset once.


rule synthetic_data:
    """A VSPW-layout synthetic tree with ground-truth flow (python -m videos.synthetic)."""
    output:
        directory(f"{R}/data/synthetic"),
    params:
        gen=" ".join(f"--{k.replace('_', '-')} {v}"
                     for k, v in PLAN.datasets.get("synthetic", {}).get("generate", {}).items()),
    log:
        f"{R}/logs/data/synthetic.log",
    shell:
        "{THREAD_ENV} python -m videos.synthetic --out {output} {params.gen} > {log} 2>&1"


def dataset_input(wildcards):
    """The generated tree is an input of the check; a real root is the user's, not a workflow output."""
    if wildcards.dataset == "synthetic" and PLAN.roots["synthetic"] == f"{R}/data/synthetic":
        return [f"{R}/data/synthetic"]
    return []


rule check_data:
    """python -m videos.check: one line per problem and a failed job, before any training starts."""
    input:
        dataset_input,
    output:
        f"{R}/data/{{dataset}}.checked",
    params:
        root=lambda wc: PLAN.roots[wc.dataset],
    log:
        f"{R}/logs/data/{{dataset}}.check.log",
    shell:
        # the stamp names the data it checked (root + hash of the generator's meta.json): training jobs use it
        # to tell a resumable checkpoint from one of a run on other data
        "python -m videos.check --dataset {wildcards.dataset} --root {params.root} > {log} 2>&1"
        " && {{ echo {params.root}; cat {params.root}/meta.json 2>/dev/null | sha256sum; }} > {output}"
