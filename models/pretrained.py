"""ImageNet weights for every backbone, from a local file (never downloaded), loaded strictly.

    from models.pretrained import load_pretrained
    report = load_pretrained(model, "mit_b1.pth", "mit_b1")           # raises InputError if it does not fit
    report = load_pretrained(model, path, backbone, partial=True)     # load what fits, report the rest

The part of a model that ImageNet weights initialise is its "backbone" learning-rate group
(``model.lr_groups()["backbone"]``, docs/architecture.md): the MiT encoder, the dilated ResNet (for PSPNet
without the pyramid pooling module, which is new), HRNet. The file's layout is recognised from its keys and
mapped onto our names (docs/weights.md lists the files researchers have):

MiT (SegFormer, SD-CPC)
- ``official``: NVlabs SegFormer ``mit_b*.pth`` (``patch_embed1.proj``, ``block1.0.attn.q``/``kv``,
  ``norm1``, classifier ``head.*``): our names. CFFM and mmseg 0.x SegFormer checkpoints use them too.
- ``mmseg``: mmseg >= 0.13 (``layers.0.0.projection``, ``layers.0.1.0.attn.attn.in_proj_weight`` = [q; kv],
  ``ffn.layers.0/1/4`` as 1x1 / depth-wise / 1x1 convs, ``layers.0.2`` = stage norm), the inverse of mmseg's
  ``tools/model_converters/mit2mmseg.py``.
- ``huggingface``: ``nvidia/mit-b*`` (``segformer.encoder.patch_embeddings.0.proj``/``layer_norm``,
  ``block.0.0.attention.self.query``/``key``/``value``/``sr``/``layer_norm``, ``attention.output.dense``,
  ``layer_norm_1/2``, ``mlp.dense1``/``dwconv.dwconv``/``dense2``, ``encoder.layer_norm.0``); key and value
  are concatenated into our ``kv``.
ResNet (MSAF's ResNet and PSPNet backbones)
- ``mmcv``: ResNetV1c (``stem.0`` ... ``stem.7``, ``layerN.i.conv1``): our names (deep stem, ``stem: v1c``).
- ``timm``: deep-stem ResNets (``conv1.0/1/3/4/6`` + ``bn1``), mapped onto ``stem.*`` (``stem: v1c``).
- ``torchvision``: ``conv1`` 7x7 + ``bn1`` (``resnet18-f37072fd.pth`` ...): our names with ``stem: v1b``;
  into a deep-stem backbone it is refused with that hint rather than leaving a random stem under trained
  stages.
HRNet
- ``official``: HRNet-Image-Classification / mmseg ``hrnetv2_w*`` files (``conv1``, ``layer1``,
  ``transitionN``, ``stageN.m.branches``/``fuse_layers``): our names; its classification heads
  (``incre_modules``, ``downsamp_modules``, ``final_layer``, ``classifier``) are ignored.

Everywhere: wrappers ``{"state_dict": ...}`` / ``{"model": ...}`` (mmcv's ``meta`` beside them) and
prefixes ``module.`` / ``backbone.`` are removed; classifiers and segmentation heads (``head``, ``fc``,
``classifier``, ``decode_head``, ``auxiliary_head``) are ignored and listed so.

Strict: every tensor of the backbone must come from the file with its shape, and every non-ignored tensor of
the file must have a place (BatchNorm's ``num_batches_tracked`` counters excepted, which old files lack).
Otherwise one line names the file, the layout and the first missing / unexpected / mis-shaped keys. With
``partial=True`` what fits is loaded and the report lists the rest. Torch files are read with
``torch.load(weights_only=True)`` (common.weights), ``.safetensors`` files as the data they are: nothing in
either is executed.
"""
from __future__ import annotations

import re
from pathlib import Path

import torch
from torch import nn

from common.cli import InputError

IGNORED_PREFIXES = ("head.", "fc.", "classifier.", "incre_modules.", "downsamp_modules.", "final_layer.",
                    "decode_head.", "auxiliary_head.")
WRAPPER_PREFIXES = ("module.", "backbone.")
TIMM_DEEP_STEM = {"conv1.0.": "stem.0.", "conv1.1.": "stem.1.", "conv1.3.": "stem.3.", "conv1.4.": "stem.4.",
                  "conv1.6.": "stem.6.", "bn1.": "stem.7."}
