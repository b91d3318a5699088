"""The Snakemake pipeline: experiment plans, schema errors, dry runs of every experiment, the add-a-variant path,
and (slow) the whole smoke DAG for real."""
from __future__ import annotations

import json
import os
import re
import shutil
import stat
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

from models.registry import load_variants
from reports import paper as P
from tests.fixtures import fake_weights
from workflow.plan import Plan, PlanError, read_experiment

REPO = Path(__file__).resolve().parents[1]
VARIANTS = load_variants()
FAMILY = lambda *fams: [n for n, v in VARIANTS.items() if v.family in fams]
NEW_VARIANT = ("sdcpc_p25:\n  base: sdcpc\n  label: P=25\n  options: {points: 25}\n"
               "  tables: [sdcpc_p, sdcpc_t3]\n  description: the add-a-variant example (docs/pipeline.md)\n")


def snakemake(*args: str, timeout: int = 600, cwd: Path = REPO) -> subprocess.CompletedProcess:
    exe = shutil.which("snakemake")
    cmd = [exe] if exe else [sys.executable, "-m", "snakemake"]
    return subprocess.run(cmd + list(args), cwd=cwd, capture_output=True, text=True, timeout=timeout)


def copy_project(dest: Path) -> Path:
    """The project's files (tracked and new, as a clone would have them) copied to ``dest``."""
    files = subprocess.run(["git", "ls-files", "-co", "--exclude-standard", "-z"], cwd=REPO, capture_output=True,
                           check=True).stdout.decode().split("\0")
    for rel in filter(None, files):
        if (REPO / rel).is_file():
            (dest / rel).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(REPO / rel, dest / rel)
    return dest


def job_stats(out: str) -> dict[str, int]:
    """The 'Job stats' table of a dry run: rule -> number of jobs."""
    m = re.search(r"Job stats:\n.*?\n-+\s+-+\n(.*?)\ntotal\s+(\d+)", out, re.S)
    assert m, out[-2000:]
    return {line.split()[0]: int(line.split()[1]) for line in m.group(1).splitlines() if line.strip()}


def fps_outputs(out: str) -> set[str]:
    """The FPS files a dry run (-p: with its shell commands) would write: one per trained variant."""
    return set(re.findall(r"\S+/fps/\S+\.json", out))


def write_experiment(tmp_path, text: str) -> str:
    path = tmp_path / "exp.yaml"
    path.write_text(text)
    return str(path)


def main_rows(plan) -> int:
    """Extra (run, seed) pairs of runs trained on more seeds than the experiment's own."""
    return sum(len(r.seeds) - len(plan.seeds) for r in plan.runs)


# ---------------------------------------------------------------------------------------------- plans
def test_default_plan_covers_every_variant_seed_and_paper_row(tmp_path):
    plan = Plan({"experiment": "default", "results": str(tmp_path)})
    assert len(plan.seeds) >= 2
    trained = {(r.backbone, r.variant) for r in plan.runs}
    assert trained == {("mit_b0", v) for v in FAMILY("segformer", "sdcpc")} | {("resnet18", v) for v in FAMILY("msaf")}
    # every row whose params or GFLOPs a paper prints is counted at its printed resolution; MSAF's tables print
    # neither, so their rows are counted by the cityscapes and camvid experiments (about 10 CPU-minutes of
    # dilated ResNets at 1024x2048 that would judge nothing in the default)
    def keys(p):
        return {(c.dataset, c.backbone, c.variant, f"{c.height}x{c.width}") for c in p.counts}

    counts = keys(plan)
    weights = str(fake_weights(tmp_path))
    real = {e: keys(Plan({"experiment": e, "results": str(tmp_path), "root": str(tmp_path), "weights": weights}))
            for e in ("cityscapes", "camvid")}
    rep = P.load_reported()
    printed = set(rep[rep.column.isin(["Params", "GFLOPs"])].table)
    assert printed == {"sdcpc_t1", "sdcpc_t2", "sdcpc_t3"}
    for r in rep[rep.variant != ""].drop_duplicates(["table", "row", "backbone", "resolution"]).itertuples():
        key = (r.dataset, r.backbone, r.variant, r.resolution)
        if r.table in printed:
            assert key in counts, r
        if r.dataset in real:
            assert key in real[r.dataset], r
    # the trained runs are counted at the synthetic size too (the cross table)
    h, w = plan.test_size("synthetic")
    assert ("synthetic", "mit_b0", "sdcpc", f"{h}x{w}") in counts
    # three seeds for the main rows, two for the ablations
    seeds = {r.variant: r.seeds for r in plan.runs}
    assert all(len(seeds[v]) >= 3 for v in plan.cfg["report"]["main"])
    assert all(len(s) >= 2 for s in seeds.values())
    assert len(plan.run_files("metrics")) == sum(len(r.seeds) for r in plan.runs)
    # every run starts from its backbone's encoder, made once by the pretrain stage
    assert {b for _, b, _ in plan.pretrain_jobs()} == {"mit_b0", "resnet18"}
    assert all(f"--pretrained {plan.pretrained[r.backbone]}" in plan.train_args(r.variant, r.backbone)
               for r in plan.runs)


