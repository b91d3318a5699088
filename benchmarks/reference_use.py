"""Do the trained temporal models use their reference frames? One line per trained run.

    python -m benchmarks.reference_use [--results results --experiment default --variants sdcpc msaf]

For every run of the experiment whose variant reads reference frames (its ``model.pt``), over a mid-video
target of every val video: the prediction with the true references against the prediction with another
video's frames in the reference slots. Prints the mean |logit change| over the logits' std (``logits``),
the fraction of pixels whose predicted class changes (``pixels``), and the same with every reference slot
holding a copy of the target frame (``static``: what the model gains from motion). A model that ignores its
references prints 0 everywhere (docs/reproduction-notes.md, "Do the temporal models read their
references?").
"""
from __future__ import annotations

import argparse
import json
from pathlib import Path

from common.cli import InputError, run_cli


def reference_use(model, clips, per_video: int) -> dict[str, float]:
    """Mean relative logit change and pixel-class change, swapped and static references."""
    import torch

    from models.outputs import target_logits

    sums = {"logits": 0.0, "pixels": 0.0, "static_logits": 0.0, "static_pixels": 0.0}
    targets = list(range(per_video // 2, len(clips), per_video))
    with torch.no_grad():
        for i in targets:
            clip, _ = clips[i]
            other, _ = clips[(i + per_video) % len(clips)]
            swapped, static = clip.clone(), clip.clone()
            swapped[:-1] = other[:-1]
            static[:-1] = clip[-1:]
            a = target_logits(model(clip[None]))
            for name, changed in (("", swapped), ("static_", static)):
                b = target_logits(model(changed[None]))
                sums[name + "logits"] += ((a - b).abs().mean() / a.std()).item()
                sums[name + "pixels"] += (a.argmax(1) != b.argmax(1)).float().mean().item()
    return {k: v / len(targets) for k, v in sums.items()}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m benchmarks.reference_use", description=__doc__.splitlines()[0])
    p.add_argument("--results", default="results")
    p.add_argument("--experiment", default="default")
    p.add_argument("--variants", nargs="*", default=None, help="only these variants (default: every temporal one)")
    args = p.parse_args(argv)

    import torch

    from engine.checkpoint import build_from_model_file
    from videos.clips import ClipDataset
    from videos.datasets import open_dataset

    exp = Path(args.results) / args.experiment
    plan_file = exp / "plan.json"
    if not plan_file.is_file():
        raise InputError(f"{plan_file}: no plan (run the pipeline first)")
    plan = json.loads(plan_file.read_text())
    torch.set_num_threads(1)
    print(f"{'run':<52} {'logits':>8} {'pixels':>8} {'static logits':>14} {'static pixels':>14}")
    for model_file in sorted(exp.glob("runs/*/*/*/seed*/model.pt")):
        dataset, _, variant = model_file.parts[-5:-2]
        if args.variants and variant not in args.variants:
            continue
        model, _ = build_from_model_file(model_file, torch.device("cpu"))
        if len(model.variant.clip_offsets) < 2:
            continue
        root = Path(plan["roots"][dataset])
        if not root.is_absolute() and not root.exists():   # relative to the project the results are in
            root = Path(args.results).resolve().parent / root
        ds = open_dataset(dataset, root, "val")
        clips = ClipDataset(ds, model.variant.clip_offsets, train=False)
        r = reference_use(model.eval(), clips, len(clips) // len(ds.videos))
        name = "/".join(model_file.parts[-5:-1])
        print(f"{name:<52} {r['logits']:8.4f} {r['pixels']:8.2%} {r['static_logits']:14.4f} {r['static_pixels']:14.2%}")
    return 0


if __name__ == "__main__":
    run_cli(main)
