"""CNN backbones (dilated ResNet, PSPNet, HRNetV2), deformable convolution, and the pretrained-weight loader."""
import pytest
import torch
import torch.nn.functional as F

from models.backbones import CNN_BACKBONES, build_cnn_backbone
from models.backbones.hrnet import HRNet
from models.backbones.pspnet import PSP_BINS
from models.ops.deform_conv import DeformConv2d, deform_conv2d
from models.pretrained import describe, load_backbone_weights, load_state


def n_params(m):
    return sum(p.numel() for p in m.parameters())


def on_meta(name):
    with torch.device("meta"):  # parameter counts without allocating (ResNet-101 / HRNet-W48 are big)
        return build_cnn_backbone(name)


# ------------------------------------------------------------------------------------ parameter counts
@pytest.mark.parametrize("name, published_m", [
    ("resnet18", 11.196), ("resnet50", 23.527), ("resnet101", 42.519),  # ResNetV1c without the classifier
    ("hrnet_w18", 9.56), ("hrnet_w48", 65.33),                            # HRNetV2 backbone
])
def test_backbone_parameters_match_published(name, published_m):
    assert n_params(on_meta(name)) / 1e6 == pytest.approx(published_m, abs=0.006)


def test_resnet_parameters_exact():
    # torchvision's counts without fc (11,176,512 / 23,508,032 / 42,500,160) plus the deep stem's 19,232
    # (convs 864 + 9216 + 18432, BN 2*(32+32+64)) minus the 7x7 conv + BN (9408 + 128)
    assert [n_params(on_meta(f"resnet{d}")) for d in (18, 50, 101)] == [11_195_744, 23_527_264, 42_519_392]


@pytest.mark.parametrize("name, ch, ppm_params", [("pspnet18", 128, 1_443_072), ("pspnet50", 512, 23_073_792)])
def test_pyramid_pooling_width_and_size(name, ch, ppm_params):
    body = on_meta(name)
    assert body.ppm.bins == PSP_BINS == (1, 2, 3, 6)
    assert body.out_channels[-1] == ch
    # 4 x (C5 ch + BN) + 3x3 (2 C5 ch) + BN: the PSP head of mmseg without its classifier
    assert n_params(body.ppm) == ppm_params


# ------------------------------------------------------------------------------------ output stride 8, dilations
@pytest.mark.parametrize("name", ["resnet18", "resnet50"])
def test_dilated_resnet_output_stride_8(name):
    body = build_cnn_backbone(name).eval()
    with torch.no_grad():
        feats = body(torch.randn(1, 3, 64, 96))
    assert [tuple(f.shape[-2:]) for f in feats] == [(16, 24), (8, 12), (8, 12), (8, 12)]
    assert [f.shape[1] for f in feats] == list(body.out_channels)


@pytest.mark.parametrize("name", ["resnet18", "resnet50", "resnet101"])
def test_stages_4_and_5_are_dilated_2_and_4_with_stride_1(name):
    body = on_meta(name)
    # the first block of a dilated stage uses half its dilation (mmseg contract_dilation)
    n3, n4 = len(body.layer3), len(body.layer4)
    assert body.dilations[2] == [1] + [2] * (n3 - 1)
    assert body.dilations[3] == [2] + [4] * (n4 - 1)
    for layer, dils in ((body.layer3, body.dilations[2]), (body.layer4, body.dilations[3])):
        for block, d in zip(layer, dils):
            conv3x3 = [m for m in block.modules() if isinstance(m, torch.nn.Conv2d) and m.kernel_size == (3, 3)]
            assert all(c.stride == (1, 1) and c.dilation == (d, d) and c.padding == (d, d) for c in conv3x3)
        if layer[0].downsample is not None:
            assert layer[0].downsample[0].stride == (1, 1)
    assert body.layer2[0].conv2.stride == (2, 2) if name != "resnet18" else body.layer2[0].conv1.stride == (2, 2)
    stem = [m for m in body.stem if isinstance(m, torch.nn.Conv2d)]
    assert [(c.in_channels, c.out_channels, c.stride[0]) for c in stem] == [(3, 32, 2), (32, 32, 1), (32, 64, 1)]