def test_extends_merges_and_lists_replace():
    smoke = read_experiment("smoke")
    default = read_experiment("default")
    assert smoke["evaluate"] == default["evaluate"]                  # inherited
    assert smoke["seeds"] == [0] and smoke["runs"] != default["runs"]  # replaced
    assert smoke["datasets"]["synthetic"]["generate"]["annotate"] == "dense"  # deep-merged


@pytest.mark.parametrize("text, needle", [
    ("extends: smoke\nruns:\n  - {dataset: synthetic, backbone: mit_b0, variants: [segfromer]}\n",
     "runs/0: no variant named 'segfromer' in config/variants.yaml (did you mean 'segformer'?"),
    ("extends: smoke\nruns:\n  - {dataset: synthtic, backbone: mit_b0, variants: [segformer]}\n",
     "runs/0/dataset: 'synthtic' is not one of"),
    ("extends: smoke\nruns:\n  - {dataset: synthetic, backbone: mit_b9, variants: [segformer]}\n",
     "runs/0/backbone: 'mit_b9' is not one of"),
    ("extends: smoke\nruns:\n  - {dataset: synthetic, backbone: resnet18, variants: [segformer]}\n",
     "variant 'segformer' (family segformer) does not take backbone 'resnet18'"),
    ("extends: smoke\nseedz: [1]\n", "Additional properties are not allowed ('seedz' was unexpected)"),
    ("extends: smoke\ncomplexity:\n  - {dataset: vspw, variants: [sdcpc], backbones: [mit_b1], resolutions: [480by853]}\n",
     "complexity/0/resolutions/0"),
    ("extends: smoke\nruns:\n  - {dataset: camvid, backbone: resnet18, variants: [msaf]}\n",
     "dataset 'camvid' is not declared under datasets"),
    ("extends: nosuch\n", "no such experiment 'nosuch'"),
    ("extends: smoke\ntrain: {options: {learning_rate: 0.1}}\n", "train/options: unknown training option(s) learning_rate"),
])
def test_config_errors_are_one_clear_line(tmp_path, text, needle):
    with pytest.raises(PlanError) as e:
        Plan({"experiment": write_experiment(tmp_path, text), "results": str(tmp_path)})
    assert needle in str(e.value) and "\n" not in str(e.value)


def test_a_setting_the_experiment_omits_is_left_to_its_command(tmp_path):
    """No second default: without train/iters the rule passes no --iters, so engine.config's chain decides
    (TrainConfig, then the dataset's row: 200 for the synthetic set); pipeline-only keys get the schema's."""
    from engine.config import resolve_config
    from videos.info import DATASETS

    bare = ("seeds: [0]\ndatasets: {synthetic: {}}\n"
            "runs:\n  - {dataset: synthetic, backbone: mit_b0, variants: [segformer]}\n")
    plan = Plan({"experiment": write_experiment(tmp_path, bare), "results": str(tmp_path)})
    assert "iters" not in plan.cfg["train"] and plan.train_args("segformer", "mit_b0") == "" and plan.fps_args() == ""
    assert "--iters 3" in Plan({"experiment": "smoke", "results": str(tmp_path)}).train_args("segformer", "mit_b0")
    assert resolve_config("synthetic").iters == DATASETS["synthetic"].train["iters"] == 200
    assert plan.cfg["train"]["mem_mb"] == 2000 and plan.cfg["evaluate"]["split"] == "val"   # the schema's
    assert plan.test_size("synthetic") == DATASETS["synthetic"].test_size and plan.generate_args("synthetic") == ""


