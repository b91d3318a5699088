"""MiT encoder, SegFormer head and family, and the shared loss helpers."""
import pytest
import torch
import torch.nn.functional as F

from models import build_model
from models.backbones.mit import MIT_SETTINGS, EfficientSelfAttention, build_mit, mit_channels
from models.losses import cross_entropy, resize_target
from models.segformer import build

# Encoder parameters (rebuilt from the public MiT definition, classifier excluded; docs/reproduction-notes.md)
ENCODER_PARAMS = {"mit_b0": 3_319_392, "mit_b1": 13_151_424, "mit_b2": 24_196_288, "mit_b3": 44_072_128,
                  "mit_b4": 60_842_688, "mit_b5": 81_443_008}
# SegFormer with E = 256 and 124 classes (docs/reproduction-notes.md: 3.746M, 13.709M, 24.754M, 82.001M)
SEGFORMER_124 = {"mit_b0": 3_746_012, "mit_b1": 13_709_116, "mit_b2": 24_753_980, "mit_b5": 82_000_700}


def n_params(m):
    return sum(p.numel() for p in m.parameters())


@pytest.mark.parametrize("name", list(MIT_SETTINGS))
def test_encoder_parameter_counts(name):
    with torch.device("meta"):
        enc = build_mit(name)
    assert n_params(enc) == ENCODER_PARAMS[name]


@pytest.mark.parametrize("name", list(SEGFORMER_124))
def test_segformer_parameter_counts_256_head(name):
    with torch.device("meta"):
        model = build(name, 124)
    assert n_params(model) == SEGFORMER_124[name]
    assert abs(n_params(model) / 1e6 - SEGFORMER_124[name] / 1e6) < 1e-3


def test_head_width_768_adds_what_the_formula_says():
    with torch.device("meta"):
        m256, m768 = build("mit_b2", 124), build("mit_b2", 124, head_width=768)
    # per E: linears (64+128+320+512)E + 4E, fuse 4E*E + 2E (BN), classifier 124E  (+124 bias, constant)
    f = lambda e: (64 + 128 + 320 + 512) * e + 4 * e + 4 * e * e + 2 * e + 124 * e
    assert n_params(m768) - n_params(m256) == f(768) - f(256)


def test_stage_features_shapes_and_channels():
    enc = build_mit("mit_b0").eval()
    feats = enc(torch.randn(2, 3, 64, 96))
    assert enc.channels == mit_channels("mit_b0") == (32, 64, 160, 256)
    assert [tuple(f.shape) for f in feats] == [(2, 32, 16, 24), (2, 64, 8, 12), (2, 160, 4, 6), (2, 256, 2, 3)]


def test_efficient_attention_equals_plain_softmax_attention():
    torch.manual_seed(0)
    attn = EfficientSelfAttention(dim=8, heads=2, sr_ratio=2).eval()
    h, w = 4, 6
    x = torch.randn(1, h * w, 8)
    # reference: reduce with the same conv + LN, then explicit softmax(QK^T / sqrt(d)) V per head
    q = attn.q(x).reshape(1, h * w, 2, 4).transpose(1, 2)
    red = attn.norm(attn.sr(x.transpose(1, 2).reshape(1, 8, h, w)).flatten(2).transpose(1, 2))
    k, v = attn.kv(red).reshape(1, -1, 2, 2, 4).permute(2, 0, 3, 1, 4)
    ref = torch.softmax(q @ k.transpose(-1, -2) / 2.0, -1) @ v
    ref = attn.proj(ref.transpose(1, 2).reshape(1, h * w, 8))
    torch.testing.assert_close(attn(x, h, w), ref, atol=1e-5, rtol=1e-5)


