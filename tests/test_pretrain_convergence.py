"""Pretrain once, fine-tune many (engine.pretrain), validation during training and the convergence rule
(engine.convergence), several complexity counts in one process, and the statistics and claims of the
reports (reports.stats, reports.claims)."""
from __future__ import annotations

import csv
import json
import math
import statistics

import pytest
import torch

from common.cli import InputError
from engine import checkpoint as ckpt_io
from engine.convergence import last_quarter
from engine.validation import Validator
from tests.fixtures import write_synthetic_tree


@pytest.fixture(scope="module")
def tree(tmp_path_factory):
    return write_synthetic_tree(tmp_path_factory.mktemp("syn") / "syn", train_videos=2, val_videos=2, frames=6,
                                size=(32, 32), classes=4, annotate="dense")


def train_cli(tree, out, variant, backbone, *extra):
    from engine.train import main

    return main(["--variant", variant, "--backbone", backbone, "--dataset", "synthetic", "--root", str(tree),
                 "--out", str(out), "--threads", "1", "--progress", "none", "--batch-size", "2", *extra])


def log_rows(run):
    return list(csv.DictReader(open(run / "train_log.csv")))


# ---------------------------------------------------------------------------------------------- convergence
@pytest.mark.parametrize("curve, iters, change, spread, converged", [
    ([(60, 40.1), (120, 44.0), (180, 44.6), (240, 44.9)], 240, 0.3, 0.3, True),     # two points: their difference
    ([(60, 40.1), (120, 44.0), (180, 43.5), (240, 44.9)], 240, 1.4, 1.4, False),
    # three points 150, 175, 200: slope of the least-squares line (41.2, 40.1, 41.0) is -0.2 / 50 per
    # iteration, over the quarter's 50 iterations -0.2; the jitter (range) is 1.1
    ([(50, 40.0), (100, 41.0), (150, 41.2), (175, 40.1), (200, 41.0)], 200, -0.2, 1.1, True),
    ([(150, 40.0), (175, 41.0), (200, 42.0)], 200, 2.0, 2.0, False),               # a rising line
    ([(100, 40.0), (200, 41.0)], 200, None, None, None),                           # one point: not measured
])
def test_last_quarter_is_the_trend_of_the_points_in_it(curve, iters, change, spread, converged):
    got = last_quarter(curve, iters)
    assert got["converged"] is converged
    for key, want in (("change", change), ("range", spread)):
        assert got[key] == want if want is None else math.isclose(got[key], want, abs_tol=1e-9), key


def test_validation_is_logged_resumes_and_equals_engine_validate(tree, tmp_path):
    """val_miou on every validated iteration (fractions), kept across a resume; the final point equals the
    mIoU engine.validate writes for the model; nothing else of the run changes."""
    from engine.train import TrainingInterrupted, main as train_main  # noqa: F401
    from engine.validate import main as validate_main

    run = tmp_path / "run"
    assert train_cli(tree, run, "msaf", "resnet18", "--iters", "4", "--checkpoint-every", "2",
                     "--validate-every", "2") == 0
    rows = log_rows(run)
    validated = {int(r["iteration"]): float(r["val_miou"]) for r in rows if r["val_miou"]}
    assert set(validated) == {2, 4} and all(0 <= v <= 1 for v in validated.values())
    assert validate_main(["--checkpoint", str(run / "model.pt"), "--dataset", "synthetic", "--root", str(tree),
                          "--pred", str(tmp_path / "pred"), "--out", str(tmp_path / "m.json")]) == 0
    final = json.loads((tmp_path / "m.json").read_text())["miou_benchmark"]
    assert validated[4] == pytest.approx(final, abs=1e-9)
    # the same run without validation: the same weights (validation draws no random number)
    plain = tmp_path / "plain"
    assert train_cli(tree, plain, "msaf", "resnet18", "--iters", "4", "--checkpoint-every", "2") == 0
    a, b = (ckpt_io.load_model_file(p / "model.pt")["state_dict"] for p in (run, plain))
    assert all(torch.equal(a[k], b[k]) for k in a)
    # validate_final false leaves the last iteration to engine.validate
    nofinal = tmp_path / "nofinal"
    assert train_cli(tree, nofinal, "segformer", "mit_b0", "--iters", "3", "--validate-every", "2",
                     "--validate-final", "false") == 0
    assert [int(r["iteration"]) for r in log_rows(nofinal) if r["val_miou"]] == [2]