HF_PREFIXES = ("segformer.encoder.", "encoder.")
SHOWN = 3   # keys quoted per problem in the one-line error


# ------------------------------------------------------------------------------------------------ reading
SAFETENSORS_DTYPES = {"F64": torch.float64, "F32": torch.float32, "F16": torch.float16, "BF16": torch.bfloat16,
                      "I64": torch.int64, "I32": torch.int32, "I16": torch.int16, "I8": torch.int8,
                      "U8": torch.uint8, "BOOL": torch.bool}


def read_safetensors(path: Path) -> dict[str, torch.Tensor]:
    """A ``.safetensors`` file (Hugging Face's format: an 8-byte little-endian header length, a JSON header
    {name: {dtype, shape, data_offsets}}, then the raw little-endian data); pure data, nothing executed.
    torch.load reads this format only with the safetensors package installed, which the suite does not need."""
    import json

    raw = path.read_bytes()
    size = int.from_bytes(raw[:8], "little")
    header = json.loads(raw[8:8 + size])
    body = memoryview(raw)[8 + size:]
    out = {}
    for name, info in header.items():
        if name == "__metadata__":
            continue
        begin, end = info["data_offsets"]
        dtype = SAFETENSORS_DTYPES[info["dtype"]]
        data = torch.frombuffer(bytearray(body[begin:end]), dtype=dtype) if end > begin else torch.empty(0, dtype=dtype)
        out[name] = data.reshape(info["shape"])
    return out


def read_state(path: str | Path) -> dict[str, torch.Tensor]:
    """The tensors of a checkpoint file (a torch file, read by common.weights.load_weights_only, or a
    .safetensors file), wrappers removed. InputError (one line) for anything unreadable."""
    from common.weights import load_weights_only

    path = Path(path)
    if path.suffix == ".safetensors" and path.is_file():
        try:
            obj = read_safetensors(path)
        except (ValueError, KeyError, RuntimeError, TypeError) as e:   # torn header, unknown dtype, short data
            raise InputError(f"{path}: cannot read pretrained weights ({type(e).__name__}: {e})") from None
    else:
        obj = load_weights_only(path, "pretrained weights")
    for key in ("state_dict", "model"):
        if isinstance(obj, dict) and isinstance(obj.get(key), dict):
            obj = obj[key]
    if not isinstance(obj, dict):
        raise InputError(f"{path}: not a state dict (a {type(obj).__name__})")
    state = {}
    for key, value in obj.items():
        if not isinstance(value, torch.Tensor):
            continue
        changed = True
        while changed:   # stacked wrappers such as module.backbone.
            changed = False
            for prefix in WRAPPER_PREFIXES:
                if key.startswith(prefix):
                    key, changed = key[len(prefix):], True
        state[key] = value
    if not state:
        raise InputError(f"{path}: holds no tensors")
    return state


# ------------------------------------------------------------------------------------------------ layouts
def _split_ignored(state: dict[str, torch.Tensor], prefixes=IGNORED_PREFIXES):
    kept = {k: v for k, v in state.items() if not k.startswith(prefixes)}
    return kept, sorted(k for k in state if k.startswith(prefixes))


