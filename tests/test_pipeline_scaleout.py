"""Scale-out: per-family training settings and the DDP launch (torchrun, 2 gloo processes through the rule),
what a job depends on (a variant's resolved definition, its family's code version, never a machine path),
the profiles Snakemake really loads, commands that need no --cores, shell quoting, umask."""
from __future__ import annotations

import json
import os
import re
import shutil
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from common import codeversion
from common.io import atomic_dir, write_text
from engine.config import TrainConfig
from tests.fixtures import fake_weights
from workflow.plan import Plan, PlanError

REPO = Path(__file__).resolve().parents[1]


def snakemake(*args: str, cwd: Path = REPO, timeout: int = 600) -> subprocess.CompletedProcess:
    exe = shutil.which("snakemake")
    cmd = [exe] if exe else [sys.executable, "-m", "snakemake"]
    return subprocess.run(cmd + list(args), cwd=cwd, capture_output=True, text=True, timeout=timeout)


def experiment(tmp_path: Path, text: str) -> str:
    path = tmp_path / "exp.yaml"
    path.write_text(text)
    return str(path)


FAMILY_EXPERIMENT = """extends: smoke
train:
  gpus: 2
  options: {lr: 0.001, batch_size: 2}
  families:
    msaf: {gpus: 4, mem_mb: 3000, options: {lr: 0.0002}}
"""


# ---------------------------------------------------------------------------------------------- train settings
def test_family_settings_merge_over_train_and_pick_the_launcher(tmp_path):
    plan = Plan({"experiment": experiment(tmp_path, FAMILY_EXPERIMENT), "results": str(tmp_path)})
    msaf, sdcpc = plan.train_settings("msaf"), plan.train_settings("sdcpc")
    pick = lambda o: {k: o[k] for k in ("lr", "batch_size")}   # noqa: E731 (the keys this experiment sets)
    assert (msaf["gpus"], msaf["mem_mb"], pick(msaf["options"])) == (4, 3000, {"lr": 0.0002, "batch_size": 2})
    # an unset key of the family block is train's, never the schema's default again
    assert (sdcpc["gpus"], sdcpc["mem_mb"], pick(sdcpc["options"])) == (2, 1500, {"lr": 0.001, "batch_size": 2})
    assert "families" not in msaf and msaf["iters"] == sdcpc["iters"] == 3
    assert plan.train_launcher("msaf") == ["torchrun", "--standalone", "--nproc_per_node=4"]
    assert plan.train_launcher("sdcpc") == ["torchrun", "--standalone", "--nproc_per_node=2"]
    assert "--lr 0.0002" in plan.train_args("msaf", "resnet18") and "--lr 0.001" in plan.train_args("sdcpc", "mit_b0")
    assert plan.run_gpus("msaf") == plan.run_gpus(["segformer", "sdcpc"]) == 1
    smoke = Plan({"experiment": "smoke", "results": str(tmp_path)})
    assert smoke.train_launcher("sdcpc") == ["python"] and smoke.train_gpus("msaf") == smoke.run_gpus("msaf") == 0


@pytest.mark.parametrize("block, needle", [
    ("families: {msaf: {gpu: 4}}", "train/families/msaf: Additional properties are not allowed ('gpu'"),
    ("families: {msfa: {gpus: 4}}", "train/families: 'msfa' is not one of"),
    ("families: {msaf: {families: {}}}", "train/families/msaf: Additional properties are not allowed"),
    ("families: {msaf: {gpus: -1}}", "train/families/msaf/gpus: -1 is less than the minimum of 0"),
    ("families: {msaf: {options: {learning_rate: 1}}}",
     "train/families/msaf/options: unknown training option(s) learning_rate"),
    ("families: {msaf: {options: {crop: [0, 0]}}}", "crop must be two positive sizes"),
])
def test_a_bad_family_block_is_one_line(tmp_path, block, needle):
    with pytest.raises(PlanError) as e:
        Plan({"experiment": experiment(tmp_path, f"extends: smoke\ntrain:\n  {block}\n"), "results": str(tmp_path)})
    assert needle in str(e.value) and "\n" not in str(e.value)


