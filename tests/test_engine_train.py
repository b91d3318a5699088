"""engine.train: resume equals uninterrupted, determinism, NaN guard, config resolution, DDP (gloo) step.

Most tests use a tiny model obeying the model contract and an in-memory clip dataset that, like
videos.clips.ClipDataset, draws its target and augmentation from the global RNGs; one test trains a real
registered variant (segformer on mit_b0) through the CLI on a tiny synthetic tree.
"""
from __future__ import annotations

import csv
import os
import socket
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F

from common.cli import InputError
from engine import checkpoint as ckpt_io
from engine.config import TrainConfig, resolve_config
from engine.train import IterationBatches, NonFiniteLoss, TrainingInterrupted, derive_seed, train

NUM_CLASSES = 3


class TinySeg(nn.Module):
    """Model contract in miniature: backbone + head, dropout (model RNG), BatchNorm (buffers)."""

    def __init__(self, num_classes: int = NUM_CLASSES, nan_at: int | None = None):
        super().__init__()
        self.backbone = nn.Sequential(nn.Conv2d(3, 6, 3, padding=1), nn.BatchNorm2d(6), nn.ReLU())
        self.decode_head = nn.Sequential(nn.Dropout2d(0.2), nn.Conv2d(6, num_classes, 1))
        self.nan_at, self.calls = nan_at, 0

    def forward(self, clip):
        logits = self.decode_head(self.backbone(clip[:, -1]))
        return {"logits": logits} if self.training else logits

    def loss(self, outputs, target):
        self.calls += 1
        ce = F.cross_entropy(outputs["logits"], target, ignore_index=255)
        if self.nan_at is not None and self.calls >= self.nan_at:
            ce = ce * float("nan")
        return {"total": ce, "ce": ce, "half": ce.detach() / 2}


class TinyClips(torch.utils.data.Dataset):
    """Train-mode ClipDataset stand-in: target and 'augmentation' from torch/numpy global RNGs."""

    def __init__(self, n: int = 5, size: int = 8):
        g = torch.Generator().manual_seed(123)
        self.images = torch.randn(n, 3, size, size, generator=g)
        self.labels = (self.images[:, 0] > 0).long() + (self.images[:, 1] > 0.5).long()

    def __len__(self):
        return 1000   # like ClipDataset(length=...): the index is ignored in train mode

    def __getitem__(self, i):
        j = int(torch.randint(len(self.images), ()).item())
        img, lab = self.images[j], self.labels[j]
        if np.random.rand() < 0.5:                       # flip from numpy's RNG
            img, lab = img.flip(-1), lab.flip(-1)
        img = img + 0.1 * torch.randn_like(img)          # photometric noise from torch's RNG
        return img[None], lab


def tiny_cfg(**kw) -> TrainConfig:
    base = dict(iters=8, batch_size=2, lr=1e-2, warmup_iters=2, checkpoint_every=2, log_every=100,
                threads=1, progress="none", device="cpu")
    base.update(kw)
    return resolve_config(None, None, base)


def run_tiny(out, cfg=None, nan_at=None, stop_after=None, **kw):
    return train(cfg or tiny_cfg(), out, variant="tiny", backbone="tiny", dataset="synthetic", root=None,
                 model_factory=lambda k: TinySeg(k, nan_at), data_factory=lambda: (TinyClips(), NUM_CLASSES),
                 stop_after=stop_after, **kw)


def weights(path) -> dict:
    return ckpt_io.load_model_file(path)["state_dict"]


def assert_same_state(a: dict, b: dict):
    assert a.keys() == b.keys()
    for k in a:
        assert torch.equal(a[k], b[k]), k


def test_sampler_keys_depend_only_on_seed_iteration_rank():
    s = IterationBatches(n=7, seed=3, start=0, stop=5, batch_size=2, rank=0)
    later = IterationBatches(n=7, seed=3, start=3, stop=5, batch_size=2, rank=0)
    assert list(s)[3:] == list(later)
    assert s.keys(1) != IterationBatches(7, 3, 0, 5, 2, rank=1).keys(1)
    assert s.keys(1) != IterationBatches(7, 4, 0, 5, 2).keys(1)
    assert all(0 <= i < 7 for batch in s for i, _ in batch)
    assert derive_seed(0, 1, 0, 0) == derive_seed(0, 1, 0, 0) != derive_seed(0, 1, 0, 1)