_MMSEG_MIT = [  # (pattern, replacement) on mmseg's MiT names
    (r"^layers\.(\d+)\.0\.projection\.(.+)$", "patch_embed{0}.proj.{1}"),
    (r"^layers\.(\d+)\.0\.norm\.(.+)$", "patch_embed{0}.norm.{1}"),
    (r"^layers\.(\d+)\.1\.(\d+)\.(norm1|norm2)\.(.+)$", "block{0}.{1}.{2}.{3}"),
    (r"^layers\.(\d+)\.1\.(\d+)\.attn\.attn\.out_proj\.(.+)$", "block{0}.{1}.attn.proj.{2}"),
    (r"^layers\.(\d+)\.1\.(\d+)\.attn\.(sr|norm)\.(.+)$", "block{0}.{1}.attn.{2}.{3}"),
    (r"^layers\.(\d+)\.1\.(\d+)\.ffn\.layers\.0\.(.+)$", "block{0}.{1}.mlp.fc1.{2}"),
    (r"^layers\.(\d+)\.1\.(\d+)\.ffn\.layers\.1\.(.+)$", "block{0}.{1}.mlp.dwconv.dwconv.{2}"),
    (r"^layers\.(\d+)\.1\.(\d+)\.ffn\.layers\.4\.(.+)$", "block{0}.{1}.mlp.fc2.{2}"),
    (r"^layers\.(\d+)\.2\.(.+)$", "norm{0}.{1}"),
]
_HF_MIT = [  # on Hugging Face's names with the encoder prefix removed
    (r"^patch_embeddings\.(\d+)\.proj\.(.+)$", "patch_embed{0}.proj.{1}"),
    (r"^patch_embeddings\.(\d+)\.layer_norm\.(.+)$", "patch_embed{0}.norm.{1}"),
    (r"^block\.(\d+)\.(\d+)\.layer_norm_1\.(.+)$", "block{0}.{1}.norm1.{2}"),
    (r"^block\.(\d+)\.(\d+)\.layer_norm_2\.(.+)$", "block{0}.{1}.norm2.{2}"),
    (r"^block\.(\d+)\.(\d+)\.attention\.self\.query\.(.+)$", "block{0}.{1}.attn.q.{2}"),
    (r"^block\.(\d+)\.(\d+)\.attention\.self\.sr\.(.+)$", "block{0}.{1}.attn.sr.{2}"),
    (r"^block\.(\d+)\.(\d+)\.attention\.self\.layer_norm\.(.+)$", "block{0}.{1}.attn.norm.{2}"),
    (r"^block\.(\d+)\.(\d+)\.attention\.output\.dense\.(.+)$", "block{0}.{1}.attn.proj.{2}"),
    (r"^block\.(\d+)\.(\d+)\.mlp\.dense1\.(.+)$", "block{0}.{1}.mlp.fc1.{2}"),
    (r"^block\.(\d+)\.(\d+)\.mlp\.dwconv\.dwconv\.(.+)$", "block{0}.{1}.mlp.dwconv.dwconv.{2}"),
    (r"^block\.(\d+)\.(\d+)\.mlp\.dense2\.(.+)$", "block{0}.{1}.mlp.fc2.{2}"),
    (r"^layer_norm\.(\d+)\.(.+)$", "norm{0}.{1}"),
]


def _rename(key: str, rules) -> str | None:
    """Apply the first matching rule; stage indices (the first group) go from 0-based to our 1-based."""
    for pattern, template in rules:
        m = re.match(pattern, key)
        if m:
            groups = list(m.groups())
            groups[0] = str(int(groups[0]) + 1)
            return template.format(*groups)
    return None


def _map_rules(state, rules, unmatched: list[str]) -> dict[str, torch.Tensor]:
    out = {}
    for key, value in state.items():
        new = _rename(key, rules)
        if new is None:
            unmatched.append(key)
            out[key] = value          # kept under its own name: reported as unexpected
        else:
            out[new] = value
    return out


def _mit_from_mmseg(state):
    out, unmatched = {}, []
    qkv = {k: v for k, v in state.items() if ".attn.attn.in_proj_" in k}
    rest = {k: v for k, v in state.items() if k not in qkv}
    out.update(_map_rules(rest, _MMSEG_MIT, unmatched))
    for key, value in qkv.items():   # in_proj = [q; kv] along dim 0
        m = re.match(r"^layers\.(\d+)\.1\.(\d+)\.attn\.attn\.in_proj_(weight|bias)$", key)
        stage, block, kind = int(m.group(1)) + 1, m.group(2), m.group(3)
        c = value.shape[0] // 3
        out[f"block{stage}.{block}.attn.q.{kind}"] = value[:c]
        out[f"block{stage}.{block}.attn.kv.{kind}"] = value[c:]
    for key in list(out):            # mmseg writes the MLP's linears as 1x1 convs
        if re.search(r"\.mlp\.fc[12]\.weight$", key) and out[key].dim() == 4:
            out[key] = out[key].flatten(1)
    return out


