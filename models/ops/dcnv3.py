"""DCNv3, InternImage's deformable convolution (Wang et al. 2023), in plain PyTorch with ``grid_sample``.

Channels-last, as in InternImage's ``DCNv3_pytorch``:

    x   = input_proj(input)                                   linear C -> C (the values to sample)
    x1  = GELU(LN(depthwise_conv(input)))                     k_dw x k_dw depth-wise conv
    off = offset(x1)   (G x K^2 x 2, pixels, x then y)        linear C -> 2 G K^2, starts at zero
    m   = softmax over the K^2 points of each group(mask(x1)) linear C -> G K^2,   starts at zero
    out = output_proj( sum_k m_k * bilinear(x, p + p_k + off_k) )

Each of the G groups owns C / G channels and its own K^2 offsets and mask. Sampling is bilinear with zero
padding (``grid_sample``, align_corners False), so with zero offsets and a uniform mask the core is exactly
K x K average pooling with zero padding (count_include_pad) - the check in tests/test_ops_sdcpc.py.

Parameters: 2 C^2 + C (k_dw^2 + 5) + 3 G K^2 (C + 1)   (C = 256, G = 16, K = 3: 245,680).

InternImage uses the block as a residual branch, ``x + DCNv3(LN(x))`` (SD-CPC's SSEA does the same, see
models/sdcpc.py); the block itself has no identity path. In training mode it records where its points land
(``models.ops.sampling``: in-frame fraction, offset length), which the models log.

The weighted sum over points is an ``einsum`` so that fvcore counts it (a plain mul + sum counts zero);
``grid_sampler`` itself is counted by fvcore at 4 per output element.
"""
from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F

from models.ops.sampling import record_sampling

# InternImage's LayerNorm epsilon (build_norm_layer(..., eps=1e-6))
LN_EPS = 1e-6


def kernel_grid(kernel_size: int, dilation: int = 1) -> torch.Tensor:
    """(K^2, 2) pixel offsets (x, y) of a K x K kernel around its centre, x varying slowest (InternImage)."""
    half = (dilation * (kernel_size - 1)) // 2
    steps = torch.arange(kernel_size, dtype=torch.float32) * dilation - half
    gx, gy = torch.meshgrid(steps, steps, indexing="ij")  # x outer, y inner
    return torch.stack([gx.reshape(-1), gy.reshape(-1)], dim=-1)


def pixel_to_grid(xy: torch.Tensor, height: int, width: int) -> torch.Tensor:
    """Pixel coordinates (x, y) (pixel centres at integers) -> grid_sample's [-1, 1], align_corners False."""
    scale = xy.new_tensor([2.0 / width, 2.0 / height])
    return (xy + 0.5) * scale - 1.0


def sampling_locations(offset: torch.Tensor, kernel_size: int, group: int, dilation: int = 1,
                       offset_scale: float = 1.0) -> torch.Tensor:
    """(B, H, W, G*K*K*2) offsets -> (B, H, W, G, K*K, 2) pixel positions (x, y): the pixel itself plus the
    kernel grid plus the learned offset."""
    b, h, w, _ = offset.shape
    kk = kernel_size * kernel_size
    ys, xs = torch.meshgrid(torch.arange(h, device=offset.device, dtype=offset.dtype),
                            torch.arange(w, device=offset.device, dtype=offset.dtype), indexing="ij")
    ref = torch.stack([xs, ys], dim=-1).view(1, h, w, 1, 1, 2)
    grid = kernel_grid(kernel_size, dilation).to(offset).view(1, 1, 1, 1, kk, 2)
    return ref + grid + offset.view(b, h, w, group, kk, 2) * offset_scale


