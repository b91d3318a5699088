"""Model complexity: inference parameters, fvcore GFLOPs, and the GFLOPs convention the papers printed.

    python -m metrics.complexity --variant V --backbone B --dataset D [--height H --width W] --out OUT.json
        [--num-classes K] [--device auto|cpu|cuda] [--set OPTION=VALUE ...]

Writes (one JSON, atomically, with provenance):
  params                   parameters used at inference (training-only modules excluded)
  params_train_only        parameters of the modules the model lists as training-only (see below)
  gflops                   fvcore FlopCountAnalysis, 1e9 multiply-adds, batch 1, one test clip of
                           variant.num_frames frames (every frame the model reads), eval mode, no_grad,
                           with the handles in FVCORE_HANDLES added (SDPA, ...)
  gflops_by_operator       the same, split by fvcore operator
  gflops_paper_convention  the CFFM/SegFormer-line convention: mmcv-style module hooks (PAPER_HOOKS: conv,
                           linear, norms, activations, pools, nn.Upsample; functional ops and matmuls unseen)
                           over the whole clip, plus the analytic attention term of ONE frame (see below)
  unsupported_ops          fvcore's remaining unsupported operators with their call counts
  unsupported_ops_not_elementwise  the subset that is not an elementwise op (ELEMENTWISE_OPS): must be empty;
                           anything here is a silent zero that needs a handle
  trace_dtype              the dtype the fvcore trace ran in (see below); the counts do not depend on it
  resolution [H, W], frames, variant, label, family, backbone, dataset, num_classes, provenance

The fvcore trace runs the model for real, so at the papers' sizes it is the expensive part (PSPNet-101 at
1024x2048 is about 2 TFLOPs). Every count is a function of shapes only, so the trace runs in bfloat16, which
oneDNN computes about twice as fast as float32 on a CPU with AVX512-BF16 (and on any GPU); a model that
cannot run in bfloat16 is traced in float32 instead. tests/test_complexity.py checks, for every registry
entry, that both dtypes give the same totals, operators and unsupported-op counts.

Conventions other model code relies on
--------------------------------------
* Training-only parts: a model may define ``train_only_modules() -> list[nn.Module]``, the submodules that
  only the loss uses (MCP-CL projection, auxiliary heads). Their parameters go to ``params_train_only``; they
  must not run in eval mode, so they cost nothing in either GFLOPs count.
* Paper-convention attention term: a model may define ``paper_attention_flops(height, width) -> int``
  (multiply-adds the module hooks cannot see, counted the papers' way). If it does not, the term is the sum
  of ``analytic_attention_flops(height, width)`` over its distinct submodules that define it (the MiT
  encoder does: SegFormer's 2 * (hw) * (hw / r^2) * dim per block). A clip model runs one encoder over every
  frame, so this counts the attention of ONE frame, which is how CFFM-B1 comes to 103.1 GFLOPs.
* Model-specific fvcore handles: a model may define ``fvcore_handles() -> dict[str, handle]`` (fvcore's
  ``(inputs, outputs) -> flops`` signature); they are merged over FVCORE_HANDLES for that model only.
* New operators: add an fvcore handle to FVCORE_HANDLES (``register_fvcore_handle``) and, when a module
  class needs its own paper-convention count, an entry to PAPER_HOOKS (``register_paper_hook``; looked up
  along the class's MRO, so a subclass entry wins over nn.Conv2d's).
"""
from __future__ import annotations

import argparse
import sys
from collections import Counter
from math import prod
from typing import Any, Callable

import torch
import torch.nn as nn
import yaml

from common.cli import InputError, run_cli
from common.device import pick_device
from common.io import write_json
from common.provenance import provenance
from models.registry import RegistryError, build_model, get_variant
from models.outputs import supports_streaming
from videos.info import DATASET_NAMES, dataset_info

# (dataset, family) -> (H, W) when it differs from videos.info's test size. Cityscapes: SD-CPC's own
# figures fit 512x1024; MSAF's inputs are the full 1024x2048 frames (docs/reproduction-notes.md).
DEFAULT_RESOLUTION: dict[tuple[str, str], tuple[int, int]] = {
    ("cityscapes", "segformer"): (512, 1024),
    ("cityscapes", "sdcpc"): (512, 1024),
}


