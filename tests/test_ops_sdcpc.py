"""SD-CPC operators: DCNv3, linear attention, cross-frame selective cross-attention (Eq. 2)."""
import math

import pytest
import torch
import torch.nn.functional as F

from models.ops.dcnv3 import DCNv3, dcnv3_core, dcnv3_param_count, kernel_grid
from models.ops.sampling import in_frame_fraction, read_sampling
from models.ops.linear_attention import LinearAttention, feature_map, linear_attention, softmax_attention
from models.ops.selective_cross_attention import (SelectiveCrossAttention, base_coordinates,
                                                  dense_cross_attention, selective_cross_attention,
                                                  window_grid)


# ------------------------------------------------------------------------------------------------ DCNv3
@pytest.mark.parametrize("group", [1, 2])
def test_dcnv3_core_zero_offsets_uniform_mask_is_3x3_average_pooling(group):
    x = torch.randn(2, 5, 7, 4)  # channels-last
    offset = torch.zeros(2, 5, 7, group * 9 * 2)
    mask = torch.full((2, 5, 7, group * 9), 1 / 9)
    out = dcnv3_core(x, offset, mask, kernel_size=3, group=group)
    expected = F.avg_pool2d(x.permute(0, 3, 1, 2), 3, stride=1, padding=1, count_include_pad=True)
    torch.testing.assert_close(out.permute(0, 3, 1, 2), expected, rtol=1e-5, atol=1e-6)


def test_dcnv3_module_at_init_with_identity_projections_is_average_pooling():
    m = DCNv3(8, group=2)
    with torch.no_grad():
        for proj in (m.input_proj, m.output_proj):
            proj.weight.copy_(torch.eye(8))
            proj.bias.zero_()
    x = torch.randn(1, 8, 6, 5)
    expected = F.avg_pool2d(x, 3, stride=1, padding=1, count_include_pad=True)
    torch.testing.assert_close(m(x), expected, rtol=1e-5, atol=1e-6)


def test_dcnv3_integer_offset_shifts_and_half_offset_interpolates():
    x = torch.arange(12.0).view(1, 3, 4, 1)          # value = 4 y + x
    one_point = torch.ones(1, 3, 4, 1)
    shift = torch.zeros(1, 3, 4, 2)
    shift[..., 0] = 1.0                               # one pixel right
    out = dcnv3_core(x, shift, one_point, kernel_size=1)[0, ..., 0]
    expected = torch.tensor([[1., 2., 3., 0.], [5., 6., 7., 0.], [9., 10., 11., 0.]])  # zero beyond the edge
    torch.testing.assert_close(out, expected)
    half = torch.zeros(1, 3, 4, 2)
    half[..., 1] = 0.5                                # half a pixel down: mean of two rows (zero below)
    out = dcnv3_core(x, half, one_point, kernel_size=1)[0, ..., 0]
    expected = torch.tensor([[2., 3., 4., 5.], [6., 7., 8., 9.], [4., 4.5, 5., 5.5]])
    torch.testing.assert_close(out, expected)


def test_dcnv3_kernel_grid_order_is_x_outer_like_internimage():
    assert kernel_grid(3).tolist()[:4] == [[-1., -1.], [-1., 0.], [-1., 1.], [0., -1.]]


@pytest.mark.parametrize("channels, group", [(256, 16), (64, 4), (96, 6)])
def test_dcnv3_parameter_formula(channels, group):
    m = DCNv3(channels, group=group)
    assert sum(p.numel() for p in m.parameters()) == dcnv3_param_count(channels, group)
    c, kk = channels, 9
    assert dcnv3_param_count(channels, group) == 2 * c * c + c * (9 + 5) + 3 * group * kk * (c + 1)
    if (channels, group) == (256, 16):
        assert dcnv3_param_count(channels, group) == 245_680


