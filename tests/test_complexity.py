"""metrics.complexity: fvcore handles, the paper (mmcv-hook) convention, parameters, the CLI."""
import json
from functools import lru_cache

import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F

from common.cli import run_cli
from metrics import complexity
from models.registry import load_variants
from metrics.complexity import (ELEMENTWISE_OPS, default_resolution, fvcore_flops, main, measure,
                                module_hook_flops, paper_attention_flops, parameter_counts)


class SDPAAttention(nn.Module):
    def forward(self, q, k, v):
        return F.scaled_dot_product_attention(q, k, v)


class MatmulAttention(nn.Module):
    def forward(self, q, k, v):
        return torch.softmax(q @ k.transpose(-1, -2) / q.shape[-1] ** 0.5, -1) @ v


def _fvcore_total(module, *inputs):
    from fvcore.nn import FlopCountAnalysis
    a = FlopCountAnalysis(module, inputs).set_op_handle(**complexity.FVCORE_HANDLES)
    a.unsupported_ops_warnings(False)
    return a.total(), a.unsupported_ops()


def test_sdpa_handle_counts_what_explicit_matmuls_count():
    q, k, v = torch.randn(2, 3, 10, 4), torch.randn(2, 3, 7, 4), torch.randn(2, 3, 7, 6)
    sdpa, _ = _fvcore_total(SDPAAttention(), q, k, v)
    matmul, _ = _fvcore_total(MatmulAttention(), q, k, v)
    assert sdpa == matmul == 2 * 3 * 10 * 7 * (4 + 6)


def test_sdpa_unhandled_would_be_a_silent_zero():
    """Why the handle exists: plain fvcore counts SDPA as 0 and lists it as unsupported."""
    from fvcore.nn import FlopCountAnalysis
    a = FlopCountAnalysis(SDPAAttention(), tuple(torch.randn(1, 1, 4, 2) for _ in range(3)))
    a.unsupported_ops_warnings(False)
    assert a.total() == 0 and "aten::scaled_dot_product_attention" in a.unsupported_ops()
    assert "aten::scaled_dot_product_attention" not in ELEMENTWISE_OPS


def test_pool_handles_count_window_elements_per_output():
    x = torch.randn(1, 2, 8, 8)
    total, by_op, unsupported = fvcore_flops(nn.Sequential(nn.MaxPool2d(3, 2, 1), nn.AvgPool2d(2)), x)
    # max: 2x4x4 outputs x 9; avg: 2x2x2 outputs x 4
    assert by_op == {"max_pool2d": 2 * 4 * 4 * 9, "avg_pool2d": 2 * 2 * 2 * 4} and not unsupported
    total, _, _ = fvcore_flops(nn.Sequential(nn.MaxPool2d((3, 1), 1, (1, 0))), x)
    assert total == 2 * 8 * 8 * 3


def test_a_model_can_bring_its_own_fvcore_handles():
    class Gated(nn.Module):
        def forward(self, x):
            return torch.sigmoid(x) * x

        def fvcore_handles(self):
            return {"aten::mul": lambda inputs, outputs: 3}

    total, by_op, unsupported = fvcore_flops(Gated(), torch.randn(2, 4))
    assert total == 3 and "aten::mul" not in unsupported and "aten::sigmoid" in unsupported


def test_module_hooks_hand_computed():
    model = nn.Sequential(nn.Conv2d(3, 4, 3, padding=1), nn.BatchNorm2d(4), nn.ReLU(),
                          nn.Conv2d(4, 4, 3, padding=1, groups=2, bias=False)).eval()
    x = torch.randn(1, 3, 8, 8)
    conv1 = 3 * 3 * 3 * 4 * 64 + 4 * 64      # per-position MACs x positions + bias
    bn = 4 * 64 * 2                          # affine: 2 per element
    relu = 4 * 64
    conv2 = 3 * 3 * 4 * 4 // 2 * 64          # groups halve the per-position work
    assert module_hook_flops(model, x) == conv1 + bn + relu + conv2
    # linear: input elements x output features (mmcv ignores the bias); layer norm 2 per element
    seq = nn.Sequential(nn.Linear(8, 5), nn.LayerNorm(5), nn.GELU())
    assert module_hook_flops(seq, torch.randn(2, 3, 8)) == 2 * 3 * 8 * 5 + 2 * 3 * 5 * 2


def test_paper_hook_lookup_follows_the_class_hierarchy():
    class SpecialConv(nn.Conv2d):
        pass

    m = SpecialConv(1, 1, 1)
    assert complexity._paper_hook_for(m) is complexity._conv_hook
    complexity.register_paper_hook(SpecialConv, lambda mod, i, o: 7)
    try:
        assert module_hook_flops(m, torch.zeros(1, 1, 2, 2)) == 7
    finally:
        del complexity.PAPER_HOOKS[SpecialConv]