def _mit_from_hf(state):
    prefix = next((p for p in HF_PREFIXES if any(k.startswith(p) for k in state)), "")
    stripped = {k[len(prefix):] if k.startswith(prefix) else k: v for k, v in state.items()}
    kv = {k: v for k, v in stripped.items() if re.search(r"\.attention\.self\.(key|value)\.", k)}
    out = _map_rules({k: v for k, v in stripped.items() if k not in kv}, _HF_MIT, [])
    for key in sorted(k for k in kv if ".attention.self.key." in k):
        m = re.match(r"^block\.(\d+)\.(\d+)\.attention\.self\.key\.(weight|bias)$", key)
        value_key = key.replace(".key.", ".value.")
        if m is None or value_key not in kv:
            out[key] = kv[key]
            continue
        stage, block, kind = int(m.group(1)) + 1, m.group(2), m.group(3)
        out[f"block{stage}.{block}.attn.kv.{kind}"] = torch.cat([kv[key], kv.pop(value_key)], dim=0)
    out.update({k: v for k, v in kv.items() if ".attention.self.value." in k})   # unpaired values
    return out


def mit_layout(state) -> str:
    if any(k.startswith("patch_embed1.") or k.startswith("block1.") for k in state):
        return "official"
    if any(k.startswith("layers.0.") for k in state):
        return "mmseg"
    if any(k.startswith(p + "patch_embeddings.") or k.startswith("patch_embeddings.")
           for k in state for p in HF_PREFIXES):
        return "huggingface"
    return "unrecognised"


def resnet_layout(state) -> str:
    if any(k.startswith("stem.") for k in state):
        return "mmcv"
    if any(k.startswith("conv1.0.") for k in state):
        return "timm"
    if "conv1.weight" in state:
        return "torchvision"
    return "unrecognised"


def to_native(state: dict[str, torch.Tensor], target: nn.Module) -> tuple[dict, list[str], str]:
    """(state under our names, ignored keys, layout name) for the backbone module ``target``."""
    from models.backbones.hrnet import HRNet
    from models.backbones.mit import MixVisionTransformer
    from models.backbones.resnet import DilatedResNet

    if isinstance(target, MixVisionTransformer):
        kept, ignored = _split_ignored(state)
        layout = mit_layout(kept)
        mapped = {"huggingface": _mit_from_hf, "mmseg": _mit_from_mmseg}.get(layout, dict)(kept)
        return mapped, ignored, layout
    if isinstance(target, DilatedResNet):
        kept, ignored = _split_ignored(state)
        layout = resnet_layout(kept)
        if layout == "timm":
            mapped = {}
            for k, v in kept.items():
                for src, dst in TIMM_DEEP_STEM.items():
                    if k.startswith(src):
                        k = dst + k[len(src):]
                        break
                mapped[k] = v
            kept = mapped
        return kept, ignored, layout
    kept, ignored = _split_ignored(state)
    # HRNet: the official ImageNet files use our names; any other module: its own names ("native")
    return kept, ignored, "official" if isinstance(target, HRNet) else "native"


# ------------------------------------------------------------------------------------------------ loading
def pretrained_target(model: nn.Module) -> nn.Module:
    """The module ImageNet weights initialise: the model's single "backbone" LR group (its ``lr_groups``
    hook, else its ``backbone`` attribute, as engine/schedule.py reads them)."""
    hook = getattr(model, "lr_groups", None)
    if callable(hook):
        modules = hook().get("backbone", [])
    else:
        modules = [model.backbone] if isinstance(getattr(model, "backbone", None), nn.Module) else []
    if len(modules) != 1 or not isinstance(modules[0], nn.Module):
        raise InputError(f"pretrained: {type(model).__name__} declares no single backbone module "
                         "(lr_groups()['backbone']) to load ImageNet weights into")
    return modules[0]


def compare(mapped: dict[str, torch.Tensor], own: dict[str, torch.Tensor]):
    """(loadable, missing, unexpected, mismatched) of a mapped state against a module's state dict."""
    def counter(k):
        return k.endswith("num_batches_tracked")

    loadable, mismatched = {}, []
    for k, v in mapped.items():
        if k in own and tuple(own[k].shape) != tuple(v.shape):
            mismatched.append((k, list(v.shape), list(own[k].shape)))
        elif k in own:
            loadable[k] = v
    missing = sorted(k for k in own if k not in mapped and not counter(k))
    unexpected = sorted(k for k in mapped if k not in own and not counter(k))
    return loadable, missing, unexpected, mismatched