def test_analytic_attention_term_by_hand():
    enc = build_mit("mit_b1")
    # 480x853: h x w = 480 // s x 853 // s = 120x213, 60x106, 30x53, 15x26; keys h w / r^2, not rounded
    by_hand = 2 * 2 * (120 * 213 * 120 * 213 / 64 * 64 + 60 * 106 * 60 * 106 / 16 * 128
                       + 30 * 53 * 30 * 53 / 4 * 320 + 15 * 26 * 15 * 26 * 512)
    assert enc.analytic_attention_flops(480, 853) == pytest.approx(by_hand, rel=1e-12)
    assert enc.token_grids(480, 853) == [(120, 214), (60, 107), (30, 54), (15, 27)]
    feats = enc.eval()(torch.zeros(1, 3, 96, 130))
    assert enc.token_grids(96, 130) == [tuple(f.shape[-2:]) for f in feats]


def test_segformer_contract_eval_and_train():
    torch.manual_seed(0)
    model = build_model("segformer", "mit_b0", 5)
    assert model.variant.name == "segformer" and model.variant.num_frames == 1
    clip = torch.randn(2, 1, 3, 64, 96)
    model.eval()
    with torch.no_grad():
        out = model(clip)
    assert out.shape == (2, 5, 16, 24)
    model.train()
    for m in model.modules():          # stochastic depth could drop a block's branch for the whole batch
        if hasattr(m, "drop_prob"):
            m.drop_prob = 0.0
    outputs = model(clip)
    target = torch.randint(0, 5, (2, 64, 96))
    target[:, :10] = 255
    losses = model.loss(outputs, target)
    assert set(losses) >= {"total", "ce"} and torch.isfinite(losses["total"])
    losses["total"].backward()
    for name, p in model.named_parameters():
        assert p.grad is not None and p.grad.abs().sum() > 0, name


def test_segformer_rejects_references_and_unknown_options():
    with pytest.raises(ValueError, match="single-frame"):
        build("mit_b0", 5, ref_offsets=(-3,))
    with pytest.raises(ValueError, match="unknown option"):
        build("mit_b0", 5, points=4)


# ---------------------------------------------------------------- losses
def test_cross_entropy_hand_computed_with_ignore():
    # two pixels: logits (0, ln 3) -> p(class 1) = 3/4; a third pixel ignored
    logits = torch.tensor([[0.0, 0.0, 5.0], [torch.log(torch.tensor(3.0)), 0.0, -5.0]]).reshape(1, 2, 1, 3)
    target = torch.tensor([[[1, 0, 255]]])
    expected = (-torch.log(torch.tensor(0.75)) - torch.log(torch.tensor(0.5))) / 2
    torch.testing.assert_close(cross_entropy(logits, target), expected)
    torch.testing.assert_close(cross_entropy(logits, target, at="logits"), expected)


def test_cross_entropy_all_ignored_is_zero_not_nan():
    logits = torch.randn(1, 3, 2, 2, requires_grad=True)
    loss = cross_entropy(logits, torch.full((1, 2, 2), 255))
    assert loss.item() == 0.0
    loss.backward()
    assert torch.all(logits.grad == 0)


def test_cross_entropy_resolutions():
    torch.manual_seed(0)
    logits, target = torch.randn(2, 4, 4, 4), torch.randint(0, 4, (2, 8, 8))
    up = F.interpolate(logits, size=(8, 8), mode="bilinear", align_corners=False)
    torch.testing.assert_close(cross_entropy(logits, target), F.cross_entropy(up, target, ignore_index=255))
    down = resize_target(target, (4, 4))
    torch.testing.assert_close(down, target[:, ::2, ::2])
    torch.testing.assert_close(cross_entropy(logits, target, at="logits"), F.cross_entropy(logits, down))
    w = torch.tensor([1.0, 2.0, 0.5, 3.0])
    torch.testing.assert_close(cross_entropy(logits, target, at="logits", weight=w),
                               F.cross_entropy(logits, down, weight=w))
    with pytest.raises(ValueError, match="at must be"):
        cross_entropy(logits, target, at="middle")