BARE_REAL = ("seeds: [0]\ndatasets: {vspw: {root: /nowhere}}\n"
             "runs:\n  - {dataset: vspw, backbone: mit_b1, variants: [segformer]}\n")


def test_train_settings_layer_family_then_variant(tmp_path):
    """A run's settings: the train block, then its family's layer, then its variant's (mappings merge)."""
    text = ("extends: smoke\ntrain:\n  iters: 7\n  options: {lr: 0.001, batch_size: 4}\n"
            "  families: {sdcpc: {iters: 9, options: {lr: 0.002}}}\n"
            "  variants: {sdcpc_p9: {options: {batch_size: 3}}, msaf: {mem_mb: 999}}\n"
            "runs:\n  - {dataset: synthetic, backbone: mit_b0, variants: [segformer, sdcpc, sdcpc_p9]}\n"
            "  - {dataset: synthetic, backbone: resnet18, variants: [msaf]}\n")
    plan = Plan({"experiment": write_experiment(tmp_path, text), "results": str(tmp_path)})
    seg, sd, p9 = (plan.train_settings(v) for v in ("segformer", "sdcpc", "sdcpc_p9"))
    assert (seg["iters"], seg["options"]["lr"], seg["options"]["batch_size"]) == (7, 0.001, 4)
    assert (sd["iters"], sd["options"]["lr"], sd["options"]["batch_size"]) == (9, 0.002, 4)
    assert (p9["iters"], p9["options"]["lr"], p9["options"]["batch_size"]) == (9, 0.002, 3)
    assert "--iters 9" in plan.train_args("sdcpc_p9", "mit_b0") and "--batch-size 3" in plan.train_args("sdcpc_p9", "mit_b0")
    assert plan.train_resource("msaf", "mem_mb") == 999 and plan.train_resource("sdcpc", "mem_mb") == 1500


@pytest.mark.parametrize("layer, needle", [
    ("  families: {sdcpc: {options: {learning_rate: 1}}}\n", "train/families/sdcpc/options: unknown training option"),
    ("  variants: {sdcpc_p99: {iters: 2}}\n", "train/variants: no variant named 'sdcpc_p99'"),
    ("  families: {sdcpcc: {iters: 2}}\n", "train/families: 'sdcpcc' is not one of"),
])
def test_train_layer_errors_are_one_line(tmp_path, layer, needle):
    with pytest.raises(PlanError) as e:
        Plan({"experiment": write_experiment(tmp_path, "extends: smoke\ntrain:\n" + layer), "results": str(tmp_path)})
    assert needle in str(e.value) and "\n" not in str(e.value)


def test_paper_experiments_state_each_papers_recipe(tmp_path):
    """Per family, as the papers state it (and, where they are silent, the codebase they build on):
    docs/reproduction-notes.md, "Training recipes of the paper experiments"."""
    weights = fake_weights(tmp_path)
    plans = {e: Plan({"experiment": e, "results": str(tmp_path), "root": str(tmp_path), "weights": str(weights)})
             for e in ("vspw", "cityscapes", "camvid")}

    def recipe(exp, variant):
        t = plans[exp].train_settings(variant)
        o = t["options"]
        return t["iters"], o["lr"], o["warmup_iters"], o["batch_size"], list(o["crop"])

    assert recipe("vspw", "sdcpc") == (160000, 2e-5, 1500, 2, [480, 480])        # SD-CPC; CFFM's schedule
    assert recipe("vspw", "segformer") == (160000, 6e-5, 1500, 2, [480, 480])    # CFFM's SegFormer
    assert recipe("cityscapes", "sdcpc") == (160000, 2e-5, 1500, 2, [512, 1024])
    assert recipe("cityscapes", "segformer") == (160000, 6e-5, 1500, 2, [512, 1024])
    for v in ("msaf", "msaf_baseline", "msaf_wo_dcn"):
        assert recipe("cityscapes", v) == (80000, 6e-5, 1500, 2, [769, 769])     # MSAF Sec. 4.1
    assert recipe("camvid", "msaf") == recipe("camvid", "msaf_baseline") == (80000, 6e-5, 1500, 2, [640, 640])
    for plan in plans.values():   # nothing of the default's synthetic schedule leaks into a paper run
        for r in plan.runs:
            assert plan.pretrained[r.backbone].startswith(str(weights)), r
            assert plan.train_settings(r.variant)["options"]["validate_every"] >= 8000