def test_pspnet_and_hrnet_shapes():
    psp = build_cnn_backbone("pspnet18").eval()
    hr = build_cnn_backbone("hrnet_w18").eval()
    x = torch.randn(1, 3, 64, 64)
    with torch.no_grad():
        p = psp(x)
        h = hr(x)
    assert [tuple(f.shape[1:]) for f in p] == [(64, 16, 16), (128, 8, 8), (256, 8, 8), (128, 8, 8)]
    assert [tuple(f.shape[1:]) for f in h] == [(18, 16, 16), (36, 8, 8), (72, 4, 4), (144, 2, 2)]
    assert tuple(HRNet.fuse(h).shape[1:]) == (270, 16, 16)          # HRNetV2: all branches at 1/4
    assert tuple(HRNet.fuse(h, (8, 8)).shape[1:]) == (270, 8, 8)


def test_constructor_table_names_the_msaf_backbones():
    from models.msaf import BACKBONES
    assert set(BACKBONES) == set(CNN_BACKBONES)
    with pytest.raises(ValueError, match="unknown CNN backbone 'resnet34'"):
        build_cnn_backbone("resnet34")


# ------------------------------------------------------------------------------------ deformable convolution
@pytest.mark.parametrize("stride, padding, dilation, k", [(1, 1, 1, 3), (2, 1, 1, 3), (1, 2, 2, 3), (2, 3, 3, 3),
                                                          (3, 0, 1, 3), (1, 0, 1, 1), ((2, 1), (1, 2), (1, 2), 3)])
def test_deform_conv_with_zero_offsets_is_conv2d(stride, padding, dilation, k):
    g = torch.Generator().manual_seed(0)
    x = torch.randn(2, 5, 11, 13, generator=g, dtype=torch.float64)
    w = torch.randn(7, 5, k, k, generator=g, dtype=torch.float64)
    b = torch.randn(7, generator=g, dtype=torch.float64)
    ref = F.conv2d(x, w, b, stride, padding, dilation)
    offset = torch.zeros(2, 2 * k * k, *ref.shape[-2:], dtype=torch.float64)
    torch.testing.assert_close(deform_conv2d(x, offset, w, b, stride, padding, dilation), ref, rtol=0, atol=1e-12)
    ones = torch.ones(2, k * k, *ref.shape[-2:], dtype=torch.float64)  # v2 with modulation 1
    torch.testing.assert_close(deform_conv2d(x, offset, w, b, stride, padding, dilation, mask=ones), ref,
                               rtol=0, atol=1e-12)


def test_deform_conv_module_starts_as_its_convolution():
    torch.manual_seed(0)
    x = torch.randn(1, 4, 9, 10)
    v1 = DeformConv2d(4, 6, 3, stride=2, padding=2, dilation=2)
    torch.testing.assert_close(v1(x), F.conv2d(x, v1.weight, v1.bias, 2, 2, 2), rtol=1e-5, atol=1e-5)
    v2 = DeformConv2d(4, 6, 3, padding=1, modulated=True, offset_in_channels=8)  # DCNv2: modulation 0.5 at init
    half_conv = 0.5 * F.conv2d(x, v2.weight, None, 1, 1) + v2.bias.view(1, -1, 1, 1)
    torch.testing.assert_close(v2(x, torch.cat([x, x], 1)), half_conv,
                               rtol=1e-5, atol=1e-5)


def test_deform_conv_offsets_sample_where_they_point():
    x = torch.arange(12, dtype=torch.float64).view(1, 1, 3, 4)  # rows [0 1 2 3], [4 5 6 7], [8 9 10 11]
    w = torch.ones(1, 1, 1, 1, dtype=torch.float64)
    off = torch.zeros(1, 2, 3, 4, dtype=torch.float64)
    off[:, 1] = 0.5                                   # dx = +0.5: halfway to the right neighbour
    expected = torch.tensor([[0.5, 1.5, 2.5, 1.5], [4.5, 5.5, 6.5, 3.5], [8.5, 9.5, 10.5, 5.5]], dtype=torch.float64)
    torch.testing.assert_close(deform_conv2d(x, off, w)[0, 0], expected)  # last column: half of zero padding
    off = torch.zeros(1, 2, 3, 4, dtype=torch.float64)
    off[:, 0] = 1.0                                   # dy = +1: the row below (zeros past the last row)
    torch.testing.assert_close(deform_conv2d(x, off, w)[0, 0],
                               torch.cat([x[0, 0, 1:], torch.zeros(1, 4, dtype=torch.float64)]))


