"""MSAF (Su et al., CVPR 2023): semantic assignment on hand-made cases, every registered variant on every backbone, the
loss of Eq. (15), gradients, the Baseline + TR parameter condition, fvcore tracing."""
import math
from functools import lru_cache

import pytest
import torch

import models.msaf as msaf
from models import build_model, load_variants
from models.backbones import build_cnn_backbone
from models.msaf import (BACKBONES, cosine_assignment, head_parameters, matching_vanilla_depth,
                         region_descriptors)

VARIANTS = sorted(name for name, v in load_variants().items() if v.family == "msaf")
K = 5


def n_params(m):
    return sum(p.numel() for p in m.parameters())


def clip_for(model, size=32, batch=1, seed=0):
    g = torch.Generator().manual_seed(seed)
    return torch.randn(batch, len(model.ref_offsets) + 1, 3, size, size, generator=g)


# ------------------------------------------------------------------------------------ semantic assignment
def test_cosine_assignment_hand_made():
    # two pixels, 2-d descriptors; regions r0 = (2, 0), r1 = (0, 5)
    pixels = torch.tensor([[3.0, 2.0], [0.0, 1.0]]).view(1, 2, 1, 2)  # pix0 = (3, 0), pix1 = (2, 1)
    regions = torch.tensor([[[2.0, 0.0], [0.0, 5.0]]])
    logits = cosine_assignment(pixels, regions)
    # pix . r / |r|: pix0 -> (3, 0); pix1 -> (2, 1)
    torch.testing.assert_close(logits, torch.tensor([[3.0, 2.0], [0.0, 1.0]]).view(1, 2, 1, 2))
    # Eq. (13): argmin_j 1 - cos(pix, r_j). pix1 is closer in angle to r0 (cos 2/sqrt5 > 1/sqrt5) although
    # the unnormalised product would pick r1 (4 < 5): the normalisation of r_j matters
    cos = torch.tensor([[1.0, 0.0], [2 / math.sqrt(5), 1 / math.sqrt(5)]])
    assert logits[0, :, 0].argmax(0).tolist() == (1 - cos).argmin(1).tolist() == [0, 0]
    assert (regions[0] @ pixels[0, :, 0]).argmax(0).tolist() == [0, 1]


def test_region_descriptors_are_the_soft_mask_weighted_by_each_logit():
    ln3 = math.log(3.0)
    mask = torch.tensor([[0.0, ln3], [0.0, 0.0]]).view(1, 2, 1, 2)  # p0 = (0, 0), p1 = (ln3, 0)
    # "weighted with each logit": r_j = mean_p M'_j(p) M'(p): r_0 = (0 + ln3 (ln3, 0)) / 2, r_1 = 0
    torch.testing.assert_close(region_descriptors(mask), torch.tensor([[[ln3 * ln3 / 2, 0.0], [0.0, 0.0]]]))
    # the softmax option: class probabilities p0 (1/2, 1/2), p1 (3/4, 1/4)
    expected = torch.tensor([[[0.375 * ln3, 0.0], [0.125 * ln3, 0.0]]])
    torch.testing.assert_close(region_descriptors(mask, "softmax"), expected)
    with pytest.raises(ValueError, match="region_weights must be one of logits, softmax"):
        region_descriptors(mask, "sigmoid")


# ------------------------------------------------------------------------------------ every variant x backbone
@lru_cache(maxsize=None)
def _shared_backbone(name, stem=None):
    return build_cnn_backbone(name, stem=stem).eval()


@pytest.fixture
def shared_backbones(monkeypatch):
    """One backbone instance per name for every variant (building ResNet-101 / HRNet-W48 72 times would
    cost minutes); the variants differ only after the backbone."""
    monkeypatch.setattr(msaf, "build_cnn_backbone", _shared_backbone)