def test_resume_equals_uninterrupted(tmp_path):
    full = run_tiny(tmp_path / "full")
    # killed after iteration 5 with checkpoints every 2: the checkpoint holds iteration 4, redone from there
    with pytest.raises(TrainingInterrupted):
        run_tiny(tmp_path / "cut", stop_after=5)
    assert ckpt_io.load_checkpoint(tmp_path / "cut" / "checkpoint.pt")["iteration"] == 4
    assert not (tmp_path / "cut" / "model.pt").exists()
    resumed = run_tiny(tmp_path / "cut")
    assert resumed["resumed_from"] == 4 and full["resumed_from"] == 0
    assert_same_state(weights(tmp_path / "full" / "model.pt"), weights(tmp_path / "cut" / "model.pt"))
    a = ckpt_io.load_checkpoint(tmp_path / "full" / "checkpoint.pt")
    b = ckpt_io.load_checkpoint(tmp_path / "cut" / "checkpoint.pt")
    for sa, sb in zip(a["optimizer"]["state"].values(), b["optimizer"]["state"].values()):
        assert_same_state(sa, sb)
    # the log has every iteration once, losses equal to the uninterrupted run
    rows_full = list(csv.DictReader(open(tmp_path / "full" / "train_log.csv")))
    rows_cut = list(csv.DictReader(open(tmp_path / "cut" / "train_log.csv")))
    assert [r["iteration"] for r in rows_cut] == [str(i) for i in range(1, 9)]
    assert [r["loss_total"] for r in rows_cut] == [r["loss_total"] for r in rows_full]
    assert {"loss_total", "loss_ce", "loss_half", "lr", "clips_per_s", "data_time_s"} <= set(rows_full[0])
    # rerunning a finished run changes nothing
    again = run_tiny(tmp_path / "full")
    assert again["resumed_from"] == 8
    assert_same_state(weights(tmp_path / "full" / "model.pt"), weights(tmp_path / "cut" / "model.pt"))


def test_same_seed_identical_checkpoints_other_seed_differs(tmp_path):
    run_tiny(tmp_path / "a")
    run_tiny(tmp_path / "b")
    run_tiny(tmp_path / "c", cfg=tiny_cfg(seed=1))
    a, b = (ckpt_io.load_checkpoint(tmp_path / x / "checkpoint.pt") for x in "ab")
    assert_same_state(a["model"], b["model"])
    assert [r["loss_total"] for r in a["log_rows"]] == [r["loss_total"] for r in b["log_rows"]]
    c = ckpt_io.load_checkpoint(tmp_path / "c" / "checkpoint.pt")
    assert not torch.equal(a["model"]["decode_head.1.weight"], c["model"]["decode_head.1.weight"])


def test_resume_refuses_other_settings(tmp_path):
    with pytest.raises(TrainingInterrupted):
        run_tiny(tmp_path / "r", stop_after=2)
    with pytest.raises(InputError, match="lr"):
        run_tiny(tmp_path / "r", cfg=tiny_cfg(lr=5e-3))
    # runtime fields (threads, logging, checkpoint period) do not block a resume
    out = run_tiny(tmp_path / "r", cfg=tiny_cfg(checkpoint_every=3, log_every=1))
    assert out["resumed_from"] == 2


def test_restart_on_other_settings_or_data(tmp_path, capsys):
    """What the pipeline passes (--data-stamp FILE --on-mismatch restart): the same data resumes; a
    checkpoint of a run on other data or under other settings is refused by default, dropped with restart."""
    out = tmp_path / "r"
    with pytest.raises(TrainingInterrupted):
        run_tiny(out, stop_after=2, data_stamp="data A")
    with pytest.raises(InputError, match=r"other settings \(data\)"):
        run_tiny(out, data_stamp="data B")
    with pytest.raises(TrainingInterrupted):   # same data, same settings: resumes at 2, stops at 4
        run_tiny(out, stop_after=4, data_stamp="data A", on_mismatch="restart")
    assert ckpt_io.load_checkpoint(out / "checkpoint.pt")["iteration"] == 4
    assert run_tiny(out, data_stamp="data B", on_mismatch="restart")["resumed_from"] == 0
    assert "other settings (data); starting over" in capsys.readouterr().err
    assert run_tiny(out, cfg=tiny_cfg(lr=5e-3), data_stamp="data B", on_mismatch="restart")["resumed_from"] == 0