def test_paper_experiments_train_on_gpus_within_a_two_day_maxtime(tmp_path):
    """The papers' set-ups ask for GPUs (SD-CPC states two; MSAF 2 clips per GPU, docs/pipeline.md), and no
    job asks for more time than a common 2-day partition limit: a longer run resumes on retry."""
    for name in ("vspw", "cityscapes", "camvid"):
        plan = Plan({"experiment": name, "results": str(tmp_path), "root": str(tmp_path),
                     "weights": str(fake_weights(tmp_path))})
        for variant in {r.variant for r in plan.runs}:
            s = plan.train_settings(variant)
            assert s["gpus"] >= 2 and s["runtime_min"] <= 2 * 24 * 60, (name, variant, s)
            # clips per GPU, as MSAF states and the SD-CPC/CFFM code base trains (engine/config.py's default)
            assert s.get("options", {}).get("batch_size", TrainConfig().batch_size) == 2


# ---------------------------------------------------------------------------------------------- what jobs depend on
def test_model_identity_is_the_resolved_definition_and_code_without_paths(tmp_path):
    text = (REPO / "config" / "variants.yaml").read_text()
    assert "options: {points: 4," in text
    changed = text.replace("options: {points: 4,", "options: {points: 9,").replace(
        "label: SegFormer\n", "label: SegFormer (renamed)\n")
    reg = tmp_path / "variants.yaml"
    reg.write_text(changed)
    before = Plan({"experiment": "default", "results": str(tmp_path)})
    after = Plan({"experiment": "default", "results": str(tmp_path), "variants_file": str(reg)})
    differ = {v for v in before.variants if before.model_identity(v) != after.model_identity(v)}
    inherit = {n for n, v in after.variants.items() if v.options.get("points") != before.variants[n].options.get("points")}
    assert "sdcpc" in differ and differ == inherit and "sdcpc_p16" not in differ   # a label is no model change
    ident = json.loads(before.model_identity("sdcpc"))
    assert ident["code"] == codeversion.code_version("sdcpc") and ident["options"]["points"] == 4
    assert all(str(REPO) not in before.model_identity(v) for v in before.variants)
    assert "plan.json" not in before.group_identity("synthetic", "mit_b0")


def test_code_version_follows_each_familys_imports(tmp_path, monkeypatch):
    """A change of code in a module a family imports (directly, lazily, or through a table of module names)
    is a new version of that family only; comments and layout are not."""
    shutil.copytree(REPO / "models", tmp_path / "models", ignore=shutil.ignore_patterns("__pycache__"))
    monkeypatch.setattr(codeversion, "REPO_ROOT", tmp_path)

    def versions():
        codeversion.module_closure.cache_clear()
        codeversion.code_version.cache_clear()
        return {f: codeversion.code_version(f) for f in ("segformer", "sdcpc", "msaf")}

    def changed(rel: str, line: str) -> set[str]:
        before = versions()
        with open(tmp_path / rel, "a") as f:
            f.write(line)
        after = versions()
        return {f for f in before if before[f] != after[f]}

    try:
        assert changed("models/ops/dcnv3.py", "\n# a comment\n") == set()
        assert changed("models/ops/dcnv3.py", "\n_PROBE = 1\n") == {"sdcpc"}
        assert changed("models/backbones/mit.py", "\n_PROBE = 1\n") == {"segformer", "sdcpc"}
        assert changed("models/backbones/hrnet.py", "\n_PROBE = 1\n") == {"msaf"}   # named in a table only
        assert changed("models/losses.py", "\n_PROBE = 1\n") == {"segformer", "sdcpc", "msaf"}
    finally:
        codeversion.module_closure.cache_clear()
        codeversion.code_version.cache_clear()


def test_report_code_version_follows_the_report_package_only(tmp_path, monkeypatch):
    """The table and plot jobs depend on the report code and what it imports: a code change there is a new
    version; a comment, a model change or one of the training side (prediction, validation during training,
    checkpoints) is not."""
    for pkg in ("reports", "models", "metrics", "engine"):
        shutil.copytree(REPO / pkg, tmp_path / pkg, ignore=shutil.ignore_patterns("__pycache__"))
    monkeypatch.setattr(codeversion, "REPO_ROOT", tmp_path)

    def version_after(rel: str, line: str) -> str:
        with open(tmp_path / rel, "a") as f:
            f.write(line)
        codeversion.module_closure.cache_clear()
        codeversion.report_code_version.cache_clear()
        return codeversion.report_code_version()

    try:
        start = version_after("reports/claims.py", "")
        assert version_after("reports/claims.py", "\n# a comment\n") == start
        assert version_after("models/losses.py", "\n_PROBE = 1\n") == start
        assert version_after("reports/claims.py", "\n_PROBE = 1\n") != start
        changed = version_after("reports/claims.py", "")
        assert version_after("metrics/info.py", "\n_PROBE = 1\n") != changed     # the metric table
        changed = version_after("metrics/info.py", "")
        assert version_after("engine/convergence.py", "\n_PROBE = 1\n") != changed   # the convergence rule
        changed = version_after("engine/convergence.py", "")
        for training_side in ("engine/infer.py", "engine/validation.py", "engine/checkpoint.py"):
            assert version_after(training_side, "\n_PROBE = 1\n") == changed, training_side
    finally:
        codeversion.module_closure.cache_clear()
        codeversion.report_code_version.cache_clear()


