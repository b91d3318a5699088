"""Deformable convolution v1 (Dai et al. 2017) and v2 with modulation (Zhu et al. 2019), in plain PyTorch.

Each of the K = kh x kw kernel taps of every output pixel samples the input bilinearly (``grid_sample``,
zero padding, align_corners False) at  p0 + p_k + dp_k  (p0 the tap grid of an ordinary convolution with
the same stride/padding/dilation, dp_k the learned offset), the samples are optionally multiplied by a
modulation in [0, 1] (v2), then contracted with the weight exactly as an im2col convolution. With zero
offsets (and modulation 1) every sample lands on an integer pixel or in the zero padding, so the result is
``F.conv2d`` with the same arguments (a test checks it, also with stride and dilation).

Offset layout follows torchvision/mmcv: (B, 2 K, Ho, Wo) as (dy_0, dx_0, dy_1, dx_1, ...), taps in
row-major order; modulation (B, K, Ho, Wo). In training mode ``DeformConv2d`` records where its taps land
(``models.ops.sampling``: in-frame fraction, offset length), which the models log.
"""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from models.ops.sampling import record_sampling


def _pair(v) -> tuple[int, int]:
    return (v, v) if isinstance(v, int) else (int(v[0]), int(v[1]))


def tap_positions(offset: torch.Tensor, kernel, stride, padding, dilation) -> tuple[torch.Tensor, torch.Tensor]:
    """Absolute sampling positions (pixel units, y then x, each (B, K, Ho, Wo)) of every tap of every output
    pixel: the im2col grid of an ordinary convolution plus the learned offset (B, 2K, Ho, Wo)."""
    (kh, kw), (sh, sw), (ph, pw), (dh, dw) = kernel, stride, padding, dilation
    b, _, ho, wo = offset.shape
    k = kh * kw
    dev, dt = offset.device, offset.dtype
    ky, kx = torch.meshgrid(torch.arange(kh, device=dev, dtype=dt) * dh,
                            torch.arange(kw, device=dev, dtype=dt) * dw, indexing="ij")
    oy, ox = torch.meshgrid(torch.arange(ho, device=dev, dtype=dt) * sh - ph,
                            torch.arange(wo, device=dev, dtype=dt) * sw - pw, indexing="ij")
    off = offset.reshape(b, k, 2, ho, wo)
    return ky.reshape(k, 1, 1) + oy + off[:, :, 0], kx.reshape(k, 1, 1) + ox + off[:, :, 1]


def deform_conv2d(x: torch.Tensor, offset: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None = None,
                  stride=1, padding=0, dilation=1, mask: torch.Tensor | None = None) -> torch.Tensor:
    """Functional deformable convolution (one offset group, no weight groups)."""
    sh, sw = _pair(stride)
    ph, pw = _pair(padding)
    dh, dw = _pair(dilation)
    b, c, h, w = x.shape
    out_ch, in_ch, kh, kw = weight.shape
    if in_ch != c:
        raise ValueError(f"deform_conv2d: weight expects {in_ch} input channels, input has {c}")
    k = kh * kw
    ho = (h + 2 * ph - dh * (kh - 1) - 1) // sh + 1
    wo = (w + 2 * pw - dw * (kw - 1) - 1) // sw + 1
    if offset.shape != (b, 2 * k, ho, wo):
        raise ValueError(f"deform_conv2d: offset must be {(b, 2 * k, ho, wo)}, got {tuple(offset.shape)}")

    pos_y, pos_x = tap_positions(offset, (kh, kw), (sh, sw), (ph, pw), (dh, dw))  # (B, K, Ho, Wo) each
    # normalise for align_corners=False: pixel i has its centre at (2 i + 1) / size - 1
    grid = torch.stack(((2 * pos_x + 1) / w - 1, (2 * pos_y + 1) / h - 1), dim=-1)  # (B, K, Ho, Wo, 2)
    sampled = F.grid_sample(x, grid.view(b, k * ho, wo, 2), mode="bilinear", padding_mode="zeros",
                            align_corners=False)  # (B, C, K*Ho, Wo)
    sampled = sampled.view(b, c, k, ho, wo)
    if mask is not None:
        sampled = sampled * mask.view(b, 1, k, ho, wo)
    # im2col contraction: (O, C*K) @ (B, C*K, Ho*Wo); C-major then tap, the layout of conv weights
    out = torch.matmul(weight.reshape(out_ch, c * k), sampled.reshape(b, c * k, ho * wo))
    out = out.view(b, out_ch, ho, wo)
    if bias is not None:
        out = out + bias.view(1, -1, 1, 1)
    return out


class DeformConv2d(nn.Module):
    """Deformable convolution whose offsets (and, for v2, modulation) come from a convolution.

    ``forward(x, guide=None)``: the offset convolution reads ``guide`` when given (e.g. the reference
    features concatenated with the target's, to align one frame to another), else ``x`` itself.
    ``offset_in_channels`` is the guide's channel count (default: ``in_channels``).
    The offset/modulation convolution starts at zero (as DCNv1/v2 do): zero offsets, so at initialisation
    v1 is an ordinary convolution and v2 half of one (modulation sigmoid(0) = 0.5).
    """

    def __init__(self, in_channels: int, out_channels: int, kernel_size=3, stride=1, padding=1, dilation=1,
                 bias: bool = True, modulated: bool = False, offset_in_channels: int | None = None,
                 max_offset: float | None = None):
        super().__init__()
        self.max_offset = max_offset
        self.kernel_size = _pair(kernel_size)
        self.stride, self.padding, self.dilation = _pair(stride), _pair(padding), _pair(dilation)
        self.modulated = modulated
        k = self.kernel_size[0] * self.kernel_size[1]
        self.weight = nn.Parameter(torch.empty(out_channels, in_channels, *self.kernel_size))
        self.bias = nn.Parameter(torch.zeros(out_channels)) if bias else None
        nn.init.kaiming_uniform_(self.weight, a=math.sqrt(5))  # nn.Conv2d's default
        self.offset_conv = nn.Conv2d(offset_in_channels or in_channels, (3 if modulated else 2) * k,
                                     self.kernel_size, self.stride, self.padding, self.dilation)
        nn.init.zeros_(self.offset_conv.weight)
        nn.init.zeros_(self.offset_conv.bias)

    def forward(self, x: torch.Tensor, guide: torch.Tensor | None = None) -> torch.Tensor:
        k = self.kernel_size[0] * self.kernel_size[1]
        om = self.offset_conv(x if guide is None else guide)
        offset, mask = om[:, :2 * k], None
        if self.max_offset is not None:   # bounded, as BasicVSR++'s deformable alignment: B tanh(raw / B)
            offset = self.max_offset * torch.tanh(offset / self.max_offset)
        if self.training:
            self._record(x, offset)
        if self.modulated:
            mask = torch.sigmoid(om[:, 2 * k:])  # DCNv2: 0.5 at initialisation (zero logits)
        return deform_conv2d(x, offset, self.weight, self.bias, self.stride, self.padding, self.dilation, mask)

    def _record(self, x: torch.Tensor, offset: torch.Tensor) -> None:
        pos_y, pos_x = tap_positions(offset, self.kernel_size, self.stride, self.padding, self.dilation)
        b, _, ho, wo = offset.shape
        lengths = offset.reshape(b, -1, 2, ho, wo).norm(dim=2)
        # the taps of an ordinary convolution reach ``padding`` pixels beyond the map: that is its margin
        margin = max(self.padding)
        record_sampling(self, pos_x, pos_y, lengths, x.shape[-2], x.shape[-1], margin)