def default_resolution(dataset: str, family: str) -> tuple[int, int]:
    return DEFAULT_RESOLUTION.get((dataset, family), dataset_info(dataset).test_size)


# ---------------------------------------------------------------- fvcore handles (one table; extend here)
def _shape(value) -> list[int] | None:
    from fvcore.nn.jit_handles import get_shape
    return get_shape(value)


def sdpa_flops(inputs: list[Any], outputs: list[Any]) -> int:
    """aten::scaled_dot_product_attention(q (..., Lq, E), k (..., Lk, E), v (..., Lk, Ev)):
    QK^T is Lq*Lk*E and AV is Lq*Lk*Ev multiply-adds per batch-head (softmax, like every elementwise op, 0)."""
    q, k, v = (_shape(x) for x in inputs[:3])
    return prod(q[:-2]) * q[-2] * k[-2] * (q[-1] + v[-1])


def per_output_element(n: float) -> Callable:
    def handle(inputs, outputs):
        return int(n * prod(_shape(outputs[0])))
    return handle


def pool_flops(inputs, outputs) -> int:
    """avg/max pooling: one op per window element per output (aten::*_pool2d(input, kernel_size, ...))."""
    kernel = inputs[1].toIValue()
    if kernel is None:     # traced as prim::ListConstruct of constants: read the list's elements
        kernel = [v.toIValue() for v in inputs[1].node().inputs()]
    return prod(_shape(outputs[0])) * prod(kernel if isinstance(kernel, (list, tuple)) else [kernel])


def zero_flops(inputs, outputs) -> int:
    return 0


FVCORE_HANDLES: dict[str, Callable] = {
    "aten::scaled_dot_product_attention": sdpa_flops,
    "aten::_upsample_bilinear2d_aa": per_output_element(4),    # F.interpolate(antialias=True)
    "aten::upsample_bicubic2d": per_output_element(16),
    "aten::avg_pool2d": pool_flops,
    "aten::max_pool2d": pool_flops,
    "aten::feature_dropout": zero_flops,                       # nn.Dropout2d: identity in eval
    "aten::dropout": zero_flops,
}

# Elementwise / reduction ops fvcore leaves uncounted by design (the papers' convention counts
# multiply-adds of convs, linears, matmuls, norms, resampling). Anything else unsupported is a silent zero.
ELEMENTWISE_OPS = frozenset(f"aten::{op}" for op in (
    "add add_ sub sub_ rsub mul mul_ div div_ neg abs pow sqrt rsqrt exp log reciprocal "
    "gelu relu relu_ elu elu_ silu sigmoid tanh softmax log_softmax softplus hardtanh leaky_relu "
    "sum mean amax amin max min argmax where clamp_min clamp_max sin cos square "
    "linalg_vector_norm norm fill_ lt le ne logical_and logical_or sign round repeat "
    "repeat_interleave meshgrid new_ones ones_like rand_like randn_like bernoulli_ empty_like "
    "masked_fill_ scatter scatter_add index_select expand_as view_as flip unflatten pad "
    "feature_alpha_dropout alpha_dropout").split())


def register_fvcore_handle(op: str, handle: Callable) -> None:
    FVCORE_HANDLES[op] = handle


# ---------------------------------------------------------------- paper convention: mmcv-style module hooks
def _conv_hook(m: nn.Conv2d, inputs, output) -> int:
    per_position = prod(m.kernel_size) * m.in_channels * m.out_channels // m.groups
    positions = output.shape[0] * prod(output.shape[2:])
    return per_position * positions + (m.out_channels * positions if m.bias is not None else 0)


def _deconv_hook(m: nn.ConvTranspose2d, inputs, output) -> int:
    per_position = prod(m.kernel_size) * m.in_channels * m.out_channels // m.groups
    x = inputs[0]
    return per_position * x.shape[0] * prod(x.shape[2:]) + (
        m.out_channels * output.shape[0] * prod(output.shape[2:]) if m.bias is not None else 0)


def _linear_hook(m: nn.Linear, inputs, output) -> int:
    return inputs[0].numel() * output.shape[-1]   # mmcv: no bias term