def test_dcnv3_records_where_its_points_land_in_training_only():
    m = DCNv3(8, group=2)
    x = torch.randn(1, 8, 5, 5)
    m.eval()
    m(x)
    assert read_sampling(m) == {}                     # nothing recorded at inference (or in a trace)
    m.train()
    m(x)
    m(x)
    assert read_sampling(m) == {"in_frame": 1.0, "offset_px": 0.0}   # zero offsets: the 3x3 layout itself
    assert read_sampling(m) == {}                     # reading resets
    with torch.no_grad():                             # every offset 2 px to the right
        m.offset.bias.copy_(torch.tensor([2.0, 0.0]).repeat(2 * 9))
    m(x)
    stats = read_sampling(m)
    # column + kernel dx + 2 must stay <= 4.5 + 1 (the map plus the 3x3 layout's 1-pixel margin): all 5 columns
    # with dx = -1, columns 0..3 with dx = 0, columns 0..2 with dx = +1 -> (5 + 4 + 3) / 15 of the taps
    assert stats["in_frame"] == pytest.approx(12 / 15) and stats["offset_px"] == pytest.approx(2.0)


def test_in_frame_fraction_counts_the_map_plus_its_margin():
    xs = torch.tensor([-1.6, -1.5, -0.5, 0.0, 3.5, 4.5, 5.5, 5.6])
    ys = torch.zeros_like(xs)
    assert in_frame_fraction(xs, ys, 5, 5, margin=0.0).item() == pytest.approx(4 / 8)   # [-0.5, 4.5]
    assert in_frame_fraction(xs, ys, 5, 5, margin=1.0).item() == pytest.approx(6 / 8)   # [-1.5, 5.5]


def test_dcnv3_gradients_reach_every_parameter_once_offsets_are_nonzero():
    m = DCNv3(8, group=2)
    with torch.no_grad():  # trained state: offsets and mask no longer zero, so the dw branch gets gradient
        for layer in (m.offset, m.mask):
            layer.weight.normal_(0, 0.1)
            layer.bias.normal_(0, 0.3)
    m(torch.randn(1, 8, 5, 5)).square().sum().backward()
    assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in m.parameters())


# ------------------------------------------------------------------------------------------------ linear attention
def test_linear_attention_equals_its_quadratic_form():
    q, k, v = torch.randn(2, 3, 10, 4), torch.randn(2, 3, 10, 4), torch.randn(2, 3, 10, 5)
    sim = feature_map(q) @ feature_map(k).transpose(-2, -1)                # N x N, positive
    expected = (sim / (sim.sum(-1, keepdim=True) + 1e-6)) @ v
    torch.testing.assert_close(linear_attention(q, k, v), expected, rtol=1e-5, atol=1e-6)


def test_linear_attention_hand_case():
    # phi(0) = 1, phi(1) = 2: q = [0] -> weights 1:2 over keys [0], [1]  ->  (1*10 + 2*40) / 3 = 30
    q = torch.zeros(1, 1, 1, 1)
    k = torch.tensor([[[[0.], [1.]]]])
    v = torch.tensor([[[[10.], [40.]]]])
    assert linear_attention(q, k, v).item() == pytest.approx(30.0, rel=1e-6)


def test_linear_attention_module_shapes_and_softmax_reference_shape():
    m = LinearAttention(16, heads=4)
    x = torch.randn(2, 16, 3, 5)
    assert m(x).shape == x.shape
    q = torch.randn(1, 2, 7, 4)
    assert softmax_attention(q, q, q).shape == q.shape


# ------------------------------------------------------------------------------------------------ selective attention
def bilinear_zero_padded(img: torch.Tensor, x: float, y: float) -> torch.Tensor:
    """img (C, H, W); pixel centres at integers; outside the frame is zero."""
    c, h, w = img.shape
    x0, y0 = math.floor(x), math.floor(y)
    out = torch.zeros(c)
    for yy, wy in ((y0, 1 - (y - y0)), (y0 + 1, y - y0)):
        for xx, wx in ((x0, 1 - (x - x0)), (x0 + 1, x - x0)):
            if 0 <= xx < w and 0 <= yy < h:
                out += wy * wx * img[:, yy, xx]
    return out


def naive_selective_attention(q, k, v, coords, eps=1e-6):
    b, c, h, w = q.shape
    out = torch.zeros(b, v.shape[1], h, w)
    for bi in range(b):
        for i in range(h):
            for j in range(w):
                ks = [bilinear_zero_padded(k[bi], *coords[bi, i, j, p].tolist()) for p in range(coords.shape[3])]
                vs = [bilinear_zero_padded(v[bi], *coords[bi, i, j, p].tolist()) for p in range(coords.shape[3])]
                s = [float((q[bi, :, i, j] * kp).sum()) for kp in ks]
                total = sum(s) + eps
                out[bi, :, i, j] = sum(sp / total * vp for sp, vp in zip(s, vs))
    return out