def _problems(layout, target, missing, unexpected, mismatched, n_own) -> str:
    parts = []
    if missing:
        parts.append(f"{len(missing)} of the backbone's {n_own} tensors missing (first: {', '.join(missing[:SHOWN])})")
    if unexpected:
        parts.append(f"{len(unexpected)} tensors with no place in it (first: {', '.join(unexpected[:SHOWN])})")
    if mismatched:
        k, file_shape, own_shape = mismatched[0]
        parts.append(f"{len(mismatched)} of another shape (first: {k} {file_shape} in the file, {own_shape} here)")
    hint = ""
    if layout == "torchvision" and getattr(target, "stem_type", None) == "v1c":
        hint = "; torchvision's ResNets have a 7x7 stem: build the backbone with the option `stem: v1b`"
    elif layout == "unrecognised":
        hint = "; docs/weights.md lists the layouts this suite reads"
    return "; ".join(parts) + hint


def load_state(target: nn.Module, state: dict[str, torch.Tensor], *, source: str = "<state dict>",
               backbone: str = "", partial: bool = False) -> dict:
    """Map ``state`` onto ``target`` and load it (strict unless ``partial``); returns the report."""
    mapped, ignored, layout = to_native(state, target)
    own = target.state_dict()
    loadable, missing, unexpected, mismatched = compare(mapped, own)
    n_own = sum(1 for k in own if not k.endswith("num_batches_tracked"))
    if (missing or unexpected or mismatched) and not partial:
        raise InputError(f"{source}: does not fit {backbone or type(target).__name__} ({layout} layout): "
                         + _problems(layout, target, missing, unexpected, mismatched, n_own)
                         + " (pretrained_partial: true loads what fits)")
    if not loadable:
        raise InputError(f"{source}: no tensor fits {backbone or type(target).__name__} ({layout} layout): "
                         + _problems(layout, target, missing, unexpected, mismatched, n_own))
    target.load_state_dict(loadable, strict=False)
    loaded = sum(1 for k in loadable if not k.endswith("num_batches_tracked"))
    return {"init": "pretrained", "checkpoint": source, "layout": layout, "loaded": loaded,
            "expected": n_own, "missing": missing, "unexpected": unexpected, "mismatched": mismatched,
            "ignored": ignored, "partial": partial}


def resolve_pretrained(spec, backbone: str) -> str | None:
    """The weights file for ``backbone`` from a config value: None / "none" (random init, said explicitly),
    a path, or a mapping {backbone: path} (one file per backbone, as each MiT size has its own)."""
    if isinstance(spec, dict):
        if backbone not in spec:
            raise InputError(f"pretrained: no weights file for backbone {backbone} "
                             f"(the mapping names {', '.join(sorted(spec)) or 'none'})")
        spec = spec[backbone]
    if spec is None or str(spec).lower() == "none":
        return None
    return str(spec)


def load_pretrained(model: nn.Module, spec, backbone: str, *, partial: bool = False) -> dict:
    """Load ImageNet weights into ``model``'s backbone from ``spec`` (resolve_pretrained). The report is kept
    as ``model.init_report`` (random init is recorded as such) and returned."""
    path = resolve_pretrained(spec, backbone)
    if path is None:
        model.init_report = {"init": "random", "checkpoint": None}
        return model.init_report
    target = pretrained_target(model)
    model.init_report = load_state(target, read_state(path), source=path, backbone=backbone, partial=partial)
    return model.init_report


def describe(report: dict) -> str:
    """One line for logs and results: where the backbone's weights came from."""
    if report.get("init") != "pretrained":
        return "backbone: random init (no pretrained weights given)"
    line = (f"backbone: {report['checkpoint']} ({report['layout']} layout, {report['loaded']} of "
            f"{report['expected']} tensors loaded")
    if report.get("partial"):
        line += (f", partial: {len(report['missing'])} missing, {len(report['unexpected'])} unexpected, "
                 f"{len(report['mismatched'])} shape-mismatched")
    return line + ")"