def test_a_checkpoint_of_another_model_definition_is_not_resumed(tmp_path):
    """The pipeline reruns a job whose variant changed; engine.train must then start over, not finish the old
    model's checkpoint (which sits at its last iteration) into a model.pt of the new definition."""
    from engine import checkpoint as ckpt_io
    from engine import train
    from videos.synthetic import main as make_synthetic

    root = tmp_path / "data"
    make_synthetic(["--out", str(root), "--train-videos", "1", "--val-videos", "1", "--frames", "3",
                    "--height", "32", "--width", "32", "--classes", "3"])
    reg = tmp_path / "variants.yaml"
    text = (REPO / "config" / "variants.yaml").read_text()
    args = ["--variant", "segformer", "--backbone", "mit_b0", "--dataset", "synthetic", "--root", str(root),
            "--out", str(tmp_path / "run"), "--threads", "1", "--progress", "none", "--iters", "1",
            "--registry", str(reg), "--on-mismatch", "restart"]
    reg.write_text(text)
    assert train.main(args) == 0
    ckpt = ckpt_io.load_checkpoint(tmp_path / "run" / "checkpoint.pt")
    assert ckpt["run"]["model"]["code"] == codeversion.code_version("segformer")
    # the same entry, now classifying at 1/8 (segformer_os8's option): another model
    reg.write_text(text.replace("  label: SegFormer\n", "  label: SegFormer\n  options: {output_stride: 8}\n", 1))
    assert train.main(args) == 0
    model = ckpt_io.load_model_file(tmp_path / "run" / "model.pt")
    assert model["variant_spec"]["options"] == {"output_stride": 8}
    assert ckpt_io.load_checkpoint(tmp_path / "run" / "checkpoint.pt")["run"]["model"]["options"] == {
        "output_stride": 8}


# ---------------------------------------------------------------------------------------------- profiles, cores
def test_default_profile_is_loaded_and_no_command_needs_cores(tmp_path):
    """Snakemake finds profiles/default beside the Snakefile; --dag, --summary, --list-changes, --lint (and
    --report, in the smoke test) parse without --cores."""
    cfg = ["--config", "experiment=smoke", f"results={tmp_path}"]
    for args in (["tables", "-n"], ["tables", "--dag"], ["tables", "--summary"], ["tables", "--list-changes", "params"]):
        res = snakemake(*args, *cfg)
        assert res.returncode == 0, (args, res.stderr[-2000:])
        assert "Using workflow specific profile profiles/default" in res.stderr, args
        assert "total number of cores" not in res.stdout + res.stderr
    lint = snakemake("--lint", *cfg)
    assert lint.returncode == 0 and "Congratulations, your workflow is in a good condition!" in lint.stdout + lint.stderr


def test_jobs_ask_for_the_experiments_gpus_and_the_commands_are_quoted(tmp_path):
    """Dry run of a 2-GPU experiment: training is torchrun with 2 processes and holds gpu=2, an evaluation
    gpu=1; nothing is read from nvidia-smi. Every value in the printed commands is quoted."""
    exp = experiment(tmp_path, FAMILY_EXPERIMENT)
    # --resources: this machine's GPU count (profiles/default says 1, and a job never holds more than exist)
    res = snakemake("-n", "-p", "tables", "--resources", "gpu=8", "--config", f"experiment={exp}",
                    f"results={tmp_path / 'a b'}")
    assert res.returncode == 0, res.stderr[-2000:]
    out = res.stdout + res.stderr
    blocks = {m[0] + "/" + m[1]: m[2] for m in re.findall(
        r"rule (train|evaluate):.*?wildcards: dataset=\w+, backbone=\w+, variant=(\w+), seed=\d+\n"
        r"(?:\s+(?:priority|threads): [^\n]*\n)*\s+resources: ([^\n]*)",
        out, re.S)}
    assert blocks and all("gpu=4" in r for k, r in blocks.items() if k.startswith("train/msaf")), blocks
    assert all("gpu=2" in r for k, r in blocks.items() if k.startswith("train/s")), blocks
    assert all("gpu=1" in r for k, r in blocks.items() if k.startswith("evaluate/")), blocks
    assert "torchrun --standalone --nproc_per_node=2 -m engine.train --variant sdcpc" in out
    assert f"--out '{tmp_path}/a b/exp/runs/synthetic/mit_b0/sdcpc/seed0'" in out


