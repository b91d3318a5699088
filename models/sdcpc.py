"""SD-CPC (Cen et al., AAAI): static-dynamic class-level perception consistency, on a MiT encoder.

    build(backbone, num_classes, ref_offsets=(-6, -3), points=4, deform_points=9, variates=4, ssea=True,
          dssa=True, mcp_cl=True, stage1=True, stage2=True, linear_attention=True, dcn=True,
          multi_scale=True, **HYPER overrides)

Reads a clip (t-6, t-3, t; target last). Every frame goes through the same MiT encoder (as CFFM does; the
paper's GFLOPs need it, see docs/reproduction-notes.md), then

* SSEA, Eq. (1), per frame with shared weights, at the F2 size (1/8):
  S = LA(DCN([DS(F1) (+) F2 (+) US(F3) (+) US(F4)])). Each F_i is first embedded to E channels by a per-pixel
  linear (SegFormer's all-MLP embedding; at its own size for F3/F4, after DS for F1), DS = adaptive average
  pooling, US = bilinear; a 1x1 conv reduces the 4E concatenation to C. DCN = InternImage's DCNv3 (D = K^2 =
  9 points, G groups) as InternImage always uses it, a pre-norm residual branch x + DCN(LN(x)); LA =
  pre-norm linear attention, also residual.
* DSSA, two stages of the same progressive chain over the frames in time order. A stage maps per-frame maps
  [X(t-2), X(t-1), X(t)] to [X(t-2), Y(t-1), Y(t)] with Y(t-1) = A(X(t-1), X(t-2)) and Y(t) = A(X(t), Y(t-1)),
  where A(query, other) = query + SelectiveCrossAttention(query, other, coords) and coords (2P per pixel) come
  from two convolutions over a comparison of the two maps: stage 1 interleaves their rows (3x3 conv with
  stride (2, 1) over the 2H-row map, the query rows at even positions), stage 2 takes their difference
  (3x3 conv). Stage 1 gives D(t-1), D_coarse(t); stage 2, fed [S(t-2), D(t-1), D_coarse(t)], gives D_fine(t).
  The two steps of a stage share its weights ("we repeat the aforementioned steps").
* MCP-CL: D_fine -> 1x1 projection (conv + BN + ReLU, mmseg's ConvModule) to M variates of C/M channels
  (M^t), one classifier per variate (grouped 1x1 conv), joint decision = 1x1 conv over the M x K variate logits (initialised to their mean). Training
  adds class prototypes of correctly predicted pixels (Eq. 4), the prototype contrastive loss (Eq. 5) and
  the intra-class variate similarity loss (Eq. 6); Eq. (7) sums them. Prototypes and losses exist only in
  ``loss`` and cost nothing at inference.

Ablation switches (what replaces a removed part, docs/reproduction-notes.md):
    ssea=False            S = the E-wide linear embedding of F2 alone (no fusion, DCN or LA)
    dssa=False            D_fine = 1x1 conv over the concatenated S of all clip frames (temporal fusion)
    stage1/stage2=False   that stage is skipped (the other runs on what it would have received)
    mcp_cl=False          same network, trained with cross-entropy only (lambda1 = lambda2 = 0)
    variates=1            M = 1 (Eq. 6 is empty and counts 0)
    linear_attention=False, dcn=False (the residual branch is dropped), multi_scale=False (F2 only)
    (with ssea=False or multi_scale=False the encoder's stages 3-4 still run but are frozen: nothing reads them)

Eval: ``forward(clip)`` returns target logits (B, K, H/8, W/8). Train: a dict with "logits" and
"variate_features" (B, M, C/M, H/8, W/8) for ``loss``. ``forward`` = ``decode(extract(frames))``: the
streaming split (each frame's encoder + SSEA map cached for t-3 and t-6). Hooks of the model contract:
``lr_groups`` (encoder / offset layers / the rest) and ``diagnostics`` (in-frame fraction and offset length
of DSSA's two coordinate maps and SSEA's DCN, logged by engine.train).
"""
from __future__ import annotations

