"""The SLURM profile: nothing site-specific in it, so a site profile's names pass through; every job's GPU
request is the plugin's `gpu` resource from the experiment; the real one-node cluster run is opt-in
(VSS_SLURM_CHECK=1, root: tests/slurm/run_slurm_smoke.sh installs Debian packages and takes minutes)."""
from __future__ import annotations

import os
import re
import subprocess
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parents[1]
PROFILE = REPO / "profiles" / "slurm"


def test_slurm_profile_leaves_site_names_to_the_site_profile():
    cfg = yaml.safe_load((PROFILE / "config.yaml").read_text())
    assert cfg["executor"] == "slurm" and cfg["retries"] >= 1 and cfg["rerun-incomplete"] and cfg["nolock"]
    # a workflow profile's key replaces a --profile's whole: these two belong to the site
    assert "default-resources" not in cfg and "set-resources" not in cfg and "cores" not in cfg
    site = yaml.safe_load((PROFILE / "site" / "config.yaml").read_text())
    assert site["default-resources"]["slurm_account"] == "YOUR_ACCOUNT"
    partitions = yaml.safe_load((PROFILE / "site" / site["slurm-partition-config"]).read_text())["partitions"]
    assert any(p.get("max_gpu", 0) > 0 for p in partitions.values())
    assert all("max_runtime" in p for p in partitions.values())


def test_no_rule_asks_for_gpus_through_slurm_extra():
    """The plugin refuses `--gpus`/`--gres` in slurm_extra; GPUs are its `gpu` resource."""
    text = "\n".join(p.read_text() for p in [REPO / "Snakefile", *sorted((REPO / "workflow" / "rules").glob("*.smk")),
                                             *sorted(PROFILE.rglob("*.yaml"))])
    extras = re.findall(r"slurm_extra[^\n]*", text)
    assert extras and not any(re.search(r"--gpus|--gres|-G\b", e) for e in extras), extras
    assert "nvidia-smi" not in text


@pytest.mark.slow
@pytest.mark.skipif(os.environ.get("VSS_SLURM_CHECK") != "1", reason="opt-in: VSS_SLURM_CHECK=1 (root, installs "
                    "slurm-wlm + munge, runs a one-node cluster for minutes; docs/pipeline.md, SLURM)")
def test_smoke_experiment_runs_on_a_real_one_node_slurm(tmp_path):
    out = tmp_path / "summary.txt"
    res = subprocess.run(["bash", str(REPO / "tests" / "slurm" / "run_slurm_smoke.sh")], capture_output=True,
                         text=True, env={**os.environ, "VSS_SLURM_OUT": str(out)}, timeout=1800)
    assert res.returncode == 0, res.stdout[-3000:] + res.stderr[-3000:]
    summary = out.read_text()
    assert re.search(r"snakemake exit 0, .* (\d+) sbatch jobs \(\1 COMPLETED\)", summary), summary
    assert "gres:gpu:2" in summary and "Partition=gpu" in summary
