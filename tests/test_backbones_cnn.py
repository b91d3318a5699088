"""CNN backbones (dilated ResNet, PSPNet, HRNetV2) and the deformable convolution (weights: test_pretrained.py)."""
import pytest
import torch
import torch.nn.functional as F

from models.backbones import CNN_BACKBONES, build_cnn_backbone
from models.backbones.hrnet import HRNet
from models.backbones.pspnet import PSP_BINS
from models.ops.deform_conv import DeformConv2d, deform_conv2d


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