def dcnv3_core(x: torch.Tensor, offset: torch.Tensor, mask: torch.Tensor, kernel_size: int = 3,
               group: int = 1, dilation: int = 1, offset_scale: float = 1.0) -> torch.Tensor:
    """The sampling core of DCNv3 (stride 1, 'same' output size).

    x: (B, H, W, C) channels-last values; offset: (B, H, W, G*K*K*2) in pixels, per group then point,
    (x, y) last; mask: (B, H, W, G*K*K) weights (already normalised). Returns (B, H, W, C).
    """
    b, h, w, c = x.shape
    kk = kernel_size * kernel_size
    gc = c // group
    loc = sampling_locations(offset, kernel_size, group, dilation, offset_scale)    # (B,H,W,G,KK,2) pixels
    loc = pixel_to_grid(loc, h, w).permute(0, 3, 1, 2, 4, 5).reshape(b * group, h * w, kk, 2)
    values = x.view(b, h * w, group, gc).permute(0, 2, 3, 1).reshape(b * group, gc, h, w)
    sampled = F.grid_sample(values, loc, mode="bilinear", padding_mode="zeros", align_corners=False)
    weights = mask.view(b, h * w, group, kk).permute(0, 2, 1, 3).reshape(b * group, h * w, kk)
    out = torch.einsum("gcnk,gnk->gcn", sampled, weights)                            # (B*G, gc, HW)
    return out.reshape(b, group * gc, h, w).permute(0, 2, 3, 1)


class DCNv3(nn.Module):
    """InternImage's DCNv3 block on channels-first maps (B, C, H, W) -> (B, C, H, W)."""

    def __init__(self, channels: int, kernel_size: int = 3, group: int = 4, dw_kernel_size: int = 3,
                 offset_scale: float = 1.0):
        super().__init__()
        if channels % group:
            raise ValueError(f"DCNv3: channels {channels} not divisible by group {group}")
        c_in = channels
        self.channels, self.kernel_size, self.group, self.offset_scale = channels, kernel_size, group, offset_scale
        kk = kernel_size * kernel_size
        self.dw_conv = nn.Conv2d(c_in, c_in, dw_kernel_size, padding=dw_kernel_size // 2, groups=c_in)
        self.dw_norm = nn.LayerNorm(c_in, eps=LN_EPS)
        self.offset = nn.Linear(c_in, group * kk * 2)
        self.mask = nn.Linear(c_in, group * kk)
        self.input_proj = nn.Linear(c_in, channels)
        self.output_proj = nn.Linear(channels, channels)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        # InternImage: offsets and mask start at zero -> plain K x K averaging; projections Xavier
        for layer in (self.offset, self.mask):
            nn.init.zeros_(layer.weight)
            nn.init.zeros_(layer.bias)
        for layer in (self.input_proj, self.output_proj):
            nn.init.xavier_uniform_(layer.weight)
            nn.init.zeros_(layer.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, _, h, w = x.shape
        kk = self.kernel_size * self.kernel_size
        values = self.input_proj(x.permute(0, 2, 3, 1))
        x1 = F.gelu(self.dw_norm(self.dw_conv(x).permute(0, 2, 3, 1)))
        offset = self.offset(x1)
        if self.training:
            loc = sampling_locations(offset, self.kernel_size, self.group, offset_scale=self.offset_scale)
            record_sampling(self, loc[..., 0], loc[..., 1], (offset * self.offset_scale).view(*loc.shape).norm(dim=-1),
                            h, w, margin=(self.kernel_size - 1) / 2)
        mask = self.mask(x1).view(b, h, w, self.group, kk).softmax(-1).view(b, h, w, -1)
        out = dcnv3_core(values, offset, mask, self.kernel_size, self.group, offset_scale=self.offset_scale)
        return self.output_proj(out).permute(0, 3, 1, 2)


def dcnv3_param_count(channels: int, group: int, kernel_size: int = 3, dw_kernel_size: int = 3) -> int:
    """2 C^2 + C (k_dw^2 + 5) + 3 G K^2 (C + 1): input and output projections, depth-wise conv, its LayerNorm,
    offset (2 G K^2) and mask (G K^2) linears."""
    c, kk = channels, kernel_size * kernel_size
    return 2 * c * c + c * (dw_kernel_size ** 2 + 5) + 3 * group * kk * (c + 1)