def test_streaming_validation_equals_the_clip_forward(tree, monkeypatch):
    """MSAF's frame-by-frame validation (each frame through the backbone once) scores as the clip forward."""
    import models.outputs
    from models.registry import build_model, get_variant

    v = get_variant("msaf")
    torch.manual_seed(0)
    model = build_model(v, "resnet18", 4).eval()
    validator = Validator("synthetic", tree, v.clip_offsets, torch.device("cpu"), batch=3)   # batches span videos
    streamed = validator(model)["val_miou"]
    monkeypatch.setattr(models.outputs, "supports_streaming", lambda m: False)   # clip forwards instead
    assert validator(model)["val_miou"] == pytest.approx(streamed, abs=1e-12)


# ---------------------------------------------------------------------------------------------- pretrain
def test_pretrain_writes_the_public_layouts_and_every_run_loads_them(tree, tmp_path):
    from engine.pretrain import main as pretrain_main
    from models.registry import build_model, get_variant

    mit = tmp_path / "mit"
    assert pretrain_main(["--variant", "segformer", "--backbone", "mit_b0", "--dataset", "synthetic", "--root",
                          str(tree), "--out", str(mit), "--encoder", str(mit / "mit_b0.pth"), "--iters", "2",
                          "--threads", "1", "--progress", "none"]) == 0
    state = torch.load(mit / "mit_b0.pth", weights_only=True)
    # the official SegFormer mit_b0.pth keys: a plain state dict of the encoder alone
    assert {"patch_embed1.proj.weight", "block1.0.attn.q.weight", "block1.0.attn.kv.weight", "norm4.weight",
            "block4.1.mlp.dwconv.dwconv.weight"} <= set(state)
    assert not any(k.startswith(("head", "decode", "backbone.")) for k in state)
    info = json.loads((mit / "mit_b0.json").read_text())
    assert info["tensors"] == len(state) and info["reloaded_max_abs_difference"] == 0.0
    # a temporal variant starts from it: its encoder is the file's, its own modules are new
    trained = ckpt_io.load_model_file(mit / "model.pt")["state_dict"]
    run = tmp_path / "sdcpc"
    assert train_cli(tree, run, "sdcpc", "mit_b0", "--iters", "1", "--lr", "1e-12", "--head-lr-mult", "1",
                     "--pretrained", str(mit / "mit_b0.pth")) == 0
    meta = ckpt_io.load_model_file(run / "model.pt")
    assert "mit_b0.pth" in meta["provenance"]["backbone_init"]
    fresh = build_model(get_variant("sdcpc"), "mit_b0", 4)
    from models.pretrained import load_pretrained

    load_pretrained(fresh, mit / "mit_b0.pth", "mit_b0")   # strict: every encoder tensor from the file
    assert torch.equal(fresh.backbone.patch_embed1.proj.weight, trained["backbone.patch_embed1.proj.weight"])

    res = tmp_path / "r18"
    assert pretrain_main(["--variant", "msaf_baseline", "--backbone", "resnet18", "--dataset", "synthetic",
                          "--root", str(tree), "--out", str(res), "--encoder", str(res / "resnet18.pth"),
                          "--iters", "1", "--threads", "1", "--progress", "none"]) == 0
    ckpt = torch.load(res / "resnet18.pth", weights_only=True)
    # mmcv's ResNetV1c checkpoint: meta + state_dict with the deep stem
    assert set(ckpt) == {"meta", "state_dict"}
    assert {"stem.0.weight", "stem.7.running_var", "layer1.0.conv1.weight", "layer4.1.bn2.weight"} <= set(ckpt["state_dict"])


def test_pretrain_refuses_a_multi_frame_variant_before_training(tree, tmp_path):
    from engine.pretrain import main as pretrain_main

    with pytest.raises(InputError, match="pretraining is on single frames"):
        pretrain_main(["--variant", "sdcpc", "--backbone", "mit_b0", "--dataset", "synthetic", "--root", str(tree),
                       "--out", str(tmp_path / "x"), "--encoder", str(tmp_path / "x" / "mit_b0.pth")])
    assert not (tmp_path / "x").exists()


