"""Pretrain a backbone once, on single frames, and write its encoder in the backbone's public checkpoint layout.

    python -m engine.pretrain --variant segformer --backbone mit_b0 --dataset synthetic --root ROOT
                              --out DIR --encoder DIR/mit_b0.pth [any engine.train flag]

Trains ``--variant`` (a single-frame registry entry: SegFormer for a MiT, the MSAF baseline's FCN for a
ResNet) exactly as ``python -m engine.train`` does into DIR (resumable, DIR/train_log.csv with the
validation curve when ``--validate-every`` is given), then keeps only the encoder and writes it as the
files researchers download are written, so that every run of the experiment loads it through
``engine.train --pretrained``, the same strict path a real ImageNet file takes:

  mit      the official SegFormer ``mit_b*.pth``: a plain state dict, ``patch_embed1.proj.weight``,
           ``block1.0.attn.q.weight``, ``norm1.weight``, ... (no classifier: this pretext had none)
  resnet   mmcv's ResNetV1c checkpoint: ``{"meta": {...}, "state_dict": {"stem.0.weight", "layer1.0.conv1.weight",
           ...}}``; for a PSPNet backbone the dilated ResNet only (the pyramid pooling module is new in
           every run, as it is on top of an ImageNet ResNet)
  hrnet    the official HRNet-Image-Classification state dict (``conv1.weight``, ``stage2.0.branches...``)

Before it finishes it loads the file back into a freshly built model through the pretrained loader and
checks that the encoder computes the same features as the trained one (max abs difference 0), so a file
that would not load strictly is never handed on. DIR/<backbone>.json says what was written.

Why single frames of the training split stand in for ImageNet: docs/reproduction-notes.md ("The embedded
default: pretrain once, fine-tune many").
"""
from __future__ import annotations

import argparse
import hashlib
import sys
from pathlib import Path

import torch

from common.cli import InputError, run_cli
from common.families import BACKBONES
from common.io import atomic_path, check_output_file, write_json

# backbone kind -> the public layout its encoder is written in (the loader recognises each from its keys)
LAYOUTS = {"mit": "official SegFormer mit_b*.pth", "resnet": "mmcv ResNetV1c", "pspnet": "mmcv ResNetV1c",
           "hrnet": "official HRNet"}


def encoder_module(model: torch.nn.Module, backbone: str) -> torch.nn.Module:
    """The part of a built model that ImageNet weights initialise: its ``backbone`` learning-rate group
    (docs/architecture.md; for PSPNet the dilated ResNet without the new pyramid pooling module)."""
    parts = model.lr_groups().get("backbone", []) if hasattr(model, "lr_groups") else []
    if len(parts) != 1:
        raise InputError(f"{type(model).__name__} declares no single backbone module to export")
    return parts[0]


def encoder_checkpoint(model: torch.nn.Module, backbone: str, meta: dict) -> tuple[object, int]:
    """(the object torch.save writes, its tensor count) in the backbone's public layout."""
    state = {k: v.detach().clone() for k, v in encoder_module(model, backbone).state_dict().items()}
    if BACKBONES[backbone].kind in ("resnet", "pspnet"):
        return {"meta": meta, "state_dict": state}, len(state)
    return state, len(state)


def _features(module: torch.nn.Module, x: torch.Tensor):
    out = module(x)
    return list(out) if isinstance(out, (list, tuple)) else [out]


@torch.no_grad()
def verify(model: torch.nn.Module, variant, backbone: str, num_classes: int, path: Path) -> float:
    """Load ``path`` into a freshly built model the way a fine-tuning run does; return the largest absolute
    difference between its encoder's features and the trained model's on one random input."""
    from models.pretrained import load_pretrained
    from models.registry import build_model

    torch.manual_seed(12345)   # another initialisation: only what the file holds can make them agree
    fresh = build_model(variant, backbone, num_classes)
    load_pretrained(fresh, path, backbone)
    a, b = encoder_module(model, backbone).eval(), encoder_module(fresh, backbone).eval()
    x = torch.randn(1, 3, 64, 64)
    return max(float((p - q).abs().max()) for p, q in zip(_features(a, x), _features(b, x)))


def export(run_dir: Path, encoder: Path, registry=None) -> dict:
    """Write the encoder of DIR/model.pt to ``encoder`` (atomically) and DIR/<backbone>.json; verified."""
    from engine.checkpoint import build_from_model_file
    from engine.train import MODEL

    model, meta = build_from_model_file(run_dir / MODEL, "cpu", registry)
    backbone = meta["backbone"]
    info = {"backbone": backbone, "layout": LAYOUTS[BACKBONES[backbone].kind], "pretext": meta["variant"],
            "dataset": meta["dataset"], "iterations": meta["iterations"], "source": str(run_dir / MODEL),
            "train_provenance": meta.get("provenance")}
    obj, tensors = encoder_checkpoint(model, backbone, {"pretext": meta["variant"], "dataset": meta["dataset"],
                                                        "iterations": meta["iterations"]})
    with atomic_path(encoder) as tmp:
        torch.save(obj, tmp)
        difference = verify(model, model.variant, backbone, meta["num_classes"], tmp)
        if difference != 0.0:
            raise RuntimeError(f"{encoder}: the reloaded encoder differs from the trained one by {difference}")
    info.update(tensors=tensors, sha256=hashlib.sha256(encoder.read_bytes()).hexdigest(),
                reloaded_max_abs_difference=difference)
    write_json(run_dir / f"{backbone}.json", info)
    return info


def main(argv: list[str] | None = None) -> int:
    from engine import train as engine_train

    p = argparse.ArgumentParser(prog="python -m engine.pretrain", description=__doc__.split("\n\n")[0],
                                epilog="Every other flag is engine.train's.")
    p.add_argument("--encoder", required=True, help="the encoder file to write (e.g. DIR/mit_b0.pth)")
    args, train_argv = p.parse_known_args(argv)
    check_output_file(args.encoder, "encoder file")   # before hours of training, not after
    ns = engine_train.build_parser().parse_args(train_argv)
    from models.registry import RegistryError, get_variant

    try:
        variant = get_variant(ns.variant, ns.registry)
    except RegistryError as e:
        raise InputError(str(e)) from None
    if variant.ref_offsets:
        raise InputError(f"--variant {ns.variant}: reads reference frames {list(variant.ref_offsets)}; "
                         "pretraining is on single frames (a variant with ref_offsets: [])")
    status = engine_train.main(train_argv)
    if status:
        return status
    info = export(Path(ns.out), Path(args.encoder), ns.registry)
    print(f"{args.encoder}: {info['tensors']} tensors of {info['backbone']} in the {info['layout']} layout "
          f"(pretext {info['pretext']}, {info['iterations']} iterations on {info['dataset']}); reloaded "
          "through the pretrained loader: identical features", file=sys.stderr)
    return 0


if __name__ == "__main__":
    run_cli(main)