def _norm_hook(m: nn.Module, inputs, output) -> int:
    affine = getattr(m, "affine", False) or getattr(m, "elementwise_affine", False)
    return inputs[0].numel() * (2 if affine else 1)


def _input_numel(m, inputs, output) -> int:
    return inputs[0].numel()


def _output_numel(m, inputs, output) -> int:
    return output.numel()


PAPER_HOOKS: dict[type, Callable] = {
    nn.Conv1d: _conv_hook, nn.Conv2d: _conv_hook, nn.Conv3d: _conv_hook,
    nn.ConvTranspose2d: _deconv_hook,
    nn.Linear: _linear_hook,
    nn.BatchNorm1d: _norm_hook, nn.BatchNorm2d: _norm_hook, nn.BatchNorm3d: _norm_hook,
    nn.SyncBatchNorm: _norm_hook, nn.GroupNorm: _norm_hook, nn.LayerNorm: _norm_hook,
    nn.InstanceNorm1d: _norm_hook, nn.InstanceNorm2d: _norm_hook, nn.InstanceNorm3d: _norm_hook,
    nn.ReLU: _output_numel, nn.PReLU: _output_numel, nn.ELU: _output_numel, nn.LeakyReLU: _output_numel,
    nn.ReLU6: _output_numel,
    nn.MaxPool1d: _input_numel, nn.MaxPool2d: _input_numel, nn.AvgPool1d: _input_numel,
    nn.AvgPool2d: _input_numel, nn.AdaptiveAvgPool2d: _input_numel, nn.AdaptiveMaxPool2d: _input_numel,
    nn.Upsample: _output_numel,
}


def register_paper_hook(module_type: type, hook: Callable) -> None:
    PAPER_HOOKS[module_type] = hook


def _paper_hook_for(module: nn.Module) -> Callable | None:
    for cls in type(module).__mro__:
        if cls in PAPER_HOOKS:
            return PAPER_HOOKS[cls]
    return None


@torch.no_grad()
def module_hook_flops(model: nn.Module, clip: torch.Tensor) -> int:
    """Multiply-adds seen by mmcv-style hooks in one eval forward of ``clip`` (every frame it reads)."""
    total = [0]
    handles = []
    for m in model.modules():
        hook = _paper_hook_for(m)
        if hook is not None:
            handles.append(m.register_forward_hook(
                lambda mod, inp, out, hook=hook: total.__setitem__(0, total[0] + int(hook(mod, inp, out)))))
    try:
        model(clip)
    finally:
        for h in handles:
            h.remove()
    return total[0]


def _hook_flops_cheaply(variant, backbone: str, num_classes: int, clip: torch.Tensor, fallback: nn.Module,
                        overrides: dict[str, Any]) -> int:
    """Module hooks need shapes only: run them on a twin built on the meta device (no memory, no compute);
    a model whose forward cannot run on meta (it makes CPU tensors, reads values) runs for real instead."""
    try:
        with torch.device("meta"):
            twin = build_model(variant, backbone, num_classes, **overrides).eval()
        return module_hook_flops(twin, torch.empty(clip.shape, device="meta"))
    except Exception:       # noqa: BLE001 - any failure on meta only means "count on the real model"
        return module_hook_flops(fallback, clip)


def paper_attention_flops(model: nn.Module, height: int, width: int) -> float:
    """The analytic attention term of ONE frame (see the module docstring)."""
    if hasattr(model, "paper_attention_flops"):
        return float(model.paper_attention_flops(height, width))
    seen, total = set(), 0.0
    for m in model.modules():
        if hasattr(m, "analytic_attention_flops") and id(m) not in seen:
            seen.add(id(m))
            total += float(m.analytic_attention_flops(height, width))
    return total


# ---------------------------------------------------------------- parameters and fvcore
def parameter_counts(model: nn.Module) -> tuple[int, int]:
    """(inference parameters, training-only parameters); shared parameters are counted once."""
    all_params = {id(p): p.numel() for p in model.parameters()}
    train_only = {}
    if hasattr(model, "train_only_modules"):
        for m in model.train_only_modules():
            train_only.update({id(p): p.numel() for p in m.parameters()})
    return sum(all_params.values()) - sum(train_only.values()), sum(train_only.values())