# ---------------------------------------------------------------------------------------------- complexity
def test_several_counts_in_one_process_equal_one_process_each(tmp_path):
    from metrics.complexity import main, measure
    from models.registry import get_variant

    out = tmp_path / "group"
    assert main(["--backbone", "mit_b0", "--dataset", "synthetic", "--count", f"segformer@32x64={out}/a.json",
                 "--count", f"sdcpc@32x32={out}/b.json"]) == 0
    for name, (v, h, w) in {"a": ("segformer", 32, 64), "b": ("sdcpc", 32, 32)}.items():
        got = json.loads((out / f"{name}.json").read_text())
        alone = measure(get_variant(v), "mit_b0", "synthetic", h, w)
        assert (got["params"], got["gflops"], got["gflops_paper_convention"], got["resolution"]) == \
            (alone["params"], alone["gflops"], alone["gflops_paper_convention"], [h, w])
    with pytest.raises(InputError, match="VARIANT@HxW=OUT"):
        main(["--backbone", "mit_b0", "--dataset", "synthetic", "--count", "segformer@32=x.json"])


# ---------------------------------------------------------------------------------------------- statistics
def test_interval_and_welch_follow_their_formulas():
    from scipy import stats as st

    from reports.stats import difference, summary, verdict

    s = summary([1.0, 2.0, 3.0])
    assert (s.mean, s.std, s.n) == (2.0, 1.0, 3) and s.half == pytest.approx(4.302652729749464 / math.sqrt(3))
    assert summary([5.0]).half is None and summary([]).mean is None
    a, b = [1.0, 2.0, 3.0], [4.0, 5.0, 6.0, 7.0]
    va, vb = statistics.variance(a) / 3, statistics.variance(b) / 4        # Welch: per-mean variances
    df = (va + vb) ** 2 / (va ** 2 / 2 + vb ** 2 / 3)                      # Welch-Satterthwaite
    d = difference(a, b)
    assert d.diff == -3.5 and d.df == pytest.approx(df)
    half = st.t.ppf(0.975, df) * math.sqrt(va + vb)
    assert (d.low, d.high) == (pytest.approx(-3.5 - half), pytest.approx(-3.5 + half))
    assert d.p == pytest.approx(2 * st.t.cdf(-3.5 / math.sqrt(va + vb), df))
    assert verdict(d, paper=-1.0) == "reproduced" and verdict(d, paper=2.0) == "contradicted"
    assert verdict(difference([1.0, 3.0], [2.0, 2.5]), 1.0) == "inconclusive"
    assert verdict(difference([1.0], [2.0, 3.0]), 1.0) == "inconclusive"     # one seed: no interval


def test_every_claim_resolves_and_its_paper_difference_is_computed():
    from models.registry import load_variants
    from reports import paper as P
    from reports.claims import load_claims, paper_difference

    variants = load_variants()
    reported = P.load(variants=variants)
    claims = load_claims(reported=reported, variants=variants)
    keyed = {(c.a, c.b, c.metric): c for c in claims}
    assert len(keyed) == len(claims)                                         # no claim twice
    assert paper_difference(keyed["sdcpc", "segformer", "mIoU"], reported) == (39.9, 36.5)
    assert paper_difference(keyed["msaf", "msaf_baseline", "TC"], reported) == (73.9, 68.5)    # Table 1
    assert paper_difference(keyed["msaf", "msaf_baseline", "mIoU"], reported) == (80.4, 74.5)  # Table 3
    assert paper_difference(keyed["msaf_motion_only", "msaf_baseline_tr", "mIoU"], reported) == (79.1, 77.5)
    p9 = paper_difference(keyed["sdcpc_p9", "sdcpc", "mVC16"], reported)     # the text's gain, derived
    assert p9[0] - p9[1] == pytest.approx(0.2)
    t3 = [v for v in dict.fromkeys(reported[(reported.table == "sdcpc_t3") & (reported.variant != "")].variant)]
    assert all(("sdcpc", v, "mVC8") in keyed for v in t3 if v != "sdcpc")    # every Table 3 row below SD-CPC
    assert all(("msaf", v, "mIoU") in keyed for v in
               set(reported[(reported.table == "msaf_t3") & (reported.variant != "")].variant) - {"msaf"})


