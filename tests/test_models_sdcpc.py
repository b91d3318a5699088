"""SD-CPC family: parameter counts by formula, clip-in/logits-out for every variant, gradients, MCP-CL losses."""
import math

import pytest
import torch
import torch.nn.functional as F

from models import build_model, load_variants
from models.ops.dcnv3 import dcnv3_param_count
from models.sdcpc import (HYPER, SWITCHES, build, class_prototypes, interleave_rows, mcp_cl_losses,
                          prototype_contrast_loss, variate_similarity_loss)


SDCPC_VARIANTS = sorted(n for n, v in load_variants().items() if v.family == "sdcpc")
# encoder parameters (docs/reproduction-notes.md: B0 3.319M, B1 13.151M, B2 24.196M, B5 81.443M)
ENCODER = {"mit_b0": 3_319_392, "mit_b1": 13_151_424, "mit_b2": 24_196_288, "mit_b5": 81_443_008}
CHANNELS = {"mit_b0": (32, 64, 160, 256)}
CHANNELS.update({b: (64, 128, 320, 512) for b in ("mit_b1", "mit_b2", "mit_b5")})


def expected_params(backbone: str, num_classes: int, frames: int, o: dict) -> int:
    """The count docs/reproduction-notes.md derives, written out term by term."""
    c, e, hidden, k = o["width"], o["embed_dim"], o["coord_hidden"], num_classes
    chans = CHANNELS[backbone]
    n = ENCODER[backbone]
    if o["ssea"]:
        scales = chans if o["multi_scale"] else chans[1:2]
        n += sum((ci + 1) * e for ci in scales)                               # per-scale embeddings
        n += (e * len(scales) + 1) * c                                        # 1x1 reduction 4E -> C
        if o["dcn"]:                                                          # LayerNorm + residual DCNv3
            n += 2 * c + dcnv3_param_count(c, o["dcn_groups"], math.isqrt(o["deform_points"]))
        if o["linear_attention"]:
            n += 2 * c + 4 * (c * c + c)                                      # LayerNorm + q, k, v, out
    else:
        n += (chans[1] + 1) * c                                               # F2 embedding
    if o["dssa"]:
        stage = 9 * c * hidden + 2 * hidden + 9 * hidden * 2 * o["points"] + 2 * o["points"] + 4 * (c * c + c)
        n += stage * (int(o["stage1"]) + int(o["stage2"]))
    else:
        n += (frames * c + 1) * c                                             # temporal 1x1 fusion
    m = o["variates"]
    n += (c * c + 2 * c) + (c * k + m * k) + (m * k * k + k)                 # projection + BN, variates, joint
    return n


def count(model) -> int:
    return sum(p.numel() for p in model.parameters())


def meta_build(variant, backbone, num_classes):
    with torch.device("meta"):
        return build_model(variant, backbone, num_classes)


@pytest.mark.parametrize("variant", SDCPC_VARIANTS)
def test_parameter_count_of_every_variant_matches_the_formula(variant):
    v = load_variants()[variant]
    model = meta_build(variant, "mit_b1", 124)
    assert count(model) == expected_params("mit_b1", 124, v.num_frames, {**SWITCHES, **HYPER, **v.options})


@pytest.mark.parametrize("backbone, paper_millions", [("mit_b1", 15.0), ("mit_b2", 26.0), ("mit_b5", 83.5)])
def test_full_model_parameters_within_3_percent_of_the_paper(backbone, paper_millions):
    n = count(meta_build("sdcpc", backbone, 124))
    assert n == expected_params(backbone, 124, 3, {**SWITCHES, **HYPER})
    assert abs(n / 1e6 - paper_millions) / paper_millions < 0.03


def test_headline_counts_quoted_in_the_notes():
    assert count(meta_build("sdcpc", "mit_b1", 124)) == 14_959_828
    assert count(meta_build("sdcpc", "mit_b0", 19)) == 4_988_235


# the SD-CPC modules shrunk for speed (the structure is the same; counts are tested on meta-device builds)
SMALL = {"width": 32, "embed_dim": 32, "coord_hidden": 64, "dcn_groups": 4}


def small(variant, num_classes=5, **overrides):
    return build_model(variant, "mit_b0", num_classes, **{**SMALL, **overrides})