class _Method(nn.Module):
    """One method of a model as a module, so fvcore traces just that part (submodule names kept)."""

    def __init__(self, model: nn.Module, method: str):
        super().__init__()
        self.model, self.method = model, method

    def forward(self, *args):
        out = getattr(self.model, self.method)(*args) if self.method == "extract" else \
            getattr(self.model, self.method)(list(args))
        return tuple(out) if isinstance(out, list) else out


def _fvcore_trace(module: nn.Module, inputs: tuple, handles: dict) -> tuple[int, dict[str, int], Counter]:
    from fvcore.nn import FlopCountAnalysis

    analysis = FlopCountAnalysis(module, inputs).set_op_handle(**handles)
    analysis.unsupported_ops_warnings(False)
    analysis.uncalled_modules_warnings(False)
    analysis.tracer_warnings("none")
    return (int(analysis.total()), {k: int(v) for k, v in analysis.by_operator().items()},
            Counter(analysis.unsupported_ops()))


@torch.no_grad()
def fvcore_flops(model: nn.Module, clip: torch.Tensor) -> tuple[int, dict[str, int], dict[str, int]]:
    """(total multiply-adds, by operator, unsupported op -> call count) from fvcore with our handles.

    A model whose forward is ``decode(extract(frames))`` (the streaming hooks, e.g. MSAF) is counted as
    T x extract(one frame) + decode(T frames' features): the same operators on the same shapes as the
    whole-clip trace (every backbone op is linear in the batch), so the same total, while the backbone runs
    once instead of T times. That halves the cost of the 1024x2048 counts of the big dilated CNNs. Call
    counts of unsupported ops are those of one trace of each part, as in the whole-clip trace."""
    handles = {**FVCORE_HANDLES, **(model.fvcore_handles() if hasattr(model, "fvcore_handles") else {})}
    t = clip.shape[1]
    if not supports_streaming(model) or t == 1:
        total, by_op, unsupported = _fvcore_trace(model, (clip,), handles)
        return total, by_op, dict(unsupported)
    frame, captured = clip[:, -1], []
    extract = _Method(model, "extract")
    hook = extract.register_forward_hook(lambda mod, inp, out: captured.append(out))  # keep the features
    try:                                                                           # the trace computed
        ext_total, ext_ops, ext_unsupported = _fvcore_trace(extract, (frame,), handles)
    finally:
        hook.remove()
    stacked = tuple(f.unsqueeze(1).expand(-1, t, *f.shape[1:]).contiguous() for f in captured[-1])
    dec_total, dec_ops, dec_unsupported = _fvcore_trace(_Method(model, "decode"), stacked, handles)
    by_op = {op: t * ext_ops.get(op, 0) + dec_ops.get(op, 0) for op in sorted(set(ext_ops) | set(dec_ops))}
    return t * ext_total + dec_total, by_op, dict(ext_unsupported + dec_unsupported)


def fvcore_flops_any_dtype(model: nn.Module, clip: torch.Tensor) -> tuple[int, dict, dict, str]:
    """``fvcore_flops`` in bfloat16 (cheaper, same counts), else in float32. Leaves ``model`` in float32."""
    try:
        return (*fvcore_flops(model.to(torch.bfloat16), clip.to(torch.bfloat16)), "bfloat16")
    except (RuntimeError, TypeError, NotImplementedError):   # an op without a bfloat16 kernel here
        return (*fvcore_flops(model.float(), clip), "float32")
    finally:
        model.float()