import math

import torch
import torch.nn as nn
import torch.nn.functional as F

from common.families import family_backbones
from models.backbones.mit import DROP_PATH_RATE, build_mit
from models.heads.segformer_head import resize_to
from models.losses import cross_entropy, resize_target
from models.ops.dcnv3 import LN_EPS as DCN_LN_EPS
from models.ops.dcnv3 import DCNv3
from models.ops.linear_attention import LinearAttention
from models.ops.sampling import record_sampling, sampling_diagnostics
from models.ops.selective_cross_attention import SelectiveCrossAttention, base_coordinates, window_grid
from videos.info import IGNORE_INDEX

BACKBONES = family_backbones("sdcpc")   # the MiT rows of common/families.py

# The paper's switches (config/variants.yaml options) and defaults (P = 4, D = 9, M = 4).
SWITCHES = {"points": 4, "deform_points": 9, "variates": 4, "ssea": True, "dssa": True, "mcp_cl": True,
            "stage1": True, "stage2": True, "linear_attention": True, "dcn": True, "multi_scale": True}

# Sizes and weights the paper leaves unstated; each is argued in docs/reproduction-notes.md.
HYPER = {
    "width": 128,          # C of SSEA/DSSA/MCP-CL for every backbone (= C_F2 of MiT-B1..B5)
    "embed_dim": 128,      # E, per-scale linear embedding before the concatenation (4E = 512 into the DCN)
    "dcn_groups": 8,       # G, 16 channels per group as InternImage
    "la_heads": 1,         # the paper's O(N C^2) for LA: one C x C state
    "coord_hidden": 512,   # hidden width of the coordinate-map convolutions (4C)
    "tau": 0.1,            # temperature of Eq. (5)
    "lambda1": 0.1,        # weight of L_CR in Eq. (7)
    "lambda2": 0.1,        # weight of L_MF in Eq. (7)
    "dropout": 0.1,        # Dropout2d before the variate classifiers (SegFormer's head setting)
    "drop_path_rate": DROP_PATH_RATE,
}


# ------------------------------------------------------------------------------------------------ SSEA
class PixelLinear(nn.Module):
    """A linear layer applied to every pixel of a (B, C, H, W) map (SegFormer's "MLP" embedding)."""

    def __init__(self, in_ch: int, out_ch: int):
        super().__init__()
        self.proj = nn.Linear(in_ch, out_ch)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.proj(x.permute(0, 2, 3, 1)).permute(0, 3, 1, 2)


class SSEA(nn.Module):
    """Static semantic efficient aggregation, Eq. (1), on one frame's four stage features:
    x = reduce([DS(E1) (+) E2 (+) US(E3) (+) US(E4)]) (1x1 conv 4E -> C), x = x + DCN(LN(x)) (InternImage's
    residual DCNv3 branch), S = x + LA(LN(x))."""

    def __init__(self, in_channels, width: int, embed_dim: int, deform_points: int, dcn_groups: int,
                 la_heads: int, multi_scale: bool, dcn: bool, linear_attention: bool):
        super().__init__()
        self.multi_scale = multi_scale
        scales = range(4) if multi_scale else [1]
        self.embed = nn.ModuleDict({str(i): PixelLinear(in_channels[i], embed_dim) for i in scales})
        kernel = math.isqrt(deform_points)
        if kernel * kernel != deform_points:
            raise ValueError(f"sdcpc: deform_points D = {deform_points} must be a square (a K x K kernel)")
        self.reduce = nn.Conv2d(embed_dim * len(self.embed), width, 1)
        self.dcn_norm = nn.LayerNorm(width, eps=DCN_LN_EPS) if dcn else None
        self.dcn = DCNv3(width, kernel, dcn_groups) if dcn else None
        self.la_norm = nn.LayerNorm(width) if linear_attention else None
        self.la = LinearAttention(width, la_heads) if linear_attention else None

    def forward(self, feats: list[torch.Tensor]) -> torch.Tensor:
        size = feats[1].shape[-2:]
        parts = []
        for key, embed in self.embed.items():
            i = int(key)
            if i == 0:        # DS: average-pool F1 to the F2 size, then embed (cheaper than the other order)
                parts.append(embed(resize_to(feats[0], size)))
            else:             # embed at the native size, then US (bilinear); F2 is already at its size
                parts.append(resize_to(embed(feats[i]), size))
        x = self.reduce(torch.cat(parts, dim=1))
        if self.dcn is not None:
            x = x + self.dcn(channel_norm(self.dcn_norm, x))
        if self.la is not None:
            x = x + self.la(channel_norm(self.la_norm, x))
        return x