def test_real_data_needs_weights_or_an_explicit_none(tmp_path):
    with pytest.raises(PlanError) as e:
        Plan({"experiment": write_experiment(tmp_path, BARE_REAL), "results": str(tmp_path)})
    assert "pretrained: no weights for mit_b1" in str(e.value) and "pretrained: none" in str(e.value)
    assert "\n" not in str(e.value)
    plan = Plan({"experiment": write_experiment(tmp_path, BARE_REAL + "pretrained: none\n"), "results": str(tmp_path)})
    assert plan.pretrained == {"mit_b1": None} and "--pretrained" not in plan.train_args("segformer", "mit_b1")
    with pytest.raises(PlanError, match="pretrained/mit_b1: .*mit_b1.pth: no such file"):
        Plan({"experiment": write_experiment(tmp_path, BARE_REAL + "pretrained: {mit_b1: mit_b1.pth}\n"),
              "results": str(tmp_path), "weights": str(tmp_path)})
    (tmp_path / "mit_b1.pth").touch()
    plan = Plan({"experiment": write_experiment(tmp_path, BARE_REAL + "pretrained: {mit_b1: mit_b1.pth}\n"),
                 "results": str(tmp_path), "weights": str(tmp_path)})
    assert plan.train_args("segformer", "mit_b1").endswith(f"--pretrained {tmp_path / 'mit_b1.pth'}")


def test_an_encoder_pretrained_on_the_synthetic_set_never_starts_a_real_run(tmp_path):
    text = ("extends: default\ndatasets: {vspw: {root: /nowhere}}\n"
            "runs:\n  - {dataset: vspw, backbone: mit_b0, variants: [segformer]}\n")
    with pytest.raises(PlanError, match="pretrained/mit_b0: the pretrain stage makes this encoder from the generated"):
        Plan({"experiment": write_experiment(tmp_path, text), "results": str(tmp_path)})


def test_a_run_listed_by_two_groups_trains_on_both_groups_seeds(tmp_path):
    text = ("extends: smoke\nseeds: [0, 1]\nruns:\n  - {dataset: synthetic, backbone: mit_b0, families: [segformer]}\n"
            "  - {dataset: synthetic, backbone: mit_b0, variants: [segformer], seeds: [1, 2]}\n")
    plan = Plan({"experiment": write_experiment(tmp_path, text), "results": str(tmp_path)})
    seeds = {r.variant: r.seeds for r in plan.runs}
    assert seeds == {"segformer": (0, 1, 2), "segformer_os8": (0, 1)}
    assert sum("/segformer/seed" in f for f in plan.run_files("model")) == 3


def test_unknown_config_key_is_an_error(tmp_path):
    with pytest.raises(PlanError, match="unknown key.*experimant"):
        Plan({"experiment": "smoke", "experimant": "default"})


