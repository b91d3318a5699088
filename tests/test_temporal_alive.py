"""Every temporal registry entry is alive and uses its references after a short training run.

For every variant that reads reference frames (SD-CPC and MSAF families and every such ablation; the list is
read from config/variants.yaml, so a new entry is covered with no edit here), on the smallest backbone of its
family, at the family's default widths:

- train the first 30 iterations of the embedded default's 100-iteration schedule (engine.train, synthetic
  dataset defaults: lr 6e-4, 20 warm-up iterations, so the LR peak is inside the window; the deformable
  samplers of the unfixed models left the map by iteration 15-25 of exactly this schedule; one clip per step
  to keep the test cheap) on a small synthetic set at the default 64x64 size;
- every deformable sampler's in-frame fraction, logged by engine.train, stays >= 0.85 at every iteration;
- replacing the reference frames of a validation clip by another video's frames changes the target's logits
  by at least 1e-3 of their spread (a model whose samplers read only padding changes them by exactly 0).

docs/reproduction-notes.md ("Deformable sampling") gives the figures of the full 100-iteration runs.
"""
from __future__ import annotations

import csv

import pytest
import torch

from engine.config import resolve_config
from engine.train import TrainingInterrupted, train
from models.registry import build_model, family_backbones, load_variants

TEMPORAL = sorted(n for n, v in load_variants().items() if v.ref_offsets)
SCHEDULE, TRAINED = 100, 30          # the default's schedule, of which the first 30 iterations run
IN_FRAME_BAR = 0.85
MIN_SWAP_CHANGE = 1e-3


@pytest.fixture(scope="module")
def synthetic_root(tmp_path_factory):
    from videos.synthetic import generate

    return generate(tmp_path_factory.mktemp("alive") / "synthetic", train_videos=4, val_videos=2, frames=12,
                    height=64, width=64, classes=8, seed=0)


def swap_change(model, root, offsets) -> float:
    """Mean |logits(clip) - logits(clip with another video's references)| / std(logits), over a mid-video
    target of every val video (benchmarks.reference_use, which prints it for trained runs)."""
    from benchmarks.reference_use import reference_use
    from videos.clips import ClipDataset
    from videos.datasets import open_dataset

    ds = open_dataset("synthetic", root, "val")
    clips = ClipDataset(ds, offsets, train=False)
    return reference_use(model.eval(), clips, len(clips) // len(ds.videos))["logits"]


@pytest.mark.parametrize("name", TEMPORAL)
def test_temporal_variant_stays_on_the_map_and_reads_its_references(name, synthetic_root, tmp_path):
    variant = load_variants()[name]
    backbone = family_backbones(variant.family)[0]
    built = {}

    def factory(num_classes):
        built["model"] = build_model(variant, backbone, num_classes)
        return built["model"]

    def data():
        from videos.clips import ClipDataset
        from videos.datasets import open_dataset

        ds = open_dataset("synthetic", synthetic_root, "train")
        return ClipDataset(ds, variant.clip_offsets, train=True, crop=(64, 64)), ds.num_classes

    # one torch thread (on a small shared machine two only contend, about 5x slower here) and one clip per
    # step instead of the default's two: the optimiser takes the same steps at the same learning rates
    cfg = resolve_config("synthetic", None, {"iters": SCHEDULE, "checkpoint_every": TRAINED, "progress": "none",
                                             "seed": 0, "threads": 1, "batch_size": 1})
    with pytest.raises(TrainingInterrupted):
        train(cfg, tmp_path, variant=name, backbone=backbone, dataset="synthetic", root=synthetic_root,
              model_factory=factory, data_factory=data, stop_after=TRAINED)
    rows = list(csv.DictReader(open(tmp_path / "train_log.csv")))
    assert len(rows) == TRAINED
    samplers = [k for k in rows[0] if k.startswith("inframe_")]
    worst = {k: min(float(r[k]) for r in rows) for k in samplers}
    assert all(v >= IN_FRAME_BAR for v in worst.values()), f"{name}: lowest in-frame fraction {worst}"
    moved = {k.replace("inframe_", ""): float(rows[-1][k.replace("inframe_", "offset_px_")]) for k in samplers}
    assert all(v > 0 for v in moved.values()), f"{name}: offsets never moved {moved}"   # alive, not frozen
    change = swap_change(built["model"], synthetic_root, variant.clip_offsets)
    assert change >= MIN_SWAP_CHANGE, f"{name}: other references change the logits by {change:.2e} of their spread"


def test_every_sampler_family_is_covered():
    """The list above is what the registry holds: both temporal families, with their ablations."""
    families = {load_variants()[n].family for n in TEMPORAL}
    assert families == {"sdcpc", "msaf"} and len(TEMPORAL) >= 20