@pytest.mark.parametrize("backbone", BACKBONES)
def test_every_variant_gives_target_logits(backbone, shared_backbones):
    for name in VARIANTS:
        model = build_model(name, backbone, K).eval()
        clip = clip_for(model)
        with torch.no_grad():
            out = model(clip)
        stride = 4 if (name == "msaf_baseline" and backbone.startswith("hrnet")) else 8  # HRNetV2 head at 1/4
        assert model.output_stride == stride, name
        assert out.shape == (1, K, 32 // stride, 32 // stride), (name, backbone)
        assert torch.isfinite(out).all(), (name, backbone)


def test_frames_read_follow_the_registry(shared_backbones):
    v = load_variants()
    assert v["msaf"].clip_offsets == (-2, -1, 0)
    model = build_model("msaf_wo_motion", "resnet18", K).eval()
    clip3 = torch.randn(1, 3, 3, 32, 32)
    with torch.no_grad():  # single-frame variants read the target (last) frame only
        torch.testing.assert_close(model(clip3), model(clip3[:, -1:]))
    full = build_model("msaf", "resnet18", K).eval()
    with pytest.raises(ValueError, match="reads 3 frames, the clip has 2"):
        full(clip3[:, 1:])


@pytest.mark.parametrize("backbone, name", [("resnet18", "msaf"), ("hrnet_w18", "msaf_wo_state"),
                                            ("pspnet18", "msaf_baseline")])
def test_streaming_decode_equals_the_clip_forward(backbone, name, shared_backbones):
    """extract() per frame + decode() of the stacked features (what a streaming caller caching the
    references' backbone features runs) gives the clip forward's logits."""
    model = build_model(name, backbone, K).eval()
    clip = clip_for(model, size=64)
    with torch.no_grad():
        whole = model(clip)
        per_frame = [model.extract(clip[:, i]) for i in range(clip.shape[1])]
        streamed = model.decode([torch.stack(f, 1) for f in zip(*per_frame)])
    scale = whole.abs().max()  # random-init activations are large in eval; compare relative to them
    torch.testing.assert_close(streamed / scale, whole / scale, rtol=0, atol=1e-5)


def test_pspnet_baseline_is_pspnet():
    with torch.device("meta"):
        model = build_model("msaf_baseline", "pspnet50", 19)
        hr = build_model("msaf_baseline", "hrnet_w48", 19)
    # dilated ResNet-50 + PPM (23.07M) + dropout + 1x1 classifier: mmseg's PSPNet-R50 without auxiliary head
    assert n_params(model) == 23_527_264 + 23_073_792 + 512 * 19 + 19
    assert n_params(hr) / 1e6 == pytest.approx(65.86, abs=0.005)  # HRNetV2-W48 with its head


# ------------------------------------------------------------------------------------ training: loss, grads
EXPECTED_LOSSES = {
    "msaf": {"ce", "pd", "rd"}, "msaf_wo_motion": {"ce", "pd", "rd"}, "msaf_wo_state": {"ce", "pd", "rd"},
    "msaf_wo_semantics": {"pd", "rd"}, "msaf_wo_dcn": {"ce", "pd", "rd"},
    "msaf_baseline": {"ce"}, "msaf_baseline_tr": {"ce"}, "msaf_motion_only": {"ce"}, "msaf_state_only": {"ce"},
}


@pytest.mark.parametrize("name", VARIANTS)
def test_loss_and_gradients_reach_every_parameter(name):
    torch.manual_seed(0)
    model = build_model(name, "resnet18", K).train()
    clip = clip_for(model, batch=2)
    target = torch.randint(0, K, (2, 32, 32))
    target[:, :4] = 255  # ignored rows
    out = model(clip)
    assert out["logits"].shape == (2, K, 4, 4)
    losses = model.loss(out, target)
    assert set(losses) == EXPECTED_LOSSES[name] | {"total"}
    torch.testing.assert_close(losses["total"], sum(v for k, v in losses.items() if k != "total"))
    losses["total"].backward()
    dead = [n for n, p in model.named_parameters()
            if p.requires_grad and (p.grad is None or not p.grad.abs().sum() > 0)]
    assert dead == []


@pytest.mark.parametrize("backbone", ["pspnet18", "hrnet_w18"])
def test_full_msaf_gradients_on_other_backbones(backbone):
    torch.manual_seed(0)
    model = build_model("msaf", backbone, K).train()
    model.loss(model(clip_for(model, batch=2)), torch.randint(0, K, (2, 32, 32)))["total"].backward()
    assert [n for n, p in model.named_parameters() if p.grad is None or not p.grad.abs().sum() > 0] == []


def test_semantic_assignment_logits_are_the_cosine_of_the_two_branches():
    torch.manual_seed(0)
    model = build_model("msaf", "resnet18", K).train()
    out = model(clip_for(model, batch=2))
    expected = cosine_assignment(out["pixel_logits"], region_descriptors(out["mask_logits"]))
    torch.testing.assert_close(out["logits"], expected)
    soft = build_model("msaf", "resnet18", K, region_weights="softmax").train()
    out = soft(clip_for(soft, batch=2))
    torch.testing.assert_close(out["logits"], cosine_assignment(out["pixel_logits"],
                                                                region_descriptors(out["mask_logits"], "softmax")))
    wo = build_model("msaf_wo_semantics", "resnet18", K).train()
    out = wo(clip_for(wo, batch=2))
    torch.testing.assert_close(out["logits"], 0.5 * (out["pixel_logits"] + out["mask_logits"]))


def test_wo_semantics_adds_a_ce_on_the_average_only_when_asked():
    torch.manual_seed(0)
    target = torch.randint(0, K, (2, 32, 32))
    for average_ce, keys in ((False, {"pd", "rd"}), (True, {"ce", "pd", "rd"})):
        wo = build_model("msaf_wo_semantics", "resnet18", K, average_ce=average_ce).train()
        losses = wo.loss(wo(clip_for(wo, batch=2)), target)
        assert set(losses) == keys | {"total"}
        torch.testing.assert_close(losses["total"], sum(losses[k] for k in keys))


def test_lr_groups_put_the_pyramid_pooling_module_in_the_head_and_the_offsets_low():
    model = build_model("msaf", "pspnet18", K)
    groups = model.lr_groups()
    assert groups["backbone"] == [model.features.body.resnet]                   # ImageNet part only
    assert [id(m) for m in groups["offset"]] == [id(a.offset_conv) for a in model.motion_transformer.att.align]
    from engine.schedule import parameter_groups_by_name
    by_name = parameter_groups_by_name(model)
    assert {by_name[n] for n in by_name if n.startswith("features.body.ppm.")} == {"head"}
    assert {by_name[n] for n in by_name if n.startswith("features.body.resnet.")} == {"backbone"}
    assert build_model("msaf_wo_dcn", "resnet18", K).lr_groups()["offset"] == []


def test_dcn_offsets_are_bounded_and_diagnostics_see_them():
    torch.manual_seed(0)
    model = build_model("msaf", "resnet18", K).train()
    for a in model.motion_transformer.att.align:            # an offset conv gone wild: 50 px everywhere
        torch.nn.init.constant_(a.offset_conv.bias, 50.0)
    model(clip_for(model, batch=2))
    d = model.diagnostics()
    assert set(d) == {"inframe_att_dcn1", "offset_px_att_dcn1", "inframe_att_dcn2", "offset_px_att_dcn2",
                      "ref_attention"}
    # each of (dy, dx) saturates at B = 1 pixel: length sqrt(2); the 3x3 taps stay within 2 pixels
    assert d["offset_px_att_dcn1"] == pytest.approx(math.sqrt(2) * math.tanh(50.0), rel=1e-5)
    assert d["inframe_att_dcn1"] > 0.5 and 0.0 < d["ref_attention"] < 1.0
    assert model.diagnostics() == {}


def test_torchvision_stem_option_builds_the_7x7_stem():
    model = build_model("msaf", "resnet18", K, stem="v1b")
    body = model.features.body
    assert body.conv1.weight.shape == (64, 3, 7, 7) and not hasattr(body, "stem")
    with torch.no_grad():
        assert model.eval()(clip_for(model)).shape == (1, K, 4, 4)                # output stride 8 still
    with pytest.raises(ValueError, match="has its own stem"):
        build_model("msaf", "hrnet_w18", K, stem="v1b")


# ------------------------------------------------------------------------------------ parameters
@pytest.mark.parametrize("backbone", BACKBONES)
def test_baseline_tr_has_at_least_msaf_parameters(backbone):
    """The paper: Baseline + TR "has more parameters than the whole framework MSAF"."""
    with torch.device("meta"):
        full = build_model("msaf", backbone, 19)
        tr = build_model("msaf_baseline_tr", backbone, 19)
    assert n_params(tr) >= n_params(full)
    assert head_parameters(tr) >= head_parameters(full)
    one_less = len(tr.motion_transformer.blocks) - 1  # and it is the smallest such depth
    with torch.device("meta"):
        smaller = build_model("msaf_baseline_tr", backbone, 19, vanilla_depth=one_less)
    assert n_params(smaller) < n_params(full)


def test_baseline_tr_whole_model_parameters_real():
    torch.manual_seed(0)
    full, tr = build_model("msaf", "resnet18", 19), build_model("msaf_baseline_tr", "resnet18", 19)
    assert n_params(tr) >= n_params(full)
    d, h = msaf.EMBED["resnet18"]
    assert len(tr.motion_transformer.blocks) == matching_vanilla_depth("resnet18", 19, 3, d, h,
                                                                       tuple(full.features.channels))


# ------------------------------------------------------------------------------------ fvcore, options
@pytest.mark.parametrize("name", ["msaf", "msaf_baseline_tr", "msaf_wo_state"])
def test_traces_with_fvcore_and_counts_attention(name):
    from fvcore.nn import FlopCountAnalysis

    from metrics.complexity import sdpa_flops
    model = build_model(name, "resnet18", K).eval()
    clip = clip_for(model, size=64)
    with torch.no_grad():
        analysis = FlopCountAnalysis(model, (clip,)).set_op_handle(
            **{"aten::scaled_dot_product_attention": sdpa_flops})
        analysis.unsupported_ops_warnings(False)
        analysis.uncalled_modules_warnings(False)
        analysis.tracer_warnings("none")
        by_op = analysis.by_operator()
    assert by_op["scaled_dot_product_attention"] == model.attention_flops(64, 64) > 0
    assert by_op["conv"] > 0
    if name != "msaf_baseline_tr":
        assert by_op["grid_sampler"] > 0  # the deformable alignment is counted (fvcore: 4 per output)


def test_attention_flops_formula():
    with torch.device("meta"):
        model = build_model("msaf", "resnet18", K)
    d = model.embed_dim
    n = 128 * 256  # F5 of a 1024x2048 frame
    pst = 2 * d * ((n // 16) ** 2 + (n // 4) ** 2 + n ** 2)
    assert model.attention_flops(1024, 2048) == pst + 2 * d * n * 9 + 2 * d * n * 16


def test_bad_options_are_clear_errors():
    with pytest.raises(ValueError, match="unknown MSAF option"):
        build_model("msaf", "resnet18", K, colour=1)
    with pytest.raises(ValueError, match="motion_transformer must be"):
        build_model("msaf", "resnet18", K, motion_transformer="swin")
    with pytest.raises(ValueError, match="needs reference frames"):
        msaf.build("resnet18", K, ref_offsets=(), motion_alignment=True)
    with pytest.raises(ValueError, match="MSAF takes backbones"):
        msaf.build("mit_b1", K, ref_offsets=(-2, -1))


