"""MSAF: motion-state alignment framework (Su et al., CVPR 2023), every ablation of its Table 3.

Clip (B, T, 3, H, W), frames t-2, t-1, t (target last). One shared backbone gives, per frame, stage
features F3, F4, F5 at stride 8 (Sec. 3.2). Then, with the options of config/variants.yaml:

- motion_alignment (Sec. 3.3): F5 of every frame is projected to the transformer width D. Decoupled
  transformer (``motion_transformer: decoupled``): PST, Eq. (2)-(3): t-2 average-pooled by 4 and t-1 by 2,
  a pre-norm transformer block (spatial multi-head self-attention + MLP) per frame, bilinear upsampling
  back; t at full resolution. ATT, Eq. (5)-(6): a deformable convolution (K = 3, offsets predicted from the
  reference and target features, bounded to +-1 pixel per tap, see DCN_MAX_OFFSET) aligns each of t-2, t-1
  to t (``dcn: false`` = a plain 3x3 conv, "w/o DCN"), then a transformer block attends across the three
  frames at each pixel. Output M(t-2),
  M(t-1), M(t). ``motion_transformer: vanilla`` ("Baseline + TR") instead runs joint spatio-temporal
  self-attention over the tokens of all frames, deep enough to have at least MSAF's parameters.
- state_alignment (Sec. 3.4): the stage transformer, Eq. (9): F3, F4, F5 of the target (each projected to
  D) and M(t) are four tokens per pixel (plus a learned stage embedding); a transformer block attends
  across them; concatenated, two convolutions give the pixel descriptors P (K channels), loss L_pd.
- semantic_assignment (Sec. 3.5): two convolutions on M(t) give the soft mask M(t)' (K channels), loss
  L_rd. Region descriptors: for each class j, the average of M(t)' over the image weighted by its logit map
  M(t)'_j ("weighted with each logit (feature map before softmax)"), i.e. R = M'^T M' / N, one K-vector per
  class (the paper's R in R^{Cls x 1 x 1}); ``region_weights: softmax`` weights by softmax(M')_j instead.
  Final logits: P against every L2-normalised region descriptor, Eq. (13) as a matrix product, loss L_M.
  Total loss Eq. (15): L_pd + L_rd + L_M.
- Without semantic assignment the final logits are the remaining branch's (M(t)' or P), or their average
  when both exist ("w/o Semantics", trained with L_pd + L_rd; ``average_ce: true`` adds a CE on the
  average, a loss the paper does not define). Without state alignment the pixel descriptors come from the
  concatenation of M(t) and the backbone's F5 ("w/o State", as the paper's ablation text says). Without
  motion alignment M(t) is the projected F5 of the target and the clip is the target frame only.
- All three off: "Baseline" = backbone + plain segmentation head (FCN head on ResNet, the PSP
  classifier on PSPNet, i.e. PSPNet itself, the HRNetV2 head at 1/4 on HRNet).

Other options: ``stem: v1b`` builds ResNet/PSPNet backbones with torchvision's 7x7 stem (so torchvision's
ImageNet weights load whole; default ``v1c``, mmseg's deep stem). Hooks of the model contract: ``extract`` /
``decode`` (streaming), ``lr_groups`` (the ImageNet part of the backbone / the DCN offset convs / the rest:
PSPNet's pyramid pooling module trains with the head) and ``diagnostics`` (in-frame fraction and offset
length of each DCN, and ``ref_attention``, the attention the target's token gives its references).

Attention is ``F.scaled_dot_product_attention`` (memory-efficient: never an N x N matrix, which at F5 of a
1024x2048 frame would be 32768^2). Every width/head/reduction the paper leaves open is in the tables
below, with its evidence in docs/reproduction-notes.md ("MSAF").
"""
from __future__ import annotations

from functools import lru_cache

import torch
import torch.nn.functional as F
from torch import nn