def measure(variant: str, backbone: str, dataset: str, height: int | None = None, width: int | None = None,
            num_classes: int | None = None, device: str = "auto", seed: int = 0,
            overrides: dict[str, Any] | None = None) -> dict[str, Any]:
    """Everything ``main`` writes, as a dict (importable for reports and tests)."""
    v = get_variant(variant)
    info = dataset_info(dataset)
    if (height is None) != (width is None):
        raise InputError("--height and --width go together: give both or neither")
    h, w = (height, width) if height is not None else default_resolution(dataset, v.family)
    if h < 32 or w < 32:
        raise InputError(f"--height/--width must be at least 32 (the deepest stride), got {h}x{w}")
    k = num_classes or info.num_classes
    dev = pick_device(device)
    torch.manual_seed(seed)
    overrides = dict(overrides or {})
    try:
        model = build_model(v, backbone, k, **overrides).to(dev).eval()
    except (RegistryError, TypeError, ValueError) as e:   # unknown backbone or option: bad input, one line
        raise InputError(str(e).splitlines()[0] if str(e) else type(e).__name__) from None
    params, params_train_only = parameter_counts(model)
    clip = torch.randn(1, v.num_frames, 3, h, w, device=dev)
    hooks = _hook_flops_cheaply(v, backbone, k, clip, fallback=model, overrides=overrides)
    total, by_op, unsupported, trace_dtype = fvcore_flops_any_dtype(model, clip)
    attention = paper_attention_flops(model, h, w)
    not_elementwise = {op: n for op, n in unsupported.items() if op not in ELEMENTWISE_OPS}
    config = {"variant": v.name, "options": v.options, "ref_offsets": list(v.ref_offsets), "backbone": backbone,
              "dataset": dataset, "num_classes": k, "resolution": [h, w], "overrides": overrides}
    return {
        "variant": v.name, "label": v.label, "family": v.family, "backbone": backbone, "dataset": dataset,
        "num_classes": k, "resolution": [h, w], "frames": v.num_frames, "overrides": overrides,
        "params": params, "params_m": round(params / 1e6, 3),
        "params_train_only": params_train_only,
        "gflops": total / 1e9,
        "gflops_by_operator": {op: n / 1e9 for op, n in sorted(by_op.items())},
        "gflops_paper_convention": (hooks + attention) / 1e9,
        "gflops_paper_convention_parts": {"module_hooks_all_frames": hooks / 1e9,
                                          "attention_one_frame": attention / 1e9},
        "unsupported_ops": dict(sorted(unsupported.items())),
        "unsupported_ops_not_elementwise": dict(sorted(not_elementwise.items())),
        "counting": "1 GFLOP = 1e9 multiply-adds; batch 1; eval; no_grad",
        "trace_dtype": trace_dtype,
        "provenance": provenance(config, seed, dev),
    }


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m metrics.complexity", description=__doc__.splitlines()[0])
    p.add_argument("--variant", required=True)
    p.add_argument("--backbone", required=True)
    p.add_argument("--dataset", required=True, choices=DATASET_NAMES)
    p.add_argument("--height", type=int)
    p.add_argument("--width", type=int)
    p.add_argument("--num-classes", type=int, help="default: the dataset's (videos/info.py)")
    p.add_argument("--device", default="auto", help="auto (CUDA when present) | cpu | cuda[:i]")
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                   help="build_model override (a documented family option, value parsed as YAML), e.g. "
                        "head_width=768; recorded under 'overrides'")
    p.add_argument("--out", required=True)
    a = p.parse_args(argv)
    overrides = {}
    for item in a.set:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise InputError(f"--set expects KEY=VALUE, got '{item}'")
        overrides[key] = yaml.safe_load(value)
    try:
        variant = get_variant(a.variant)
    except RegistryError as e:
        raise InputError(str(e)) from None
    result = measure(variant, a.backbone, a.dataset, a.height, a.width, a.num_classes, a.device,
                     overrides=overrides)
    write_json(a.out, result)
    if result["unsupported_ops_not_elementwise"]:
        print(f"warning: operators counted as zero (register a handle in metrics/complexity.py): "
              f"{result['unsupported_ops_not_elementwise']}", file=sys.stderr)
    print(f"{result['variant']} {result['backbone']} {result['dataset']} {result['resolution'][0]}x"
          f"{result['resolution'][1]} x{result['frames']}: params {result['params'] / 1e6:.3f}M "
          f"(+{result['params_train_only'] / 1e6:.3f}M train-only), GFLOPs fvcore {result['gflops']:.2f}, "
          f"paper convention {result['gflops_paper_convention']:.2f}")
    return 0


if __name__ == "__main__":
    run_cli(main)