def test_nan_loss_stops_naming_iteration_and_keeps_last_checkpoint(tmp_path):
    with pytest.raises(NonFiniteLoss, match=r"iteration 5 .*keeps iteration 4"):
        run_tiny(tmp_path / "n", nan_at=5)
    state = ckpt_io.load_checkpoint(tmp_path / "n" / "checkpoint.pt")
    assert state["iteration"] == 4
    assert all(torch.isfinite(v).all() for v in state["model"].values() if v.is_floating_point())
    assert not (tmp_path / "n" / "model.pt").exists()
    with pytest.raises(NonFiniteLoss, match="iteration 1 .*no checkpoint"):
        run_tiny(tmp_path / "m", nan_at=1)


def test_model_file_has_what_inference_needs(tmp_path):
    run_tiny(tmp_path / "m", cfg=tiny_cfg(iters=2))
    meta = ckpt_io.load_model_file(tmp_path / "m" / "model.pt")
    assert meta["variant"] == "tiny" and meta["num_classes"] == NUM_CLASSES and meta["dataset"] == "synthetic"
    assert meta["config"]["iters"] == 2 and meta["iterations"] == 2
    assert meta["provenance"]["seed"] == 0 and len(meta["provenance"]["train_config_hash"]) == 16
    with pytest.raises(InputError, match="not a model file|model file format"):
        ckpt_io.load_model_file(tmp_path / "m" / "checkpoint.pt")


def test_lr_follows_schedule_and_head_multiplier(tmp_path):
    cfg = tiny_cfg(iters=4, warmup_iters=2, warmup_ratio=0.0, lr=0.1, head_lr_mult=10.0)
    out = run_tiny(tmp_path / "s", cfg=cfg)
    rows = list(csv.DictReader(open(tmp_path / "s" / "train_log.csv")))
    # it=0: warm-up factor 0; it=1: (1 - 1/4) * 0.5; it=2: (1 - 2/4); it=3: 1/4
    assert [float(r["lr"]) for r in rows] == pytest.approx([0.0, 0.0375, 0.05, 0.025])
    state = ckpt_io.load_checkpoint(tmp_path / "s" / "checkpoint.pt")["optimizer"]
    mults = {g["name"]: g["lr_mult"] for g in state["param_groups"]}
    assert mults == {"backbone": 1.0, "backbone_no_decay": 1.0, "head": 10.0, "head_no_decay": 10.0}
    assert out["iterations"] == 4


def test_config_resolution_order(tmp_path):
    f = tmp_path / "c.yaml"
    f.write_text("train:\n  lr: 0.001\n  iters: 30\n  crop: [32, 48]\n")
    cfg = resolve_config("synthetic", f, {"iters": 7, "seed": None})
    assert (cfg.lr, cfg.iters, cfg.crop, cfg.warmup_iters) == (0.001, 7, (32, 48), 20)  # 20: synthetic row
    assert resolve_config("vspw").crop == (480, 480)
    with pytest.raises(InputError, match="unknown training option"):
        resolve_config(None, None, {"learning_rate": 1})
    f.write_text("iters: -1\n")
    with pytest.raises(InputError, match="iters must be >= 1"):
        resolve_config(None, f)


def test_threads_flag_env_default(monkeypatch):
    from engine.config import resolve_threads

    monkeypatch.setenv("VSS_THREADS", "1")
    assert resolve_threads(None) == 1 and resolve_threads(2) == 2
    monkeypatch.delenv("VSS_THREADS")
    assert resolve_threads(None) == len(os.sched_getaffinity(0))
    monkeypatch.setenv("VSS_THREADS", "x")
    with pytest.raises(InputError, match="VSS_THREADS"):
        resolve_threads(None)