def test_deform_conv_rejects_wrong_offset_shape():
    with pytest.raises(ValueError, match="offset must be"):
        deform_conv2d(torch.zeros(1, 2, 5, 5), torch.zeros(1, 18, 4, 4), torch.zeros(3, 2, 3, 3), padding=1)


# ------------------------------------------------------------------------------------ pretrained weights
def _random_state(module, prefix=""):
    g = torch.Generator().manual_seed(1)
    return {prefix + k: (torch.randn(v.shape, generator=g) if v.is_floating_point() else v.clone())
            for k, v in module.state_dict().items()}


def test_loader_reads_mmcv_resnet_v1c_naming(tmp_path):
    src = build_cnn_backbone("resnet18")
    state = _random_state(src, "module.")            # a DataParallel-saved checkpoint
    state["module.fc.weight"] = torch.zeros(1000, 512)
    state["module.fc.bias"] = torch.zeros(1000)
    path = tmp_path / "resnet18_v1c.pth"
    torch.save({"state_dict": state}, path)
    dst = build_cnn_backbone("resnet18")
    report = load_backbone_weights(dst, path, "resnet18")
    assert report["missing"] == [] and report["unexpected"] == [] and report["mismatched"] == []
    assert report["ignored"] == ["module.fc.bias", "module.fc.weight"]
    assert report["loaded"] == len(dst.state_dict())
    torch.testing.assert_close(dst.layer3[1].conv2.weight, state["module.layer3.1.conv2.weight"])
    torch.testing.assert_close(dst.stem[7].running_var, state["module.stem.7.running_var"])
    assert "0 missing" in describe(report)


def test_loader_maps_timm_deep_stem_and_reports_torchvision_stem():
    dst = build_cnn_backbone("resnet18")
    own = _random_state(dst)
    timm = {k: v for k, v in own.items() if not k.startswith("stem.")}
    for ours, theirs in (("stem.0.", "conv1.0."), ("stem.1.", "conv1.1."), ("stem.3.", "conv1.3."),
                         ("stem.4.", "conv1.4."), ("stem.6.", "conv1.6."), ("stem.7.", "bn1.")):
        timm.update({theirs + k[len(ours):]: v for k, v in own.items() if k.startswith(ours)})
    report = load_state(dst, timm, "resnet")
    assert report["missing"] == [] and report["unexpected"] == []
    torch.testing.assert_close(dst.stem[0].weight, timm["conv1.0.weight"])

    torchvision = {k: v for k, v in own.items() if not k.startswith("stem.")}
    torchvision["conv1.weight"] = torch.zeros(64, 3, 7, 7)
    torchvision["bn1.weight"] = torch.ones(64)
    report = load_state(build_cnn_backbone("resnet18"), torchvision, "resnet")
    assert report["unexpected"] == ["bn1.weight", "conv1.weight"]
    assert "stem.0.weight" in report["missing"] and not any(k.startswith("layer") for k in report["missing"])


def test_loader_reads_hrnet_naming_and_reports_shape_mismatch():
    dst = build_cnn_backbone("hrnet_w18")
    state = _random_state(dst)
    assert "transition2.2.0.0.weight" in state and "stage4.2.fuse_layers.3.0.2.0.weight" in state  # public names
    state["incre_modules.0.0.conv1.weight"] = torch.zeros(32, 18, 1, 1)  # classification-only: ignored
    state["stage2.0.branches.0.0.conv1.weight"] = torch.zeros(18, 18, 1, 1)  # wrong shape: not loaded
    report = load_state(dst, state, "hrnet")
    assert report["ignored"] == ["incre_modules.0.0.conv1.weight"]
    assert report["mismatched"] == [("stage2.0.branches.0.0.conv1.weight", [18, 18, 1, 1], [18, 18, 3, 3])]
    assert report["missing"] == ["stage2.0.branches.0.0.conv1.weight"] and report["unexpected"] == []
    torch.testing.assert_close(dst.transition3[3][0][0].weight, state["transition3.3.0.0.weight"])


def test_missing_checkpoint_is_a_clear_error(tmp_path):
    with pytest.raises(FileNotFoundError, match="nothing is downloaded"):
        load_backbone_weights(build_cnn_backbone("resnet18"), tmp_path / "none.pth", "resnet18")