def test_selective_attention_equals_naive_per_pixel_loop():
    torch.manual_seed(1)
    b, c, h, w, p = 2, 3, 3, 4, 4
    q, k = torch.rand(b, c, h, w) + 0.1, torch.rand(b, c, h, w) + 0.1   # positive: a well-posed ratio
    v = torch.randn(b, 5, h, w)
    coords = base_coordinates(h, w, p, like=q).expand(b, -1, -1, -1, -1) + torch.randn(b, h, w, p, 2) * 1.3
    got = selective_cross_attention(q, k, v, coords)
    torch.testing.assert_close(got, naive_selective_attention(q, k, v, coords), rtol=1e-4, atol=1e-5)


def test_selective_attention_single_integer_point_copies_the_value():
    q, k = torch.ones(1, 2, 2, 3), torch.ones(1, 2, 2, 3)
    v = torch.arange(6.0).view(1, 1, 2, 3)
    coords = torch.zeros(1, 2, 3, 1, 2)
    coords[..., 0, 0] = 2.0                           # every pixel reads x = 2 of its own row
    coords[..., 0, 1] = torch.tensor([[0.], [1.]])
    out = selective_cross_attention(q, k, v, coords)
    expected = torch.tensor([[2., 2., 2.], [5., 5., 5.]])
    torch.testing.assert_close(out[0, 0], expected, rtol=1e-5, atol=1e-5)


def test_selective_attention_hand_case_normalised_without_softmax():
    # one query (q = 1), two points with K = 1 and 3 -> weights 1/4 and 3/4 (a softmax would give 0.12/0.88)
    q = torch.ones(1, 1, 1, 1)
    k = torch.tensor([[[[1.0, 3.0]]]])
    v = torch.tensor([[[[100.0, 200.0]]]])
    coords = torch.tensor([[0.0, 0.0], [1.0, 0.0]]).view(1, 1, 1, 2, 2)
    out = selective_cross_attention(q, k, v, coords, eps=0.0)
    assert out.item() == pytest.approx(175.0)


def test_window_grid():
    assert window_grid(4).tolist() == [[-0.5, -0.5], [0.5, -0.5], [-0.5, 0.5], [0.5, 0.5]]
    assert window_grid(9)[4].tolist() == [0.0, 0.0] and window_grid(16).abs().max() == 1.5
    with pytest.raises(ValueError, match="not a square"):
        window_grid(5)


def test_selective_attention_with_all_points_is_dense_linear_style_attention():
    # P = every pixel of the other frame, at integer coordinates: Eq. (2) is attention with weights s / sum s
    h, w = 2, 3
    q, k, v = torch.rand(1, 4, h, w) + 0.1, torch.rand(1, 4, h, w) + 0.1, torch.randn(1, 2, h, w)
    ys, xs = torch.meshgrid(torch.arange(h, dtype=torch.float32), torch.arange(w, dtype=torch.float32),
                            indexing="ij")
    every = torch.stack([xs.reshape(-1), ys.reshape(-1)], -1)                   # (N, 2)
    coords = every.view(1, 1, 1, h * w, 2).expand(1, h, w, h * w, 2)
    s = q.flatten(2).transpose(1, 2) @ k.flatten(2)                             # (1, N, N)
    expected = ((s / (s.sum(-1, keepdim=True) + 1e-6)) @ v.flatten(2).transpose(1, 2)).transpose(1, 2)
    torch.testing.assert_close(selective_cross_attention(q, k, v, coords).flatten(2), expected,
                               rtol=1e-5, atol=1e-6)
    assert dense_cross_attention(q, k, v).shape == v.shape


def test_selective_attention_module_gradients():
    m = SelectiveCrossAttention(6)
    a, b = torch.randn(1, 6, 4, 4), torch.randn(1, 6, 4, 4)
    coords = (base_coordinates(4, 4, 4, like=a) + 0.3).requires_grad_()
    m(a, b, coords).square().sum().backward()
    assert coords.grad.abs().sum() > 0                 # the coordinate map is learnt through the sampling
    assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in m.parameters())