def test_snakemake_reports_a_typo_in_one_line_before_any_job(tmp_path):
    exp = write_experiment(tmp_path, "extends: smoke\nruns:\n  - {dataset: synthetic, backbone: mit_b0, variants: [sdcpc_p99]}\n")
    res = snakemake("-n", "tables", "--nolock", "--config", f"experiment={exp}", f"results={tmp_path}")
    assert res.returncode == 1
    errors = [line for line in res.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and "no variant named 'sdcpc_p99'" in errors[0]
    assert "Job stats" not in res.stdout + res.stderr


# ---------------------------------------------------------------------------------------------- dry runs
def test_dry_run_default_schedules_the_whole_grid(tmp_path):
    res = snakemake("-n", "-p", "tables", "--nolock", "--config", f"results={tmp_path}")
    assert res.returncode == 0, res.stderr[-2000:]
    jobs = job_stats(res.stdout + res.stderr)
    n_variants = len(FAMILY("segformer", "sdcpc", "msaf"))          # 25 with the shipped registry
    plan = Plan({"experiment": "default", "results": str(tmp_path)})
    runs = 2 * n_variants + main_rows(plan)                          # main rows on a third seed
    assert jobs["train"] == jobs["evaluate"] == runs and "infer" not in jobs   # one job predicts + scores
    assert jobs["fps"] == 2 and len(fps_outputs(res.stdout + res.stderr)) == n_variants   # per backbone
    assert jobs["pretrain"] == 2                                     # one encoder per backbone
    # one counting job per (dataset, backbone), however many variants and input sizes it counts
    assert jobs["count_complexity"] == len(plan.count_groups()) < len(plan.counts)
    assert jobs["generate_data"] == jobs["check_data"] == jobs["report_tables"] == jobs["report_plots"] == 1


def test_fps_resources_reach_every_fps_job(tmp_path):
    """One `fps` rule (wildcards dataset, backbone): `--set-resources fps:...` (the slurm profile's GPU
    request) reaches each of its jobs."""
    res = snakemake("-n", "tables", "--nolock", "--set-resources", "fps:runtime=33", "--config",
                    f"results={tmp_path}")
    assert res.returncode == 0, res.stderr[-2000:]
    blocks = re.findall(r"rule (fps):.*?resources: ([^\n]*)", res.stdout + res.stderr, re.S)
    assert len(blocks) == 2 and all("runtime=33" in r for _, r in blocks), blocks


@pytest.mark.parametrize("experiment, trained", [("vspw", 19), ("cityscapes", 22), ("camvid", 6)])
def test_dry_run_paper_experiments_need_no_data(tmp_path, experiment, trained):
    """The paper set-ups plan without the data present (root points at an empty folder); their weights files
    must exist (here placeholders)."""
    res = snakemake("-n", "-p", "tables", "--nolock", "--config", f"experiment={experiment}", f"results={tmp_path}",
                    f"root={tmp_path / 'data'}", f"weights={fake_weights(tmp_path)}")
    assert res.returncode == 0, res.stderr[-2000:]
    jobs = job_stats(res.stdout + res.stderr)
    assert jobs["train"] == jobs["evaluate"] == len(fps_outputs(res.stdout + res.stderr)) == trained
    assert "generate_data" not in jobs and jobs["check_data"] == 1


def test_dry_run_picks_up_a_new_registry_entry(tmp_path):
    """Adding a variant is one registry entry: the default experiment trains, counts and times it."""
    reg = tmp_path / "variants.yaml"
    reg.write_text((REPO / "config" / "variants.yaml").read_text() + NEW_VARIANT)
    res = snakemake("-n", "-p", "tables", "--nolock", "--config", f"results={tmp_path}", f"variants_file={reg}")
    assert res.returncode == 0, res.stderr[-2000:]
    out = res.stdout + res.stderr
    jobs = job_stats(out)
    n = len(FAMILY("segformer", "sdcpc", "msaf")) + 1
    assert jobs["train"] == 2 * n + main_rows(Plan({"experiment": "default", "results": str(tmp_path)}))
    assert len(fps_outputs(out)) == n
    for path in ("runs/synthetic/mit_b0/sdcpc_p25/seed0/model.pt", "runs/synthetic/mit_b0/sdcpc_p25/seed1/metrics.json",
                 "fps/synthetic/mit_b0/sdcpc_p25.json", "complexity/vspw/mit_b1/sdcpc_p25@480x853.json"):
        assert f"{tmp_path}/default/{path}" in out, path


# ---------------------------------------------------------------------------------------------- the real DAG


@pytest.fixture(scope="module")
def smoke_run(tmp_path_factory):
    """The smoke experiment, run once for real from a copy of the project in a folder whose name has a space
    (every shell value is quoted), with one extra registry entry (a user's own registry beside the shipped
    one) and the results inside the project, as `snakemake --cores 8 tables` leaves them.
    Returns (project folder, its results/smoke folder, the run)."""
    project = copy_project(tmp_path_factory.mktemp("smoke") / "vss bench")
    (project / "my_variants.yaml").write_text((REPO / "config" / "variants.yaml").read_text() + NEW_VARIANT)
    res = snakemake("tables", "--cores", "2", "--config", "experiment=smoke", "variants_file=my_variants.yaml",
                    timeout=1200, cwd=project)
    return project, project / "results" / "smoke", res


@pytest.mark.slow
def test_smoke_pipeline_writes_every_table_plot_and_diff(smoke_run):
    project, out, res = smoke_run
    assert res.returncode == 0, res.stderr[-4000:]
    from reports import OWN_TABLES, PLOTS

    for t in list(P.TABLES) + list(OWN_TABLES):
        df = pd.read_csv(out / "tables" / f"{t}.csv")
        assert len(df) > 0
        tex = (out / "tables" / f"{t}.tex").read_text()
        assert tex.count(r"\begin{tabular}") + tex.count(r"\begin{longtable}") == 1 and r"\bottomrule" in tex
    diff = pd.read_csv(out / "tables" / "paper_diff.csv", keep_default_na=False)
    assert set(diff.status) <= {"match", "deviates", "config check", "not comparable", "not run"}
    assert {"config check", "not run", "not comparable"} <= set(diff.status)
    cross = pd.read_csv(out / "tables" / "cross.csv")
    for v in ("segformer", "sdcpc", "msaf_baseline", "msaf"):
        rec = cross[cross.variant == v].iloc[0]
        assert 0 <= rec.mIoU <= 100 and 0 <= rec.mVC8 <= 100 and rec.FPS > 0 and rec.Params > 0, rec
    # per run: n, the 95% half-width (none for one seed), convergence; every pretrained encoder's curve
    assert {"seeds", "mIoU ci95", "converged", "last-quarter change"} <= set(cross.columns)
    conv = pd.read_csv(out / "tables" / "convergence.csv")
    assert set(conv[conv.stage == "pretrain"].backbone) == {"mit_b0", "resnet18"}
    assert len(conv[conv.stage == "train"]) == len(cross) and conv.curve.notna().all()
    claims = pd.read_csv(out / "tables" / "claims.csv", keep_default_na=False)
    assert set(claims.verdict) <= {"reproduced", "contradicted", "inconclusive", "not run"}
    assert (claims[claims.claim == "SD-CPC > SegFormer"].verdict == "inconclusive").all()   # one seed each
    per_class = pd.read_csv(out / "tables" / "per_class.csv")
    assert set(per_class.variant) == set(cross.variant) and per_class["object"].any()
    for r in ("mit_b0", "resnet18"):   # the encoders every run started from, in the public layouts
        assert (out / "pretrain/synthetic" / r / f"{r}.pth").exists()
    for name in PLOTS:
        assert (out / "plots" / f"{name}.png").read_bytes()[:4] == b"\x89PNG"
        assert (out / "plots" / f"{name}.pdf").read_bytes()[:5] == b"%PDF-"
    # provenance: every result JSON carries it; the tables carry commit + config hash
    metrics = json.loads((out / "runs/synthetic/mit_b0/sdcpc/seed0/metrics.json").read_text())
    assert {"git_commit", "config_hash", "seed"} <= set(metrics["provenance"])
    assert "config hash" in (out / "tables" / "sdcpc_t3.tex").read_text()
    # a second run with nothing changed schedules nothing
    again = snakemake("-n", "tables", "--config", "experiment=smoke", "variants_file=my_variants.yaml", cwd=project)
    assert again.returncode == 0 and "Nothing to be done" in again.stdout + again.stderr
    # results are readable by the group and others as the umask (022 here) allows
    umask = os.umask(0)
    os.umask(umask)
    modes = {stat.S_IMODE(p.stat().st_mode) for p in out.rglob("*") if p.is_file()}
    assert modes == {0o666 & ~umask}, sorted(oct(m) for m in modes)


@pytest.mark.slow
def test_report_shows_every_table_and_plot_with_its_caption(smoke_run, tmp_path):
    project, out, res = smoke_run
    assert res.returncode == 0, res.stderr[-4000:]
    html = tmp_path / "report.html"
    rep = snakemake("--report", str(html), "--config", "experiment=smoke", "variants_file=my_variants.yaml",
                    cwd=project)   # no --cores: --report needs none
    assert rep.returncode == 0, rep.stderr[-3000:]
    text = html.read_text(errors="replace")
    for name in ("tradeoff.png", "ablation.png", "cross.csv", "paper_diff.csv", "sdcpc_t3.csv"):
        assert name in text, name
    for caption in ("marker area = parameters", "every cell is *paper | ours | delta*",
                    "One row per printed cell of every paper table"):
        assert caption.split("*")[0] in text, caption


@pytest.mark.slow
def test_a_moved_project_reruns_nothing_and_a_change_reruns_exactly_its_jobs(smoke_run, tmp_path):
    """Moving the finished project (say $HOME to $SCRATCH) schedules nothing: no job depends on a machine
    path. A changed registry entry reruns that variant's jobs and what reads them; changed model code
    reruns that family."""
    project, out, res = smoke_run
    assert res.returncode == 0, res.stderr[-4000:]
    moved = tmp_path / "scratch" / "moved project"
    shutil.copytree(project, moved, symlinks=True)   # copy2: times kept, as mv or rsync -a keep them

    def dry_run() -> dict[str, int]:
        r = snakemake("-n", "tables", "--config", "experiment=smoke", "variants_file=my_variants.yaml", cwd=moved)
        assert r.returncode == 0, r.stderr[-3000:]
        text = r.stdout + r.stderr
        return {} if "Nothing to be done" in text else job_stats(text)

    assert dry_run() == {}
    registry = moved / "my_variants.yaml"
    shipped = registry.read_text()
    registry.write_text(shipped.replace("options: {points: 4,", "options: {points: 9,", 1))
    # sdcpc is the one trained entry that inherits points (sdcpc_p25 sets its own): its training, evaluation,
    # both of its counts, the FPS group of its backbone, and the reports
    assert dry_run() == {"train": 1, "evaluate": 1, "count_complexity": 2, "fps": 1, "report_tables": 1,
                         "report_plots": 1, "tables": 1}
    registry.write_text(shipped)
    assert dry_run() == {}
    with open(moved / "models" / "ops" / "dcnv3.py", "a") as f:   # SD-CPC's deformable sampling only
        f.write("\n_CHANGED = True\n")
    # sdcpc and sdcpc_p25 retrain; the complexity groups (one job per dataset and backbone) holding either
    assert dry_run() == {"train": 2, "evaluate": 2, "count_complexity": 2, "fps": 1, "report_tables": 1,
                         "report_plots": 1, "tables": 1}


@pytest.mark.slow
def test_added_variant_is_trained_counted_timed_and_tabled(smoke_run):
    project, out, res = smoke_run
    assert res.returncode == 0, res.stderr[-4000:]
    assert (out / "runs/synthetic/mit_b0/sdcpc_p25/seed0/metrics.json").exists()
    assert (out / "fps/synthetic/mit_b0/sdcpc_p25.json").exists()
    assert (out / "complexity/synthetic/mit_b0/sdcpc_p25@32x32.json").exists()
    cross = pd.read_csv(out / "tables" / "cross.csv")
    assert "sdcpc_p25" in set(cross.variant)
    for t in ("sdcpc_t3", "sdcpc_p"):
        tab = pd.read_csv(out / "tables" / f"{t}.csv")
        new = tab[tab.variant == "sdcpc_p25"]
        assert len(new) == 1 and new.iloc[0].method == "P=25" and pd.notna(new.iloc[0]["mIoU ours"])


@pytest.mark.slow
def test_schedule_probe_is_the_experiments_own_run_at_another_length(smoke_run, tmp_path):
    """benchmarks.schedule_probe retrains a run of the experiment with only its length (and, asked, its crop)
    changed: at the smoke run's own 3 iterations it reproduces the pipeline's mIoU to the digit; at 6 on full
    frames it trains 6 iterations on the whole 32x32 frame from the same encoder."""
    project, out, res = smoke_run
    assert res.returncode == 0, res.stderr[-4000:]

    def probe(*args):
        return subprocess.run([sys.executable, "-m", "benchmarks.schedule_probe", "--experiment", "smoke",
                               "--variants", "segformer", "--out", str(tmp_path), *args],
                              cwd=project, capture_output=True, text=True, timeout=600)

    same = probe("--iters", "3")
    assert same.returncode == 0, same.stderr
    variant, backbone, seed, iters, frames, miou, *_ = same.stdout.splitlines()[-1].split()
    assert (variant, backbone, seed, iters, frames) == ("segformer", "mit_b0", "0", "3", "crop")
    pipeline = json.loads((out / "runs/synthetic/mit_b0/segformer/seed0/metrics.json").read_text())["miou"]
    assert miou == f"{100 * pipeline:.2f}"
    longer = probe("--iters", "6", "--full-frames")
    assert longer.returncode == 0, longer.stderr
    assert longer.stdout.splitlines()[-1].split()[3:5] == ["6", "full"]
    log = pd.read_csv(tmp_path / "segformer/6-full/seed0/train_log.csv")
    assert log.iteration.max() == 6 and log.val_miou.notna().sum() >= 2
    unknown = probe("--iters", "3", "--variants", "sdcpc_wo_la")   # the smoke experiment does not train it
    assert unknown.returncode == 1 and unknown.stderr.count("\n") == 1 and "trains no variant" in unknown.stderr