def channel_norm(norm: nn.LayerNorm, x: torch.Tensor) -> torch.Tensor:
    """LayerNorm over the channels of a (B, C, H, W) map."""
    return norm(x.permute(0, 2, 3, 1)).permute(0, 3, 1, 2)


# ------------------------------------------------------------------------------------------------ DSSA
def interleave_rows(query: torch.Tensor, other: torch.Tensor) -> torch.Tensor:
    """(B, C, H, W) x 2 -> (B, C, 2H, W): row 2i is query row i, row 2i+1 is other row i."""
    b, c, h, w = query.shape
    return torch.stack([query, other], dim=3).reshape(b, c, 2 * h, w)


class CoordinateMap(nn.Module):
    """Two convolutions from a comparison of two frames to 2P coordinates per pixel of the query frame.

    mode "interleave" (stage 1): rows interleaved, first conv 3x3 with stride (2, 1) back to H rows;
    mode "difference" (stage 2): query - other, first conv 3x3. Both cost the same. The last conv starts at
    zero, so each pixel first looks at the sqrt(P) x sqrt(P) window around its own position."""

    def __init__(self, width: int, hidden: int, points: int, mode: str):
        super().__init__()
        self.mode, self.points = mode, points
        stride = (2, 1) if mode == "interleave" else 1
        self.conv1 = nn.Conv2d(width, hidden, 3, stride=stride, padding=1, bias=False)
        self.norm = nn.BatchNorm2d(hidden)
        self.act = nn.ReLU(inplace=True)
        self.conv2 = nn.Conv2d(hidden, 2 * points, 3, padding=1)
        nn.init.zeros_(self.conv2.weight)
        nn.init.zeros_(self.conv2.bias)

    def forward(self, query: torch.Tensor, other: torch.Tensor) -> torch.Tensor:
        b, _, h, w = query.shape
        x = interleave_rows(query, other) if self.mode == "interleave" else query - other
        offsets = self.conv2(self.act(self.norm(self.conv1(x))))                 # (B, 2P, H, W)
        offsets = offsets.view(b, self.points, 2, h, w).permute(0, 3, 4, 1, 2)   # (B, H, W, P, 2)
        coords = base_coordinates(h, w, self.points, like=query) + offsets
        if self.training:   # the window reaches (sqrt(P) - 1) / 2 pixels past the map even at zero offset
            record_sampling(self, coords[..., 0], coords[..., 1], offsets.norm(dim=-1), *other.shape[-2:],
                            margin=(math.isqrt(self.points) - 1) / 2)
        return coords


class SelectiveStage(nn.Module):
    """One DSSA stage: the progressive chain over the frames with one comparator and one attention."""

    def __init__(self, width: int, hidden: int, points: int, mode: str):
        super().__init__()
        self.coords = CoordinateMap(width, hidden, points, mode)
        self.attn = SelectiveCrossAttention(width)

    def step(self, query: torch.Tensor, other: torch.Tensor) -> torch.Tensor:
        return query + self.attn(query, other, self.coords(query, other))

    def forward(self, maps: list[torch.Tensor]) -> list[torch.Tensor]:
        out = [maps[0]]
        for x in maps[1:]:
            out.append(self.step(x, out[-1]))
        return out


