"""Print parameters and fvcore GFLOPs of MSAF variants/backbones at the paper's resolutions (CPU, 1 thread).

    python -m benchmarks.msaf_complexity [--variants msaf msaf_baseline ...] [--backbones resnet18 ...]
        [--sizes 1024x2048 720x960] [--num-classes 19]

Uses metrics.complexity (its fvcore handles, SDPA included) on the eager eval model, batch 1, one test clip
(every frame the variant reads). One subprocess per model so the printed peak RSS is that model's; the
figures go into docs/reproduction-notes.md (MSAF). ``python -m metrics.complexity`` writes the same
params/gflops as JSON for the pipeline.
"""
from __future__ import annotations

import argparse
import json
import subprocess
import sys


def one(variant: str, backbone: str, h: int, w: int, num_classes: int, scale_to=None) -> dict:
    import resource

    import torch

    from metrics import complexity
    from models import build_model, get_variant

    torch.set_num_threads(1)
    torch.manual_seed(0)
    v = get_variant(variant)
    model = build_model(v, backbone, num_classes).eval()
    params, train_only = complexity.parameter_counts(model)
    clip = torch.randn(1, v.num_frames, 3, h, w)
    from fvcore.nn import FlopCountAnalysis
    with torch.no_grad():
        analysis = FlopCountAnalysis(model, (clip,)).set_op_handle(**complexity.FVCORE_HANDLES)
        analysis.unsupported_ops_warnings(False)
        analysis.uncalled_modules_warnings(False)
        analysis.tracer_warnings("none")
        total, by_op, by_module = analysis.total(), analysis.by_operator(), analysis.by_module()
    unsupported = analysis.unsupported_ops()
    not_elementwise = {k: n for k, n in unsupported.items() if k not in complexity.ELEMENTWISE_OPS}
    backbone_all = by_module.get("features.body", 0)  # the backbone over every frame of the clip
    sdpa = by_op.get("scaled_dot_product_attention", 0)
    row = {"variant": variant, "label": v.label, "backbone": backbone, "size": f"{h}x{w}", "frames": v.num_frames,
           "params_m": round(params / 1e6, 3), "gflops": round(total / 1e9, 1), "sdpa_gflops": round(sdpa / 1e9, 1),
           "backbone_gflops_per_frame": round(backbone_all / v.num_frames / 1e9, 1),
           # one new frame per step when the references' backbone features are kept from earlier steps
           "gflops_streaming": round((total - backbone_all * (v.num_frames - 1) / v.num_frames) / 1e9, 1),
           "uncounted": not_elementwise,
           "peak_rss_gib": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20, 2)}
    if scale_to:  # convolutions, norms, resampling, DCN sampling scale with the pixels; attention by formula
        H, W = scale_to
        att = model.attention_flops(H, W) if hasattr(model, "attention_flops") else 0
        f = (H * W) / (h * w)
        row["scaled_to"] = f"{H}x{W}"
        row["gflops_scaled"] = round(((total - sdpa) * f + att) / 1e9, 1)
        row["sdpa_gflops_scaled"] = round(att / 1e9, 1)
        row["gflops_streaming_scaled"] = round(((total - sdpa - backbone_all * (v.num_frames - 1) / v.num_frames) * f
                                                + att) / 1e9, 1)
    return row


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--variants", nargs="+", default=["msaf_baseline", "msaf"])
    p.add_argument("--backbones", nargs="+", default=["resnet18"])
    p.add_argument("--sizes", nargs="+", default=["1024x2048"])
    p.add_argument("--num-classes", type=int, default=19)
    p.add_argument("--scale-to", help="HxW: also print the count extrapolated to this size (linear parts x pixels, "
                                      "attention by MSAF.attention_flops); exact when both sizes are multiples of 32")
    p.add_argument("--one", help=argparse.SUPPRESS)  # internal: run one model in this process
    a = p.parse_args(argv)
    if a.one:
        variant, backbone, size = a.one.split(",")
        h, w = map(int, size.split("x"))
        scale = tuple(map(int, a.scale_to.split("x"))) if a.scale_to else None
        print(json.dumps(one(variant, backbone, h, w, a.num_classes, scale)))
        return 0
    for size in a.sizes:
        for backbone in a.backbones:
            for variant in a.variants:
                extra = ["--scale-to", a.scale_to] if a.scale_to else []
                r = subprocess.run([sys.executable, "-m", "benchmarks.msaf_complexity", "--num-classes",
                                    str(a.num_classes), "--one", f"{variant},{backbone},{size}", *extra],
                                   capture_output=True, text=True)
                line = r.stdout.strip().splitlines()[-1] if r.returncode == 0 else f"FAILED: {r.stderr[-400:]}"
                print(line, flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