def test_a_bad_claim_is_one_line(tmp_path):
    from reports.claims import load_claims

    f = tmp_path / "claims.yaml"
    f.write_text("claims:\n  - {paper: msaf, table: msaf_t3, a: msaf, b: msaf_baseline, metrics: [mIoUU]}\n")
    with pytest.raises(InputError, match=r"claims/0: metrics \['mIoUU'\]"):
        load_claims(f)
    f.write_text("claims:\n  - {paper: msaf, table: msaf_t1, a: msaf, b: msaf_baseline, metrics: [TC]}\n")
    with pytest.raises(InputError, match="rows of msaf with a TC cell"):    # several backbones: name one
        load_claims(f)


def test_cpu_bfloat16_autocast_is_deterministic_and_changes_the_numbers(tmp_path):
    from tests.test_engine_train import run_tiny, tiny_cfg, weights

    run_tiny(tmp_path / "a", cfg=tiny_cfg(iters=3, cpu_amp=True))
    run_tiny(tmp_path / "b", cfg=tiny_cfg(iters=3, cpu_amp=True))
    run_tiny(tmp_path / "c", cfg=tiny_cfg(iters=3))
    a, b, c = (weights(tmp_path / x / "model.pt") for x in "abc")
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert any(not torch.equal(a[k], c[k]) for k in a if a[k].is_floating_point())
    with pytest.raises(InputError, match="cpu_amp needs amp_dtype bfloat16"):
        tiny_cfg(cpu_amp=True, amp_dtype="float16")


def test_claims_carry_each_sides_converged_seeds_and_latex_marks_unconverged():
    """A claim between runs still learning when the schedule ended says so beside its verdict."""
    from metrics.info import METRICS
    from models.registry import load_variants
    from reports import paper as P
    from reports.claims import claims_table, load_claims
    from reports.latex import NOT_CONVERGED_MARK, claims_tex
    from reports.results import Measured

    variants = load_variants()
    reported = P.load(variants=variants)
    claim = [c for c in load_claims(reported=reported, variants=variants)
             if (c.a, c.b, c.metric) == ("sdcpc", "segformer", "mIoU")]
    plan = {"seeds": [0, 1], "runs": [{"dataset": "synthetic", "backbone": "mit_b0", "variant": v, "seeds": [0, 1]}
                                       for v in ("sdcpc", "segformer", "sdcpc_wo_la")]}
    meas = Measured()
    flat, rising = [(60, 40.0), (80, 40.5)], [(60, 40.0), (80, 43.0)]
    for v, miou, curves in (("sdcpc", [45.0, 46.0], [rising, flat]), ("segformer", [40.0, 41.0], [flat, flat])):
        key = ("synthetic", "mit_b0", v)
        meas.metrics[key] = {METRICS["mIoU"].key: miou}
        for seed, curve in enumerate(curves):
            meas.curves[key, seed], meas.iterations[key, seed] = curve, 80
    row = claims_table(claim, reported, meas, plan, variants).iloc[0]
    assert (row.converged_a, row.converged_b, row.both_converged) == ("1/2", "2/2", False)
    assert row.verdict == "reproduced"                                       # the test itself is unchanged
    assert NOT_CONVERGED_MARK in claims_tex(claims_table(claim, reported, meas, plan, variants), "c")
    sdcpc = ("synthetic", "mit_b0", "sdcpc")
    meas.curves[sdcpc, 0] = flat
    row = claims_table(claim, reported, meas, plan, variants).iloc[0]
    assert (row.converged_a, row.both_converged) == ("2/2", True)
    for seed in (0, 1):                                                      # no curve: not judged
        del meas.curves[sdcpc, seed]
    row = claims_table(claim, reported, meas, plan, variants).iloc[0]
    assert row.converged_a is None and row.both_converged is None
    meas.curves[("synthetic", "mit_b0", "segformer"), 1] = rising            # one judged side fails: False
    row = claims_table(claim, reported, meas, plan, variants).iloc[0]
    assert (row.converged_a, row.converged_b, row.both_converged) == (None, "1/2", False)