class _Encoder(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(3, 2, 1)

    def forward(self, x):
        return self.conv(x)

    def analytic_attention_flops(self, h, w):
        return h * w


class _ClipModel(nn.Module):
    """Two frames through one shared encoder, plus a training-only projection."""

    def __init__(self):
        super().__init__()
        self.encoder = _Encoder()
        self.alias = self.encoder                        # same module reachable twice
        self.projection = nn.Linear(2, 3)

    def forward(self, clip):
        return sum(self.encoder(clip[:, i]) for i in range(clip.shape[1]))

    def train_only_modules(self):
        return [self.projection]


def test_attention_term_is_one_frame_and_params_split():
    model = _ClipModel().eval()
    assert paper_attention_flops(model, 4, 5) == 20          # one encoder, counted once, for one frame
    model.paper_attention_flops = lambda h, w: 99             # a model's own term wins
    assert paper_attention_flops(model, 4, 5) == 99
    assert parameter_counts(model) == (3 * 2 + 2, 2 * 3 + 3)
    # hooks see every frame: 2 frames x (3*2 MACs + 2 bias) x 16 pixels
    assert module_hook_flops(model, torch.zeros(1, 2, 3, 4, 4)) == 2 * (6 + 2) * 16


def test_default_resolutions():
    assert default_resolution("vspw", "segformer") == (480, 853)
    assert default_resolution("vspw", "sdcpc") == (480, 853)
    assert default_resolution("cityscapes", "segformer") == (512, 1024)
    assert default_resolution("cityscapes", "sdcpc") == (512, 1024)
    assert default_resolution("cityscapes", "msaf") == (1024, 2048)
    assert default_resolution("camvid", "msaf") == (720, 960)
    assert default_resolution("synthetic", "segformer") == (64, 64)


def test_cli_writes_everything(tmp_path):
    out = tmp_path / "c.json"
    assert main(["--variant", "segformer", "--backbone", "mit_b0", "--dataset", "synthetic",
                 "--out", str(out)]) == 0
    r = json.loads(out.read_text())
    assert r["resolution"] == [64, 64] and r["frames"] == 1 and r["num_classes"] == 8
    assert r["variant"] == "segformer" and r["backbone"] == "mit_b0" and r["dataset"] == "synthetic"
    assert r["params"] == 3_319_392 + (32 + 64 + 160 + 256) * 256 + 4 * 256 + 1024 * 256 + 2 * 256 + 8 * 256 + 8
    assert r["params_train_only"] == 0
    assert r["unsupported_ops_not_elementwise"] == {}
    assert r["gflops_by_operator"]["scaled_dot_product_attention"] > 0
    assert abs(sum(r["gflops_by_operator"].values()) - r["gflops"]) < 1e-9
    parts = r["gflops_paper_convention_parts"]
    assert abs(parts["module_hooks_all_frames"] + parts["attention_one_frame"] - r["gflops_paper_convention"]) < 1e-12
    assert r["provenance"]["config_hash"] and "packages" in r["provenance"]


@pytest.mark.parametrize("argv, message", [
    (["--variant", "nope", "--backbone", "mit_b0", "--dataset", "vspw"], "no variant named 'nope'"),
    (["--variant", "segformer", "--backbone", "resnet18", "--dataset", "vspw"], "does not take backbone"),
    (["--variant", "segformer", "--backbone", "mit_b0", "--dataset", "vspw", "--height", "64"], "go together"),
    (["--variant", "segformer", "--backbone", "mit_b0", "--dataset", "vspw", "--set", "bogus=1"], "unknown option"),
    (["--variant", "segformer", "--backbone", "mit_b0", "--dataset", "vspw", "--set", "oops"], "KEY=VALUE"),
])
def test_cli_bad_input_is_one_line(argv, message, tmp_path, capsys):
    with pytest.raises(SystemExit) as e:
        run_cli(main, argv + ["--out", str(tmp_path / "x.json")])
    assert e.value.code == 1
    err = capsys.readouterr().err
    assert message in err and err.count("\n") == 1
    assert not (tmp_path / "x.json").exists()


def test_overrides_reach_the_model_and_the_record(tmp_path):
    out = tmp_path / "c.json"
    main(["--variant", "segformer", "--backbone", "mit_b0", "--dataset", "synthetic", "--height", "32",
          "--width", "64", "--set", "head_width=64", "--out", str(out)])
    r = json.loads(out.read_text())
    assert r["overrides"] == {"head_width": 64} and r["resolution"] == [32, 64]
    assert r["params"] == 3_319_392 + (32 + 64 + 160 + 256) * 64 + 4 * 64 + 256 * 64 + 2 * 64 + 8 * 64 + 8


def test_segformer_b1_vspw_matches_the_paper():
    """SD-CPC Table 1: SegFormer MiT-B1 on VSPW, 13.8M parameters (2%), 26.6 GFLOPs (5%); the rebuilt
    model (docs/reproduction-notes.md) has 13.709M and 26.63 GFLOPs in the paper convention, fvcore 0.3-0.8% above it."""
    r = measure("segformer", "mit_b1", "vspw", device="cpu")
    assert r["resolution"] == [480, 853] and r["num_classes"] == 124
    assert r["params"] == 13_709_116 and abs(r["params"] / 13.8e6 - 1) < 0.02
    assert round(r["gflops_paper_convention"], 2) == 26.63
    assert abs(r["gflops_paper_convention"] / 26.6 - 1) < 0.05
    assert 1.003 < r["gflops"] / r["gflops_paper_convention"] < 1.008
    assert r["unsupported_ops_not_elementwise"] == {}


@pytest.mark.parametrize("variant, backbone", [("msaf", "resnet18"), ("msaf_wo_state", "hrnet_w18"),
                                               ("msaf_baseline_tr", "pspnet18")])
def test_streaming_count_equals_the_whole_clip_trace(variant, backbone):
    """T x extract(one frame) + decode is exactly what tracing the whole clip counts, operator by operator,
    unsupported-op call counts included."""
    from fvcore.nn import FlopCountAnalysis

    from models import build_model

    torch.manual_seed(0)
    model = build_model(variant, backbone, num_classes=5).eval()
    clip = torch.randn(1, model.variant.num_frames, 3, 64, 96)
    total, by_op, unsupported = fvcore_flops(model, clip)
    with torch.no_grad():
        direct = FlopCountAnalysis(model, (clip,)).set_op_handle(**complexity.FVCORE_HANDLES)
        direct.unsupported_ops_warnings(False)
        direct.uncalled_modules_warnings(False)
        direct.tracer_warnings("none")
        assert total == direct.total()
        assert by_op == {k: v for k, v in direct.by_operator().items()}
        # the whole-clip trace also records MSAF._frames' slice arithmetic (T - num_frames) as one aten::sub
        # call: size bookkeeping, not a computation, and absent from the composed count
        expected = dict(direct.unsupported_ops())
        if expected.get("aten::sub") == unsupported.get("aten::sub", 0) + 1:
            expected["aten::sub"] -= 1
        assert unsupported == {k: v for k, v in expected.items() if v}


@pytest.mark.parametrize("name", sorted(load_variants()))
def test_bfloat16_trace_counts_what_float32_counts(name):
    """measure() traces in bfloat16 to save time at the papers' sizes; every registry entry must count exactly
    the same there (totals, operators, unsupported-op calls) and leave the model in float32."""
    from metrics.complexity import fvcore_flops_any_dtype
    from models import build_model
    from models.registry import family_module

    v = load_variants()[name]
    backbone = family_module(v.family).BACKBONES[0] if v.family != "msaf" else "resnet18"
    torch.manual_seed(0)
    model = build_model(v, backbone, num_classes=5).eval()
    clip = torch.randn(1, v.num_frames, 3, 64, 96)
    *counted, dtype = fvcore_flops_any_dtype(model, clip)
    assert dtype == "bfloat16" and tuple(counted) == fvcore_flops(model, clip)
    assert all(p.dtype == torch.float32 for p in model.parameters())


def _reported_sdcpc_cells():
    import csv
    from pathlib import Path

    rows = csv.DictReader(open(Path(__file__).resolve().parents[1] / "config" / "paper" / "reported.csv"))
    return [r for r in rows if r["table"] in ("sdcpc_t1", "sdcpc_t3") and r["variant"].startswith("sdcpc")
            and r["column"] in ("GFLOPs", "Params")]


@lru_cache(maxsize=None)
def _paper_convention(variant, backbone, num_classes, height, width):
    """(paper-convention GFLOPs, inference params in M), counted on a meta-device twin (shapes only)."""
    from models import build_model

    with torch.device("meta"):
        model = build_model(variant, backbone, num_classes).eval()
    clip = torch.empty(1, model.variant.num_frames, 3, height, width, device="meta")
    gflops = (module_hook_flops(model, clip) + paper_attention_flops(model, height, width)) / 1e9
    return gflops, parameter_counts(model)[0] / 1e6


@pytest.mark.parametrize("row", _reported_sdcpc_cells(),
                         ids=lambda r: f"{r['table']}-{r['variant']}-{r['backbone']}-{r['column']}")
def test_sdcpc_tables_1_and_3_within_their_tolerance(row):
    """Every SD-CPC Table 1 / Table 3 params and GFLOPs cell (VSPW, 480x853, 124 classes) is reproduced within
    the tolerance config/paper/reported.csv gives it (params 3 %, GFLOPs 5 %), in the papers' convention."""
    height, width = map(int, row["resolution"].split("x"))
    gflops, params = _paper_convention(row["variant"], row["backbone"], 124, height, width)
    ours = gflops if row["column"] == "GFLOPs" else params
    tolerance = float(row["tolerance"].rstrip("%")) / 100
    assert abs(ours / float(row["value"]) - 1) <= tolerance, f"{row['row']}: ours {ours:.2f}, paper {row['value']}"