from common.families import family_backbones
from models.backbones import build_cnn_backbone
from models.losses import cross_entropy
from models.ops.deform_conv import DeformConv2d
from models.ops.sampling import sampling_diagnostics

BACKBONES = family_backbones("msaf")   # the CNN rows of common/families.py

# backbone -> (transformer width D, attention heads); head dim 32 everywhere. D is also the width of the
# two-convolution heads. Evidence in docs/reproduction-notes.md (MSAF: widths).
EMBED = {
    "resnet18": (128, 4), "pspnet18": (128, 4), "hrnet_w18": (128, 4),
    "resnet50": (256, 8), "pspnet50": (256, 8), "resnet101": (256, 8), "pspnet101": (256, 8),
    "hrnet_w48": (256, 8),
}
MLP_RATIO = 4                      # transformer MLP hidden width = 4 D (Vaswani et al.)
PST_DOWNSAMPLE = (4, 2, 1)         # t-2, t-1, t (Sec. 3.3: "x4 in frame t-2", "x2 in frame t-1")
DCN_KERNEL = 3                     # Eq. (5): K = 3
# Eq. (5)'s learned offsets are bounded, B tanh(dp / B) as BasicVSR++ bounds its deformable alignment, with
# B = K // 2: "p_k means the location range of K x K centered on the current position", so each tap refines
# its position within one pixel and stays in the (2K - 1)^2 neighbourhood. Unbounded, even at 0.1x the LR the
# offsets drift off the map (docs/reproduction-notes.md, "Deformable sampling").
DCN_MAX_OFFSET = float(DCN_KERNEL // 2)
HEAD_DROPOUT = 0.1                 # before every 1x1 classifier (mmseg convention)
BASELINE_HEAD_WIDTH = {18: 128, 50: 512, 101: 512}  # FCN head 3x3 conv width on the plain ResNets
OUTPUT_STRIDE = 8

DEFAULT_OPTIONS = dict(motion_alignment=True, state_alignment=True, semantic_assignment=True, dcn=True,
                       motion_transformer="decoupled", dcn_modulated=False, embed_dim=None, heads=None,
                       vanilla_depth=None, region_weights="logits", average_ce=False, stem=None)
REGION_WEIGHTS = ("logits", "softmax")


# ----------------------------------------------------------------------------------------- building blocks
class TransformerBlock(nn.Module):
    """Pre-norm block, MSAF Eq. (3): X' = Attention(LN(X)) + X;  out = MLP(LN(X')) + X'.
    Tokens (S, L, D): S independent sequences of length L."""

    def __init__(self, dim: int, heads: int, mlp_ratio: int = MLP_RATIO):
        super().__init__()
        if dim % heads:
            raise ValueError(f"transformer width {dim} is not divisible by {heads} heads")
        self.heads = heads
        self.record_last_query = False      # set by ATT: log how much the target attends to its references
        self.other_share = (0.0, 0)
        self.norm1 = nn.LayerNorm(dim)
        self.qkv = nn.Linear(dim, 3 * dim)
        self.proj = nn.Linear(dim, dim)
        self.norm2 = nn.LayerNorm(dim)
        self.mlp = nn.Sequential(nn.Linear(dim, mlp_ratio * dim), nn.GELU(), nn.Linear(mlp_ratio * dim, dim))

    def attention(self, x: torch.Tensor) -> torch.Tensor:
        s, n, d = x.shape
        q, k, v = self.qkv(x).view(s, n, 3, self.heads, d // self.heads).permute(2, 0, 3, 1, 4)
        if self.training and self.record_last_query:
            with torch.no_grad():   # the last token's attention on the others (ATT: the target on its references)
                w = (q[:, :, -1:] @ k.transpose(-2, -1) * q.shape[-1] ** -0.5).softmax(-1)
                share = 1.0 - w[..., -1].mean()
            total, count = self.other_share
            self.other_share = (total + share, count + 1)
        out = F.scaled_dot_product_attention(q, k, v)  # (S, heads, L, d_h); memory-efficient kernels
        return self.proj(out.transpose(1, 2).reshape(s, n, d))

    def read_other_share(self) -> float | None:
        """Mean attention weight the last token gave the other tokens since the last read (training)."""
        total, count = self.other_share
        self.other_share = (0.0, 0)
        return float(total / count) if count else None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x + self.attention(self.norm1(x))
        return x + self.mlp(self.norm2(x))


def to_tokens(x: torch.Tensor) -> torch.Tensor:
    return x.flatten(2).transpose(1, 2)  # (B, C, h, w) -> (B, h w, C)


def from_tokens(t: torch.Tensor, h: int, w: int) -> torch.Tensor:
    return t.transpose(1, 2).reshape(t.shape[0], t.shape[2], h, w)


def two_conv_head(cin: int, width: int, num_classes: int) -> nn.Sequential:
    """The paper's "two convolutional layers": 3x3 conv + BN + ReLU, then a 1x1 classifier."""
    return nn.Sequential(nn.Conv2d(cin, width, 3, padding=1, bias=False), nn.BatchNorm2d(width), nn.ReLU(inplace=True),
                         nn.Dropout2d(HEAD_DROPOUT), nn.Conv2d(width, num_classes, 1))


class PyramidSpatialTransformer(nn.Module):
    """PST, Eq. (2): per frame DS -> spatial MHSA block -> US (frame-specific weights)."""

    def __init__(self, dim: int, heads: int, downsample=PST_DOWNSAMPLE):
        super().__init__()
        self.downsample = tuple(downsample)
        self.blocks = nn.ModuleList(TransformerBlock(dim, heads) for _ in self.downsample)

    def forward(self, frames: list[torch.Tensor]) -> list[torch.Tensor]:
        out = []
        for x, r, block in zip(frames, self.downsample, self.blocks):
            h, w = x.shape[-2:]
            y = F.avg_pool2d(x, r, ceil_mode=True) if r > 1 else x
            hy, wy = y.shape[-2:]
            y = from_tokens(block(to_tokens(y)), hy, wy)
            if r > 1:
                y = F.interpolate(y, size=(h, w), mode="bilinear", align_corners=False)
            out.append(y)
        return out


class AlignedTemporalTransformer(nn.Module):
    """ATT, Eq. (5)-(6): deformable alignment of each reference to the target, then MHSA across time at
    each pixel. Offsets are predicted from [reference, target] (what "align to the current frame" needs)."""

    def __init__(self, dim: int, heads: int, num_refs: int, dcn: bool = True, modulated: bool = False):
        super().__init__()
        if dcn:
            self.align = nn.ModuleList(
                DeformConv2d(dim, dim, DCN_KERNEL, padding=DCN_KERNEL // 2, modulated=modulated,
                             offset_in_channels=2 * dim, max_offset=DCN_MAX_OFFSET) for _ in range(num_refs))
        else:  # "w/o DCN": the same 3x3 convolution, no offsets
            self.align = nn.ModuleList(nn.Conv2d(dim, dim, DCN_KERNEL, padding=DCN_KERNEL // 2)
                                       for _ in range(num_refs))
        self.dcn = dcn
        self.block = TransformerBlock(dim, heads)
        self.block.record_last_query = True   # the target is the last token of every sequence

    def forward(self, frames: list[torch.Tensor]) -> list[torch.Tensor]:
        *refs, target = frames
        aligned = [a(r, torch.cat([r, target], 1)) if self.dcn else a(r) for a, r in zip(self.align, refs)]
        stack = torch.stack(aligned + [target], dim=1)  # (B, T, D, h, w)
        b, t, d, h, w = stack.shape
        tokens = stack.permute(0, 3, 4, 1, 2).reshape(b * h * w, t, d)  # one length-T sequence per pixel
        tokens = self.block(tokens)
        out = tokens.view(b, h, w, t, d).permute(0, 3, 4, 1, 2)
        return list(out.unbind(1))


class DecoupledTransformer(nn.Module):
    def __init__(self, dim: int, heads: int, num_frames: int, dcn: bool, modulated: bool):
        super().__init__()
        self.pst = PyramidSpatialTransformer(dim, heads, PST_DOWNSAMPLE[-num_frames:])
        self.att = AlignedTemporalTransformer(dim, heads, num_frames - 1, dcn, modulated)

    def forward(self, frames):
        return self.att(self.pst(frames))


class VanillaSpatioTemporalTransformer(nn.Module):
    """"Baseline + TR": joint self-attention over the tokens of every frame (T h w tokens), ``depth``
    blocks, a learned frame embedding so tokens know their time."""

    def __init__(self, dim: int, heads: int, num_frames: int, depth: int):
        super().__init__()
        self.frame_embed = nn.Parameter(torch.zeros(num_frames, dim))
        nn.init.trunc_normal_(self.frame_embed, std=0.02)
        self.blocks = nn.Sequential(*[TransformerBlock(dim, heads) for _ in range(depth)])

    def forward(self, frames):
        b, d, h, w = frames[0].shape
        tokens = torch.cat([to_tokens(f) + self.frame_embed[i] for i, f in enumerate(frames)], dim=1)
        tokens = self.blocks(tokens)
        return [from_tokens(t, h, w) for t in tokens.split(h * w, dim=1)]


class StageTransformer(nn.Module):
    """Eq. (9): MHSA across the stage dimension (F3, F4, F5[, M(t)]) at every pixel."""

    def __init__(self, dim: int, heads: int, num_stages: int):
        super().__init__()
        self.stage_embed = nn.Parameter(torch.zeros(num_stages, dim))
        nn.init.trunc_normal_(self.stage_embed, std=0.02)
        self.block = TransformerBlock(dim, heads)

    def forward(self, stages: list[torch.Tensor]) -> torch.Tensor:
        stack = torch.stack(stages, dim=1)  # (B, S, D, h, w)
        b, s, d, h, w = stack.shape
        tokens = stack.permute(0, 3, 4, 1, 2).reshape(b * h * w, s, d) + self.stage_embed
        tokens = self.block(tokens)
        return tokens.view(b, h, w, s * d).permute(0, 3, 1, 2)  # stages concatenated: (B, S D, h, w)


def region_descriptors(mask_logits: torch.Tensor, weights: str = "logits") -> torch.Tensor:
    """(B, K, h, w) soft-mask logits -> (B, K, K): row j = mean over pixels p of w_j(p) * M'(p), the soft mask
    weighted by class j's map: its logit M'_j ("weighted with each logit (feature map before softmax)", the
    default) or its probability softmax(M')_j (``weights="softmax"``)."""
    if weights not in REGION_WEIGHTS:
        raise ValueError(f"region_weights must be one of {', '.join(REGION_WEIGHTS)}, got {weights!r}")
    b, k, h, w = mask_logits.shape
    feats = mask_logits.flatten(2)                       # (B, K, N)
    maps = feats.softmax(dim=1) if weights == "softmax" else feats
    return torch.matmul(maps, feats.transpose(1, 2)) / (h * w)


def cosine_assignment(pixel_descriptors: torch.Tensor, regions: torch.Tensor) -> torch.Tensor:
    """Eq. (13) as a matrix product: logits_j(i) = pix_i . r_j / |r_j|. Dropping |pix_i| changes no
    argmax (it is the same for every j), so argmax_j logits = argmin_j (1 - cos(pix_i, r_j))."""
    b, c, h, w = pixel_descriptors.shape
    r = F.normalize(regions, dim=-1)                      # (B, K, C)
    return torch.matmul(r, pixel_descriptors.flatten(2)).view(b, r.shape[1], h, w)


# ----------------------------------------------------------------------------------------- backbone taps
class StageFeatures(nn.Module):
    """A CNN backbone seen as MSAF sees it: (F3, F4, F5) of every frame at stride 8, and the baseline's
    input. ResNet/PSPNet: C3, C4 and C5 (PSPNet: the PPM output). HRNet: branch 2 (1/8), branch 3
    upsampled to 1/8, and the HRNetV2 concatenation of all four branches at 1/8."""

    def __init__(self, name: str, stem: str | None = None):
        super().__init__()
        self.name = name
        self.body = build_cnn_backbone(name, stem=stem)
        self.hrnet = name.startswith("hrnet")
        oc = self.body.out_channels
        self.channels = (oc[1], oc[2], sum(oc)) if self.hrnet else (oc[1], oc[2], oc[3])

    def stages(self, feats: list[torch.Tensor]) -> list[torch.Tensor]:
        if not self.hrnet:
            return feats[1:]
        size = feats[1].shape[-2:]
        f4 = F.interpolate(feats[2], size=size, mode="bilinear", align_corners=False)
        return [feats[1], f4, self.body.fuse(feats, size)]

    def forward(self, x):
        return self.stages(self.body(x))


class BaselineHead(nn.Module):
    """Backbone + plain segmentation head (Table 3 "Baseline")."""

    def __init__(self, backbone: str, body: nn.Module, num_classes: int):
        super().__init__()
        oc = body.out_channels
        if backbone.startswith("pspnet"):      # PSPNet: the PPM bottleneck already ran; its classifier
            self.head = nn.Sequential(nn.Dropout2d(HEAD_DROPOUT), nn.Conv2d(oc[-1], num_classes, 1))
            self.stride = 8
        elif backbone.startswith("hrnet"):     # HRNetV2 head: 1x1 conv on the concatenation at 1/4
            c = sum(oc)
            self.head = nn.Sequential(nn.Conv2d(c, c, 1, bias=False), nn.BatchNorm2d(c), nn.ReLU(inplace=True),
                                      nn.Dropout2d(HEAD_DROPOUT), nn.Conv2d(c, num_classes, 1))
            self.stride = 4
        else:                                   # FCN head on the dilated ResNet
            self.head = two_conv_head(oc[-1], BASELINE_HEAD_WIDTH[body.depth], num_classes)
            self.stride = 8
        self.hrnet = backbone.startswith("hrnet")

    def forward(self, body: nn.Module, feats: list[torch.Tensor]) -> torch.Tensor:
        x = body.fuse(feats) if self.hrnet else feats[-1]
        return self.head(x)


# ----------------------------------------------------------------------------------------- the model
class MSAF(nn.Module):
    def __init__(self, backbone: str, num_classes: int, num_frames: int, *, motion_alignment: bool,
                 state_alignment: bool, semantic_assignment: bool, dcn: bool, motion_transformer: str,
                 dcn_modulated: bool, embed_dim: int | None, heads: int | None, vanilla_depth: int | None,
                 region_weights: str = "logits", average_ce: bool = False, stem: str | None = None,
                 features: StageFeatures | None = None):
        super().__init__()
        if motion_transformer not in ("decoupled", "vanilla"):
            raise ValueError(f"motion_transformer must be 'decoupled' or 'vanilla', got {motion_transformer!r}")
        if motion_alignment and num_frames < 2:
            raise ValueError("motion alignment needs reference frames (ref_offsets), got a single-frame clip")
        if motion_alignment and motion_transformer == "decoupled" and num_frames > len(PST_DOWNSAMPLE):
            raise ValueError(f"the decoupled transformer has PST rates for {len(PST_DOWNSAMPLE)} frames, "
                             f"got {num_frames}")
        self.backbone_name = backbone
        self.num_classes = num_classes
        self.motion = motion_alignment
        self.state = state_alignment
        self.semantic = semantic_assignment
        if region_weights not in REGION_WEIGHTS:
            raise ValueError(f"region_weights must be one of {', '.join(REGION_WEIGHTS)}, got {region_weights!r}")
        self.baseline = not (motion_alignment or state_alignment or semantic_assignment)
        self.region_weights, self.average_ce = region_weights, average_ce
        self.num_frames = num_frames if motion_alignment else 1  # frames the model reads (target last)
        self.features = features if features is not None else StageFeatures(backbone, stem)
        c3, c4, c5 = self.features.channels
        d, h = EMBED[backbone]
        d, h = embed_dim or d, heads or h
        self.embed_dim, self.heads = d, h

        if self.baseline:
            self.baseline_head = BaselineHead(backbone, self.features.body, num_classes)
            self.output_stride = self.baseline_head.stride
            return
        self.output_stride = OUTPUT_STRIDE
        if motion_alignment or semantic_assignment:  # F5 -> D: motion tokens (M(t) itself without motion)
            self.f5_proj = nn.Conv2d(c5, d, 1)
        if motion_alignment:
            if motion_transformer == "decoupled":
                self.motion_transformer = DecoupledTransformer(d, h, self.num_frames, dcn, dcn_modulated)
            else:
                depth = vanilla_depth or matching_vanilla_depth(backbone, num_classes, self.num_frames, d, h,
                                                                tuple(self.features.channels))
                self.motion_transformer = VanillaSpatioTemporalTransformer(d, h, self.num_frames, depth)
        if state_alignment:
            self.stage_proj = nn.ModuleList(nn.Conv2d(c, d, 1) for c in (c3, c4, c5))
            num_stages = 4 if motion_alignment else 3  # M(t) joins only when motion alignment exists
            self.stage_transformer = StageTransformer(d, h, num_stages)
            self.pixel_head = two_conv_head(num_stages * d, d, num_classes)
        elif semantic_assignment:  # "w/o State": M(t) and backbone F5 concatenated into the pixel descriptors
            self.pixel_head = two_conv_head(d + c5, d, num_classes)
        if motion_alignment or semantic_assignment:
            self.mask_head = two_conv_head(d, d, num_classes)  # soft mask M(t)'

    # -- forward -----------------------------------------------------------------------------------
    def _frames(self, clip: torch.Tensor) -> torch.Tensor:
        if clip.dim() != 5:
            raise ValueError(f"MSAF expects a clip (B, T, 3, H, W), got shape {tuple(clip.shape)}")
        if clip.shape[1] < self.num_frames:
            raise ValueError(f"MSAF variant reads {self.num_frames} frames, the clip has {clip.shape[1]}")
        return clip[:, clip.shape[1] - self.num_frames:]  # the frames this variant reads, target last

    def forward(self, clip: torch.Tensor):
        clip = self._frames(clip)
        b, t = clip.shape[:2]
        return self.decode([f.view(b, t, *f.shape[1:]) for f in self.extract(clip.flatten(0, 1))])

    def extract(self, frames: torch.Tensor) -> list[torch.Tensor]:
        """Backbone features of frames (N, 3, H, W), one list entry per backbone output. A streaming
        caller can keep them per frame and call ``decode`` with the last ``num_frames`` of them stacked
        (B, T, ...): each step then runs the backbone on the new frame only, as the paper's FPS implies."""
        return self.features.body(frames)

    def decode(self, feats: list[torch.Tensor]):
        """Everything after the backbone; ``feats`` as ``extract`` returns them, stacked to (B, T, ...)."""
        b, t = feats[0].shape[:2]
        if self.baseline:
            logits = self.baseline_head(self.features.body, [f[:, -1] for f in feats])
            return {"logits": logits} if self.training else logits

        raw = [f.flatten(0, 1) for f in feats]
        f3, f4, f5 = [f.view(b, t, *f.shape[1:]) for f in self.features.stages(raw)]
        f3, f4, f5_t = f3[:, -1], f4[:, -1], f5[:, -1]
        if self.motion:
            tokens = self.f5_proj(f5.flatten(0, 1)).view(b, t, self.embed_dim, *f5.shape[-2:])
            motion = self.motion_transformer(list(tokens.unbind(1)))  # M(t-2), M(t-1), M(t)
            m_t = motion[-1]
        elif self.semantic:
            m_t = self.f5_proj(f5_t)

        out = {}
        if self.state:
            stages = [proj(f) for proj, f in zip(self.stage_proj, (f3, f4, f5_t))]
            if self.motion:
                stages.append(m_t)
            out["pixel_logits"] = self.pixel_head(self.stage_transformer(stages))  # P
        elif self.semantic:
            out["pixel_logits"] = self.pixel_head(torch.cat([m_t, f5_t], 1))
        if self.motion or self.semantic:
            out["mask_logits"] = self.mask_head(m_t)  # M(t)'

        if self.semantic:
            logits = cosine_assignment(out["pixel_logits"], region_descriptors(out["mask_logits"], self.region_weights))
        elif "pixel_logits" in out and "mask_logits" in out:  # "w/o Semantics": average of the two masks
            logits = 0.5 * (out["pixel_logits"] + out["mask_logits"])
        else:  # one branch only: its logits are the prediction (and its loss is the only one)
            logits = out.pop("pixel_logits", None)
            logits = out.pop("mask_logits") if logits is None else logits
        if not self.training:
            return logits
        out["logits"] = logits
        return out

    def lr_groups(self) -> dict[str, list[nn.Module]]:
        """The ImageNet part of the backbone at the base LR (PSPNet's pyramid pooling module is new: head
        LR), the deformable convolutions' offset convs at the offset LR, the rest at the head LR
        (engine/schedule.py)."""
        return {"backbone": [self.features.body.imagenet_part()], "offset": [a.offset_conv for a in self._dcns()]}

    def _dcns(self) -> list[DeformConv2d]:
        att = getattr(getattr(self, "motion_transformer", None), "att", None)
        return [a for a in att.align if isinstance(a, DeformConv2d)] if att is not None else []

    def diagnostics(self) -> dict[str, float]:
        """Since the last call (training forwards): in-frame fraction and offset length (px) of each ATT
        deformable convolution (``att_dcn1`` aligns the earliest reference), and ``ref_attention``, the mean
        attention weight the target's token gives the reference tokens in ATT (2/3 would be uniform)."""
        out = sampling_diagnostics({f"att_dcn{i + 1}": a for i, a in enumerate(self._dcns())})
        att = getattr(getattr(self, "motion_transformer", None), "att", None)
        share = att.block.read_other_share() if att is not None else None
        if share is not None:
            out["ref_attention"] = share
        return out

    def attention_flops(self, height: int, width: int) -> int:
        """Multiply-adds of every attention product (Q K^T and A V) one eval forward of a height x width
        clip runs: what fvcore's SDPA handle counts, written out (the paper's Eq. (1)/(4)/(7) terms).
        Also the attention term of the complexity CLI's paper convention (``paper_attention_flops``)."""
        if self.baseline:
            return 0
        h8, w8 = height, width
        for _ in range(3):  # stem conv, max-pool, stage-2 stride: each ceil(x / 2)
            h8, w8 = -(-h8 // 2), -(-w8 // 2)
        n, d, t = h8 * w8, self.embed_dim, self.num_frames
        total = 0
        if self.motion and isinstance(self.motion_transformer, DecoupledTransformer):
            for r in self.motion_transformer.pst.downsample:  # PST: spatial, per frame, at 1/r
                total += 2 * ((-(-h8 // r)) * (-(-w8 // r))) ** 2 * d
            total += 2 * n * t * t * d  # ATT: across T frames at every pixel
        elif self.motion:
            total += 2 * len(self.motion_transformer.blocks) * (t * n) ** 2 * d  # joint over T h w tokens
        if self.state:
            s = self.stage_transformer.stage_embed.shape[0]
            total += 2 * n * s * s * d
        return total

    paper_attention_flops = attention_flops

    def loss(self, outputs: dict, target: torch.Tensor) -> dict:
        """Eq. (15): L_M (final logits) + L_pd (pixel descriptors) + L_rd (soft mask), each pixel-wise CE
        with the logits upsampled to the label (ignore 255). Branches a variant lacks contribute nothing:
        "w/o Semantics" (the average of the two masks is the prediction) trains with L_pd + L_rd, and adds a
        CE on the average only with ``average_ce: true`` (the paper defines no such loss)."""
        averaged = not self.semantic and "pixel_logits" in outputs and "mask_logits" in outputs
        losses = {} if averaged and not self.average_ce else {"ce": cross_entropy(outputs["logits"], target)}
        if "pixel_logits" in outputs:
            losses["pd"] = cross_entropy(outputs["pixel_logits"], target)
        if "mask_logits" in outputs:
            losses["rd"] = cross_entropy(outputs["mask_logits"], target)
        losses["total"] = sum(losses.values())
        return losses


def head_parameters(model: MSAF) -> int:
    """Parameters outside the backbone (what the variants differ in)."""
    body = {id(p) for p in model.features.parameters()}
    return sum(p.numel() for p in model.parameters() if id(p) not in body)


class _ChannelsOnly(nn.Module):
    """Stand-in for StageFeatures when only the head's size matters (no backbone is built)."""

    def __init__(self, channels):
        super().__init__()
        self.channels = tuple(channels)
        self.body = None


@lru_cache(maxsize=None)
def matching_vanilla_depth(backbone: str, num_classes: int, num_frames: int, dim: int, heads: int,
                           channels: tuple[int, int, int]) -> int:
    """Smallest number of vanilla blocks for which "Baseline + TR" has at least full MSAF's parameters
    (the paper: baseline+TR "has more parameters than the whole framework MSAF"). Heads are built on the
    meta device, so this costs no memory and no backbone."""
    common = dict(dcn_modulated=False, embed_dim=dim, heads=heads, features=_ChannelsOnly(channels))
    with torch.device("meta"):
        full = head_parameters(MSAF(backbone, num_classes, num_frames, motion_alignment=True, state_alignment=True,
                                    semantic_assignment=True, dcn=True, motion_transformer="decoupled",
                                    vanilla_depth=None, **common))
        for depth in range(1, 64):
            tr = head_parameters(MSAF(backbone, num_classes, num_frames, motion_alignment=True,
                                      state_alignment=False, semantic_assignment=False, dcn=True,
                                      motion_transformer="vanilla", vanilla_depth=depth, **common))
            if tr >= full:
                return depth
    raise AssertionError("no vanilla depth below 64 matches MSAF's parameters")


def build(backbone: str, num_classes: int, ref_offsets=(), **options) -> MSAF:
    """Registry entry point (models/registry.py). Options: see DEFAULT_OPTIONS and the module docstring.
    ImageNet weights are loaded by engine.train (``pretrained``, models/pretrained.py), not here."""
    if backbone not in BACKBONES:
        raise ValueError(f"MSAF takes backbones {', '.join(BACKBONES)}; got '{backbone}'")
    unknown = set(options) - set(DEFAULT_OPTIONS)
    if unknown:
        raise ValueError(f"unknown MSAF option(s): {', '.join(sorted(unknown))} "
                         f"(known: {', '.join(DEFAULT_OPTIONS)})")
    opts = {**DEFAULT_OPTIONS, **options}
    model = MSAF(backbone, num_classes, len(ref_offsets) + 1, **opts)
    model.ref_offsets = tuple(ref_offsets)
    return model