# ------------------------------------------------------------------------------------------------ MCP-CL
class VariateHead(nn.Module):
    """Projection (1x1 conv + BN + ReLU) to M variates, one prediction per variate, joint decision (a 1x1 conv
    over M x K)."""

    def __init__(self, width: int, num_classes: int, variates: int, dropout: float):
        super().__init__()
        if width % variates:
            raise ValueError(f"sdcpc: width {width} not divisible by variates M = {variates}")
        self.variates, self.num_classes = variates, num_classes
        # the projection is a ConvModule (1x1 conv + BN + ReLU) as every mmseg-line head projects before its
        # classifier (SegFormer's linear_fuse, CFFM's): without the norm the stack project -> variate classifiers
        # -> joint decision is three linear maps in a row whose product grows at the head LR until one batch
        # costs a loss of 8-12 (docs/reproduction-notes.md, "Training spikes")
        self.project = nn.Sequential(nn.Conv2d(width, width, 1, bias=False), nn.BatchNorm2d(width),
                                     nn.ReLU(inplace=True))
        self.dropout = nn.Dropout2d(dropout)
        self.classify = nn.Conv2d(width, variates * num_classes, 1, groups=variates)
        self.joint = nn.Conv2d(variates * num_classes, num_classes, 1)
        with torch.no_grad():   # start the joint decision as the mean of the variate logits
            self.joint.weight.zero_()
            self.joint.bias.zero_()
            eye = torch.eye(num_classes) / variates
            for m in range(variates):
                self.joint.weight[:, m * num_classes:(m + 1) * num_classes, 0, 0] = eye

    def forward(self, x: torch.Tensor):
        feats = self.project(x)
        logits = self.joint(self.classify(self.dropout(feats)))
        b, c, h, w = feats.shape
        return logits, feats.view(b, self.variates, c // self.variates, h, w)


def class_prototypes(features: torch.Tensor, labels: torch.Tensor, num_classes: int):
    """Eq. (4). features (N_G, M, d) of correctly predicted pixels, labels (N_G,) -> prototypes (K, M, d)
    (mean feature per class and variate; zero for absent classes) and counts (K,)."""
    onehot = F.one_hot(labels, num_classes).to(features.dtype)                  # (N_G, K)
    counts = onehot.sum(0)
    sums = torch.einsum("nk,nmd->kmd", onehot, features)
    return sums / counts.clamp(min=1)[:, None, None], counts


def prototype_contrast_loss(features: torch.Tensor, labels: torch.Tensor, prototypes: torch.Tensor,
                            counts: torch.Tensor, tau: float) -> torch.Tensor:
    """Eq. (5): mean over pixels i and variates m of log(1 + sum_neg exp(M_im . p-/tau) / exp(M_im . p+/tau)),
    negatives = prototypes (same variate) of the other classes present. Written as logsumexp - positive."""
    sims = torch.einsum("nmd,kmd->nmk", features, prototypes) / tau             # (N_G, M, K)
    sims = sims.masked_fill((counts == 0).view(1, 1, -1), float("-inf"))
    positive = sims.gather(2, labels.view(-1, 1, 1).expand(-1, sims.shape[1], 1)).squeeze(2)
    return (torch.logsumexp(sims, dim=2) - positive).mean()


def variate_similarity_loss(prototypes: torch.Tensor, labels: torch.Tensor, counts: torch.Tensor) -> torch.Tensor:
    """Eq. (6): for each correct pixel, the mean of the upper triangle (i < j) of P_cls P_cls^T of its class's
    prototype (M x d); averaged over the N_G pixels. Zero for M = 1 (no pairs)."""
    m = prototypes.shape[1]
    if m < 2:
        return prototypes.sum() * 0.0
    sim = torch.einsum("kmd,kld->kml", prototypes, prototypes)
    i, j = torch.triu_indices(m, m, offset=1, device=sim.device)
    per_class = sim[:, i, j].mean(dim=1)                                        # (K,)
    return (per_class * counts).sum() / counts.sum().clamp(min=1)


def mcp_cl_losses(variate_features: torch.Tensor, logits: torch.Tensor, target: torch.Tensor, tau: float,
                  ignore_index: int = IGNORE_INDEX):
    """L_CR and L_MF from the variate features (B, M, d, h, w), the joint logits (B, K, h, w) and the label
    (B, H, W). Features are L2-normalised per variate; only correctly predicted pixels count (G_mask)."""
    b, m, d, h, w = variate_features.shape
    labels = resize_target(target, (h, w)).reshape(-1)
    correct = (logits.detach().argmax(1).reshape(-1) == labels) & (labels != ignore_index)
    feats = F.normalize(variate_features, dim=2).permute(0, 3, 4, 1, 2).reshape(-1, m, d)[correct]
    labels = labels[correct]
    if labels.numel() == 0:   # nothing predicted right yet: no constraint (keep the graph connected)
        zero = variate_features.sum() * 0.0
        return zero, zero
    prototypes, counts = class_prototypes(feats, labels, logits.shape[1])
    return (prototype_contrast_loss(feats, labels, prototypes, counts, tau),
            variate_similarity_loss(prototypes, labels, counts))


# ------------------------------------------------------------------------------------------------ model
class SDCPC(nn.Module):
    def __init__(self, backbone: str, num_classes: int, ref_offsets, *, points, deform_points, variates, ssea,
                 dssa, mcp_cl, stage1, stage2, linear_attention, dcn, multi_scale, width, embed_dim,
                 dcn_groups, la_heads, coord_hidden, tau, lambda1, lambda2, dropout, drop_path_rate):
        super().__init__()
        self.backbone_name, self.num_classes = backbone, num_classes
        self.num_frames = len(tuple(ref_offsets)) + 1
        if dssa and self.num_frames < 2:
            raise ValueError("sdcpc: DSSA needs at least one reference frame (ref_offsets is empty)")
        if dssa and not (stage1 or stage2):
            raise ValueError("sdcpc: dssa=True with both stage1 and stage2 off; use dssa=False")
        window_grid(points)   # P must be a square: the sampled points form sqrt(P) x sqrt(P) windows
        self.mcp_cl, self.tau, self.lambda1, self.lambda2 = mcp_cl, tau, lambda1, lambda2
        self.backbone = build_mit(backbone, drop_path_rate)
        chans = self.backbone.channels
        if not (ssea and multi_scale):
            # only F2 is read: stages 3-4 still run (the paper's GFLOPs for these rows include them) but no
            # loss reaches them, so they are frozen rather than left with a silent missing gradient
            for name in ("patch_embed3", "block3", "norm3", "patch_embed4", "block4", "norm4"):
                getattr(self.backbone, name).requires_grad_(False)
        if ssea:
            self.static = SSEA(chans, width, embed_dim, deform_points, dcn_groups, la_heads, multi_scale, dcn,
                               linear_attention)
        else:
            self.static = PixelLinear(chans[1], width)
        self.stages = nn.ModuleList()
        self.stage_names: list[str] = []   # "dssa1" (interleave comparator), "dssa2" (difference)
        if dssa:
            if stage1:
                self.stages.append(SelectiveStage(width, coord_hidden, points, "interleave"))
                self.stage_names.append("dssa1")
            if stage2:
                self.stages.append(SelectiveStage(width, coord_hidden, points, "difference"))
                self.stage_names.append("dssa2")
            self.temporal_fuse = None
        else:
            self.temporal_fuse = nn.Conv2d(self.num_frames * width, width, 1)
        self.head = VariateHead(width, num_classes, variates, dropout)

    def forward(self, clip: torch.Tensor):
        if clip.dim() != 5 or clip.shape[1] != self.num_frames:
            raise ValueError(f"SD-CPC expects a clip (B, {self.num_frames}, 3, H, W), got {tuple(clip.shape)}")
        b, t = clip.shape[:2]
        feats = self.backbone(clip.flatten(0, 1))                                # every frame, one batch
        feats = [f.view(b, t, *f.shape[1:]) for f in feats]
        # SSEA frame by frame: its deformable sampling is the largest tensor (1/3 of the peak this way)
        maps = [self.static_map([f[:, i] for f in feats]) for i in range(t)]
        return self.decode([torch.stack(maps, dim=1)])

    def static_map(self, feats: list[torch.Tensor]) -> torch.Tensor:
        """S of one frame (B, C, H/8, W/8) from its four encoder stages."""
        return self.static(feats) if isinstance(self.static, SSEA) else self.static(feats[1])

    def extract(self, frames: torch.Tensor) -> list[torch.Tensor]:
        """Per-frame part, frames (N, 3, H, W) -> [S (N, C, H/8, W/8)]: the encoder and SSEA. A streaming caller
        keeps S of every frame and calls ``decode`` with those of t-6, t-3 and t stacked (B, T, C, h, w): each
        step then encodes only the new frame (docs/architecture.md, streaming hooks)."""
        return [self.static_map(self.backbone(frames))]

    def decode(self, feats: list[torch.Tensor]):
        """DSSA (or the temporal fusion) and MCP-CL's head on the stacked per-frame maps, time order, target last."""
        maps = list(feats[0].unbind(1))
        if self.temporal_fuse is not None:
            fused = self.temporal_fuse(torch.cat(maps, dim=1))
        else:
            for stage in self.stages:
                maps = stage(maps)
            fused = maps[-1]
        logits, variate_features = self.head(fused)
        if self.training:
            return {"logits": logits, "variate_features": variate_features}
        return logits

    def lr_groups(self) -> dict[str, list[nn.Module]]:
        """The MiT encoder trains at the base LR; the layers that emit sampling positions (DSSA's last
        coordinate conv, DCNv3's offset linear) at the offset LR; everything else at the head LR
        (engine/schedule.py)."""
        offsets = [stage.coords.conv2 for stage in self.stages]
        if isinstance(self.static, SSEA) and self.static.dcn is not None:
            offsets.append(self.static.dcn.offset)
        return {"backbone": [self.backbone], "offset": offsets}

    def diagnostics(self) -> dict[str, float]:
        """In-frame fraction and offset length (px) of every sampler since the last call (training forwards)."""
        named = {name: stage.coords for name, stage in zip(self.stage_names, self.stages)}
        if isinstance(self.static, SSEA) and self.static.dcn is not None:
            named["ssea_dcn"] = self.static.dcn
        return sampling_diagnostics(named)

    def loss(self, outputs, target: torch.Tensor) -> dict[str, torch.Tensor]:
        logits = outputs["logits"] if isinstance(outputs, dict) else outputs
        ce = cross_entropy(logits, target)                                       # Eq. (3), at the label size
        if not self.mcp_cl:
            return {"total": ce, "ce": ce}
        contrast, similarity = mcp_cl_losses(outputs["variate_features"], logits, target, self.tau)
        total = ce + self.lambda1 * contrast + self.lambda2 * similarity         # Eq. (7)
        return {"total": total, "ce": ce, "contrast": contrast, "variate_similarity": similarity}

    def train_only_modules(self) -> list[nn.Module]:
        return []   # MCP-CL's prototypes and losses have no parameters; every module runs at inference


def build(backbone: str, num_classes: int, ref_offsets=(-6, -3), **options) -> SDCPC:
    if backbone not in BACKBONES:
        raise ValueError(f"sdcpc: unknown backbone '{backbone}' (valid: {', '.join(BACKBONES)})")
    unknown = set(options) - set(SWITCHES) - set(HYPER)
    if unknown:
        raise ValueError(f"sdcpc: unknown option(s) {', '.join(sorted(unknown))} "
                         f"(known: {', '.join(sorted(SWITCHES) + sorted(HYPER))})")
    return SDCPC(backbone, num_classes, ref_offsets, **{**SWITCHES, **HYPER, **options})