def tiny_clip(frames=3, b=1, h=32, w=64):
    torch.manual_seed(0)
    return torch.randn(b, frames, 3, h, w)


@pytest.mark.parametrize("variant", SDCPC_VARIANTS)
def test_every_variant_clip_in_target_logits_out(variant):
    model = small(variant).eval()
    clip = tiny_clip(model.num_frames)
    with torch.no_grad():
        out = model(clip)
    assert out.shape == (1, 5, 4, 8)                                           # 1/8: the F2 size
    assert torch.isfinite(out).all()
    model.train()
    out = model(tiny_clip(model.num_frames, b=2))
    assert out["logits"].shape == (2, 5, 4, 8)
    m = model.head.variates
    assert out["variate_features"].shape == (2, m, SMALL["width"] // m, 4, 8)


def test_default_model_on_mit_b0_gives_logits_at_one_eighth():
    model = build_model("sdcpc", "mit_b0", 3).eval()
    with torch.no_grad():
        assert model(tiny_clip()).shape == (1, 3, 4, 8)


def test_target_frame_is_last_and_references_matter():
    model = small("sdcpc", 4).eval()
    clip = tiny_clip()
    with torch.no_grad():
        for stage in model.stages:                                             # let the references be read
            torch.nn.init.normal_(stage.coords.conv2.weight, std=0.05)
        base = model(clip)
        changed = clip.clone()
        changed[:, 0] += 1.0
        assert not torch.allclose(model(changed), base)


@pytest.mark.parametrize("variant", SDCPC_VARIANTS)
def test_streaming_extract_decode_equals_the_clip_forward(variant):
    """Each frame's encoder + SSEA map, computed alone (as a stream caches t-6 and t-3), then decode: the clip."""
    model = small(variant).eval()
    clip = tiny_clip(model.num_frames, b=2)
    with torch.no_grad():
        whole = model(clip)
        per_frame = [model.extract(clip[:, i]) for i in range(clip.shape[1])]   # one frame at a time
        stacked = [torch.stack([f[j] for f in per_frame], dim=1) for j in range(len(per_frame[0]))]
        streamed = model.decode(stacked)
    torch.testing.assert_close(streamed, whole, rtol=1e-4, atol=1e-5)


def test_lr_groups_name_the_encoder_and_every_sampling_offset_layer():
    model = small("sdcpc")
    groups = model.lr_groups()
    assert groups["backbone"] == [model.backbone]
    assert {id(m) for m in groups["offset"]} == {id(model.stages[0].coords.conv2), id(model.stages[1].coords.conv2),
                                                id(model.static.dcn.offset)}
    assert len(small("sdcpc_wo_dcn").lr_groups()["offset"]) == 2               # the two coordinate maps
    only_ssea = small("sdcpc_only_ssea")
    assert only_ssea.lr_groups()["offset"] == [only_ssea.static.dcn.offset]


def test_diagnostics_report_each_sampler_once_per_training_step():
    model = small("sdcpc").train()
    model(tiny_clip(b=2))
    d = model.diagnostics()
    assert set(d) == {f"{k}_{s}" for k in ("inframe", "offset_px") for s in ("dssa1", "dssa2", "ssea_dcn")}
    assert all(d[f"inframe_{s}"] == 1.0 and d[f"offset_px_{s}"] == 0.0 for s in ("dssa1", "dssa2", "ssea_dcn"))
    assert model.diagnostics() == {}                                           # read once, then reset
    model.eval()
    with torch.no_grad():
        model(tiny_clip())
    assert model.diagnostics() == {}                                           # inference records nothing


def test_gradients_reach_every_trainable_parameter():
    torch.manual_seed(0)
    model = small("sdcpc", 4, drop_path_rate=0.0, dropout=0.0).train()
    with torch.no_grad():   # zero-initialised layers (offsets, mask, coordinates) cut the gradient of what
        for name, p in model.named_parameters():   # feeds them at init; give them a trained-like state
            if p.abs().sum() == 0 and p.dim() > 1:
                p.normal_(0, 0.02)
    clip = tiny_clip(b=2)
    out = model(clip)
    target = F.interpolate(out["logits"].argmax(1, keepdim=True).float(), size=(32, 64), mode="nearest")
    target = target[:, 0].long()
    target[:, :, :32] = torch.randint(0, 4, (2, 32, 32))                       # part right, part wrong
    losses = model.loss(out, target)
    assert set(losses) == {"total", "ce", "contrast", "variate_similarity"}
    losses["total"].backward()
    missing = [n for n, p in model.named_parameters() if p.grad is None or p.grad.abs().sum() == 0]
    assert missing == []


@pytest.mark.parametrize("variant", ["sdcpc_wo_ssea", "sdcpc_wo_multiscale"])
def test_variants_reading_only_f2_freeze_exactly_the_unread_encoder_stages(variant):
    model = meta_build(variant, "mit_b0", 3)
    frozen = {n.split(".")[1] for n, p in model.named_parameters() if not p.requires_grad}
    assert frozen == {"patch_embed3", "block3", "norm3", "patch_embed4", "block4", "norm4"}
    assert all(p.requires_grad for p in meta_build("sdcpc", "mit_b0", 3).parameters())


def test_eval_traces_with_fvcore():
    from fvcore.nn import FlopCountAnalysis

    model = small("sdcpc", 3).eval()
    flops = FlopCountAnalysis(model, (tiny_clip(),))
    flops.unsupported_ops_warnings(False)
    flops.uncalled_modules_warnings(False)
    assert flops.total() > 0
    ops = flops.by_operator()
    assert ops.get("grid_sampler", 0) > 0 and ops.get("einsum", 0) > 0         # sampling and Eq. (2) counted


# ------------------------------------------------------------------------------------------------ MCP-CL losses
def test_class_prototypes_are_per_class_means():
    feats = torch.tensor([[[1.0, 0.0]], [[0.0, 1.0]], [[3.0, 3.0]]])           # (N_G=3, M=1, d=2)
    labels = torch.tensor([0, 0, 2])
    protos, counts = class_prototypes(feats, labels, 3)
    assert counts.tolist() == [2, 0, 1]
    torch.testing.assert_close(protos[:, 0], torch.tensor([[0.5, 0.5], [0.0, 0.0], [3.0, 3.0]]))


def test_contrast_loss_hand_case():
    # two unit features, each its class's prototype, orthogonal; tau = 1: log(1 + e^0 / e^1) each
    feats = torch.tensor([[[1.0, 0.0]], [[0.0, 1.0]]])
    labels = torch.tensor([0, 1])
    protos, counts = class_prototypes(feats, labels, 3)                        # class 2 absent: not a negative
    loss = prototype_contrast_loss(feats, labels, protos, counts, tau=1.0)
    assert loss.item() == pytest.approx(math.log(1 + math.exp(-1)), rel=1e-6)
    # tau = 0.5 doubles the margin: log(1 + e^-2)
    assert prototype_contrast_loss(feats, labels, protos, counts, 0.5).item() == pytest.approx(
        math.log(1 + math.exp(-2)), rel=1e-6)


def test_contrast_loss_single_class_has_no_negatives():
    feats = F.normalize(torch.randn(4, 2, 3), dim=2)
    labels = torch.zeros(4, dtype=torch.long)
    protos, counts = class_prototypes(feats, labels, 2)
    assert prototype_contrast_loss(feats, labels, protos, counts, 0.1).item() == pytest.approx(0.0, abs=1e-6)


def test_variate_similarity_loss_hand_case():
    # class 0 (3 pixels): variates [1,0], [0,1], [1,0] -> pairs (0,1)=0, (0,2)=1, (1,2)=0 -> mean 1/3
    # class 1 (1 pixel):  variates [1,0], [1,0], [1,0] -> every pair 1 -> mean 1
    # weighted by pixels: (3 * 1/3 + 1 * 1) / 4 = 0.5
    protos = torch.tensor([[[1.0, 0.0], [0.0, 1.0], [1.0, 0.0]],
                           [[1.0, 0.0], [1.0, 0.0], [1.0, 0.0]]])
    counts = torch.tensor([3.0, 1.0])
    assert variate_similarity_loss(protos, torch.tensor([0, 0, 0, 1]), counts).item() == pytest.approx(0.5)
    assert variate_similarity_loss(protos[:, :1], None, counts).item() == 0.0   # M = 1: no pairs


def test_prototypes_use_only_correctly_predicted_pixels():
    torch.manual_seed(0)
    b, m, d, h, w, k = 1, 2, 3, 2, 4, 3
    feats = torch.randn(b, m, d, h, w)
    target = torch.tensor([[[0, 0, 1, 1], [2, 2, 255, 1]]])
    pred = torch.tensor([[[0, 1, 1, 1], [2, 0, 2, 0]]])                        # right at 4 pixels
    logits = F.one_hot(pred, k).permute(0, 3, 1, 2).float()
    cr, mf = mcp_cl_losses(feats, logits, target, tau=0.1)
    # by hand on the correct pixels only: (0,0) c0, (0,2) c1, (0,3) c1, (1,0) c2
    idx = [(0, 0), (0, 2), (0, 3), (1, 0)]
    sel = torch.stack([F.normalize(feats[0, :, :, i, j], dim=1) for i, j in idx])
    labels = torch.tensor([0, 1, 1, 2])
    protos, counts = class_prototypes(sel, labels, k)
    torch.testing.assert_close(cr, prototype_contrast_loss(sel, labels, protos, counts, 0.1))
    torch.testing.assert_close(mf, variate_similarity_loss(protos, labels, counts))
    # wrong or ignored pixels can change arbitrarily without changing either loss
    feats2 = feats.clone()
    for i, j in [(0, 1), (1, 1), (1, 2), (1, 3)]:
        feats2[0, :, :, i, j] = 100 * torch.randn(m, d)
    cr2, mf2 = mcp_cl_losses(feats2, logits, target, tau=0.1)
    torch.testing.assert_close((cr2, mf2), (cr, mf))


def test_no_correct_pixel_gives_zero_losses_with_a_graph():
    feats = torch.randn(1, 2, 2, 2, 2, requires_grad=True)
    logits = torch.zeros(1, 3, 2, 2)
    logits[:, 0] = 1.0                                                         # predicts class 0 everywhere
    cr, mf = mcp_cl_losses(feats, logits, torch.full((1, 2, 2), 1), tau=0.1)
    assert cr.item() == 0.0 and mf.item() == 0.0
    (cr + mf).backward()


def test_loss_without_mcp_cl_is_cross_entropy_only():
    model = small("sdcpc_wo_mcpcl", 4).train()
    out = model(tiny_clip())
    losses = model.loss(out, torch.randint(0, 4, (1, 32, 64)))
    assert set(losses) == {"total", "ce"} and losses["total"] is losses["ce"]


# ------------------------------------------------------------------------------------------------ pieces, errors
def test_interleave_rows():
    a = torch.zeros(1, 1, 2, 2)
    b = torch.ones(1, 1, 2, 2)
    assert interleave_rows(a, b)[0, 0, :, 0].tolist() == [0.0, 1.0, 0.0, 1.0]


def test_joint_decision_starts_as_the_mean_of_the_variates():
    model = build("mit_b0", 3, dropout=0.0, **SMALL).eval()
    x = torch.randn(1, SMALL["width"], 2, 2)
    head = model.head
    variate_logits = head.classify(head.project(x)).view(1, head.variates, 3, 2, 2)   # eval: BN running stats
    torch.testing.assert_close(head(x)[0], variate_logits.mean(1), rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("kwargs, message", [
    ({"colour": 1}, "unknown option"),
    ({"points": 5}, "not a square"),
    ({"deform_points": 8}, "must be a square"),
    ({"variates": 3}, "not divisible"),
    ({"stage1": False, "stage2": False}, "both stage1 and stage2 off"),
])
def test_bad_options_are_clear_errors(kwargs, message):
    with pytest.raises(ValueError, match=message):
        model = build("mit_b0", 3, **{**SMALL, **kwargs})
        model.eval()(tiny_clip())


def test_wrong_clip_length_and_backbone():
    model = build("mit_b0", 3, **SMALL).eval()
    with pytest.raises(ValueError, match=r"expects a clip \(B, 3"):
        model(tiny_clip(frames=2))
    with pytest.raises(ValueError, match="unknown backbone"):
        build("resnet50", 3)
    with pytest.raises(ValueError, match="at least one reference"):
        build("mit_b0", 3, ref_offsets=())