# ------------------------------------------------------------------------------------------ DDP (gloo, CPU)
def _ddp_worker(rank: int, world: int, port: int, out: str):
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port), RANK=str(rank), WORLD_SIZE=str(world),
                      LOCAL_RANK=str(rank))
    cfg = tiny_cfg(iters=2, checkpoint_every=2, ddp_find_unused=False)
    summary = train(cfg, out, variant="tiny", backbone="tiny", dataset="synthetic", root=None,
                    model_factory=lambda k: TinySeg(k), data_factory=lambda: (TinyClips(), NUM_CLASSES))
    torch.save(summary["model"].state_dict(), Path(out) / f"rank{rank}.pt")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_ddp_two_processes_gloo_identical_weights(tmp_path):
    out = tmp_path / "ddp"
    # fork: the children reuse this process's imports (spawn would re-import torch twice, seconds each)
    torch.multiprocessing.start_processes(_ddp_worker, args=(2, _free_port(), str(out)), nprocs=2, join=True,
                                          start_method="fork")
    r0, r1 = torch.load(out / "rank0.pt"), torch.load(out / "rank1.pt")
    assert_same_state(r0, r1)
    # the ranks saw different clips (rank enters the sample seed), and the weights moved
    torch.manual_seed(0)
    init = TinySeg(NUM_CLASSES)   # what both ranks started from
    assert not torch.equal(init.backbone[0].weight, r0["backbone.0.weight"])
    assert weights(out / "model.pt").keys() == r0.keys()
    rows = list(csv.DictReader(open(out / "train_log.csv")))
    assert len(rows) == 2 and float(rows[0]["clips_per_s"]) > 0


def test_pretrained_backbone_from_local_file(tmp_path):
    from models.pretrained import load_pretrained

    src = TinySeg()
    torch.save({"state_dict": {f"backbone.{k}": v for k, v in src.backbone.state_dict().items()}},
               tmp_path / "w.pth")
    dst = TinySeg()
    report = load_pretrained(dst, str(tmp_path / "w.pth"), "tiny")
    assert report["loaded"] == report["expected"] == len(src.backbone.state_dict()) - 1   # num_batches_tracked
    assert torch.equal(dst.backbone[0].weight, src.backbone[0].weight)
    assert not torch.equal(dst.decode_head[1].weight, src.decode_head[1].weight)   # the head is untouched
    torch.save({"other.weight": torch.zeros(2)}, tmp_path / "bad.pth")
    with pytest.raises(InputError, match="bad.pth: does not fit tiny"):
        load_pretrained(dst, str(tmp_path / "bad.pth"), "tiny")
    with pytest.raises(InputError, match="not found"):
        load_pretrained(dst, str(tmp_path / "none.pth"), "tiny")
    # through the training config: the run records where the backbone came from; a misfit stops it at once
    run_tiny(tmp_path / "run", cfg=tiny_cfg(iters=1, pretrained=str(tmp_path / "w.pth")))
    assert "w.pth" in ckpt_io.load_model_file(tmp_path / "run" / "model.pt")["provenance"]["backbone_init"]
    with pytest.raises(InputError, match="does not fit"):
        run_tiny(tmp_path / "bad_run", cfg=tiny_cfg(iters=1, pretrained=str(tmp_path / "bad.pth")))
    assert not (tmp_path / "bad_run" / "checkpoint.pt").exists()


def test_dataloader_workers_give_the_same_run(tmp_path):
    run_tiny(tmp_path / "w0", cfg=tiny_cfg(iters=3, num_workers=0))
    run_tiny(tmp_path / "w1", cfg=tiny_cfg(iters=3, num_workers=1))
    assert_same_state(weights(tmp_path / "w0" / "model.pt"), weights(tmp_path / "w1" / "model.pt"))


class SamplingTinySeg(TinySeg):
    """TinySeg with a diagnostics hook whose in-frame fraction falls by 0.3 per training step."""

    def diagnostics(self):
        return {"inframe_probe": 1.0 - 0.3 * (self.calls - 1), "offset_px_probe": 0.5 * self.calls}


def test_diagnostics_are_logged_per_iteration_and_a_dying_sampler_is_said_once(tmp_path, capsys):
    cfg = tiny_cfg(iters=4, progress="lines", log_every=1)
    train(cfg, tmp_path, variant="tiny", backbone="tiny", dataset="synthetic", root=None,
          model_factory=lambda k: SamplingTinySeg(k), data_factory=lambda: (TinyClips(), NUM_CLASSES))
    rows = list(csv.DictReader(open(tmp_path / "train_log.csv")))
    assert [round(float(r["inframe_probe"]), 6) for r in rows] == [1.0, 0.7, 0.4, 0.1]
    assert [float(r["offset_px_probe"]) for r in rows] == [0.5, 1.0, 1.5, 2.0]
    err = capsys.readouterr().err
    assert "iter 2/4" in err and "inframe_probe 0.700" in err                   # the log lines print it
    warnings = [line for line in err.splitlines() if line.startswith("warning:")]
    assert warnings == ["warning: iteration 3: inframe_probe 0.40 < 0.5: deformable samples are leaving the "
                        "feature map"]