def test_a_data_root_with_shell_characters_is_one_argument(tmp_path):
    """A root with `;` reaches videos.check as one argument (a clear error about the folder), never a
    second command."""
    pwned = tmp_path / "PWNED"
    root = f"{tmp_path}/no data; touch {pwned}"
    res = snakemake("--cores", "1", f"{tmp_path}/res/vspw/data/vspw.checked", "--config", "experiment=vspw",
                    f"results={tmp_path}/res", f"root={root}", f"weights={fake_weights(tmp_path)}")
    assert res.returncode != 0 and not pwned.exists()
    log = (tmp_path / "res/vspw/logs/data/vspw.check.log").read_text()
    assert root in log and "Traceback" not in log


# ---------------------------------------------------------------------------------------------- torchrun
@pytest.mark.slow
def test_two_gloo_processes_train_through_the_rule(tmp_path):
    """`train: {gpus: 2}` on a CPU machine: the rule runs torchrun with 2 processes (gloo), the job holds
    gpu=2, and the model records a world size of 2."""
    from engine import checkpoint as ckpt_io

    exp = experiment(tmp_path, "extends: smoke\ntrain: {iters: 2, checkpoint_every: 1, gpus: 2}\n")
    model = tmp_path / "exp/runs/synthetic/mit_b0/segformer/seed0/model.pt"
    res = snakemake("--cores", "2", "--resources", "gpu=2", "-p", str(model), "--config", f"experiment={exp}",
                    f"results={tmp_path}")
    out = res.stdout + res.stderr
    assert res.returncode == 0, out[-3000:]
    assert "torchrun --standalone --nproc_per_node=2 -m engine.train --variant segformer" in out
    assert re.search(r"rule train:.*?resources: [^\n]*gpu=2", out, re.S)
    saved = ckpt_io.load_model_file(model)
    assert saved["provenance"]["world_size"] == 2 and saved["iterations"] == 2
    log = (tmp_path / "exp/logs/train/synthetic/mit_b0/segformer/seed0.log").read_text()
    assert "trained segformer/mit_b0 on synthetic: 2 iterations" in log


# ---------------------------------------------------------------------------------------------- umask
@pytest.mark.parametrize("umask, file_mode, dir_mode", [(0o022, 0o644, 0o755), (0o077, 0o600, 0o700),
                                                       (0o002, 0o664, 0o775)])
def test_results_follow_the_umask(tmp_path, umask, file_mode, dir_mode):
    """Colleagues on a shared cluster read results as the umask allows, as with any other tool."""
    old = os.umask(umask)
    try:
        write_text(tmp_path / "sub" / "a.json", "{}\n")
        with atomic_dir(tmp_path / "pred") as d:
            (d / "x.png").write_bytes(b"")
    finally:
        os.umask(old)
    assert stat.S_IMODE((tmp_path / "sub" / "a.json").stat().st_mode) == file_mode
    assert stat.S_IMODE((tmp_path / "sub").stat().st_mode) == dir_mode
    assert stat.S_IMODE((tmp_path / "pred").stat().st_mode) == dir_mode


def test_sync_batchnorm_conversion_keeps_the_optimizers_parameters():
    """Under DDP on CUDA engine.train converts BatchNorm to SyncBatchNorm after building the optimizer and
    restoring a checkpoint: the converted model must train the very parameters the optimizer holds, keep
    the state-dict keys (model.pt rebuilds with plain BatchNorm) and leave no plain BatchNorm behind."""
    import torch

    from engine.schedule import param_groups
    from models.registry import build_model

    model = build_model("msaf_baseline", "resnet18", 4)
    groups = param_groups(model, 6e-5, 10.0, 0.01, True)
    optimizer = torch.optim.AdamW(groups, lr=6e-5)
    keys = list(model.state_dict())
    bn = sum(isinstance(m, torch.nn.modules.batchnorm._BatchNorm) for m in model.modules())
    synced = torch.nn.SyncBatchNorm.convert_sync_batchnorm(model)
    held = {id(p) for g in optimizer.param_groups for p in g["params"]}
    assert bn > 0 and sum(isinstance(m, torch.nn.SyncBatchNorm) for m in synced.modules()) == bn
    assert not any(type(m) is torch.nn.BatchNorm2d for m in synced.modules())
    assert {id(p) for p in synced.parameters() if p.requires_grad} == held and list(synced.state_dict()) == keys
