"""Bad input and faults, one table row per case: broken dataset trees, model and checkpoint files (crafted ones
too), predictions, configs, kills, full disks and a shared results folder.

Each row gives the input (a setup writing it under tmp_path and returning the command's arguments), the
command, the exit code, the words the message must hold, and what must not exist afterwards. Every row also
asserts: no traceback, no OpenCV ``[ WARN ]`` line, an error (exit 1) is exactly one stderr line (videos.check
prints its problems one per line on stdout), and no temporary file is left anywhere under tmp_path.

Commands run in-process through common.cli.run_cli (what ``python -m X`` does), except where the exit code and
the stderr line of a real process are the point (snakemake, ``kill -9``).

Full disks: a tmpfs of the right size is mounted where the machine allows it (root, Linux); elsewhere the
write path is given a quota instead (builtins.open / io.open wrapped to raise ENOSPC past N bytes), so the
same rows run on any CI machine. ``FULL_DISK`` below says which one a run used.

``before`` records how main behaved before these fixes (good: one line naming the file; weak: accepted
without a word or with extra noise; defect: traceback, code executed, wrong result or data lost).
"""
from __future__ import annotations

import builtins
import dataclasses
import errno
import importlib
import io
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Callable

import cv2
import numpy as np
import pytest
import torch

from common.cli import run_cli
from tests.fixtures import (noise_image, write_camvid_tree, write_cityscapes_tree, write_synthetic_tree,
                            write_vspw_tree)

REPO = Path(__file__).resolve().parents[1]
MARKER = "ran.txt"      # what a crafted pickle writes if it is ever executed


# ---------------------------------------------------------------------------------------------- helpers
def write_marker(path):
    """A crafted pickle's payload: if this file ever appears, untrusted code ran."""
    Path(path).write_text("code from a pickle ran")
    return {}


class CraftedModel:
    """Unpickling this calls write_marker (a harmless stand-in for os.system)."""

    def __init__(self, marker):
        self.marker = str(marker)

    def __reduce__(self):
        return write_marker, (self.marker,)


class ShellPayload:
    def __init__(self, marker):
        self.marker = str(marker)

    def __reduce__(self):
        return os.system, (f"touch {self.marker}",)


class TinyFlow(torch.nn.Module):
    """A 'learned flow' network for --flow-model tests.test_bad_input:TinyFlow."""

    def __init__(self):
        super().__init__()
        self.conv = torch.nn.Conv2d(6, 2, 1)

    def forward(self, a, b):
        return self.conv(torch.cat([a, b], 1))


def png_bytes(rgb: np.ndarray) -> bytes:
    return cv2.imencode(".png", rgb)[1].tobytes()


def jpeg_bytes(rgb: np.ndarray) -> bytes:
    return cv2.imencode(".jpg", rgb)[1].tobytes()


def can_mount() -> bool:
    if os.environ.get("VSS_TEST_SIMULATE_FULL_DISK") or os.geteuid() != 0 or not shutil.which("mount"):
        return False
    probe = Path(f"/tmp/vss-mount-probe-{os.getpid()}")
    probe.mkdir(exist_ok=True)
    ok = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=64k", "tmpfs", str(probe)], capture_output=True).returncode == 0
    if ok:
        subprocess.run(["umount", str(probe)], capture_output=True)
    probe.rmdir()
    return ok


FULL_DISK = "tmpfs" if can_mount() else "simulated"


class Env:
    """What a setup needs: the case's folder, shared read-only inputs, monkeypatch, and full disks."""

    def __init__(self, tmp: Path, shared: dict, monkeypatch, request):
        self.tmp, self.shared, self.monkeypatch, self.request = tmp, shared, monkeypatch, request

    def __getattr__(self, name):
        return self.shared[name]

    def full_disk(self, name: str, free: int) -> Path:
        """A folder on a filesystem with ``free`` bytes left."""
        folder = self.tmp / name
        folder.mkdir()
        if FULL_DISK == "tmpfs":
            size = free + (256 << 10)
            subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(folder)], check=True)
            self.request.addfinalizer(lambda: subprocess.run(["umount", "-l", str(folder)], capture_output=True))
            left = shutil.disk_usage(folder).free - free
            if left > 0:
                with open(folder / ".filler", "wb") as f:
                    f.write(b"\0" * left)
        else:
            simulate_quota(self.monkeypatch, folder, free)
        return folder


def simulate_quota(monkeypatch, folder: Path, free: int) -> None:
    """Writes of files under ``folder`` fail with ENOSPC once ``free`` bytes are used (all files together)."""
    used = [0]
    real_open = builtins.open

    class Quota(io.RawIOBase):
        def __init__(self, f):
            self.f = f

        def write(self, b):
            used[0] += len(b)
            if used[0] > free:
                raise OSError(errno.ENOSPC, "No space left on device")
            return self.f.write(b)

        def writable(self):
            return True

        def __getattr__(self, name):
            return getattr(self.f, name)

        def close(self):
            self.f.close()
            super().close()

    def quota_open(file, mode="r", *args, **kwargs):
        f = real_open(file, mode, *args, **kwargs)
        inside = isinstance(file, (str, os.PathLike)) and str(Path(file).absolute()).startswith(str(folder))
        return Quota(f) if inside and any(c in mode for c in "wax+") else f

    monkeypatch.setattr(builtins, "open", quota_open)
    monkeypatch.setattr(io, "open", quota_open)


# ---------------------------------------------------------------------------------------------- shared inputs
CLASSES = 4


@pytest.fixture(scope="module")
def shared(tmp_path_factory):
    """A tiny synthetic tree, an (untrained) SD-CPC model file with two reference frames, and its predictions."""
    from engine import checkpoint as ckpt_io
    from engine.infer import main as infer_main
    from models.registry import build_model

    base = tmp_path_factory.mktemp("shared")
    syn = write_synthetic_tree(base / "syn", train_videos=1, val_videos=1, frames=4, size=(32, 32), classes=CLASSES)
    options = dict(width=16, embed_dim=16, coord_hidden=32, dcn_groups=2)
    torch.manual_seed(0)
    model = build_model("sdcpc", "mit_b0", CLASSES, **options)
    ckpt_io.save_model(base / "model.pt", model=model, variant="sdcpc", backbone="mit_b0", num_classes=CLASSES,
                       dataset="synthetic", model_options=options, config={}, provenance={}, iterations=0,
                       variant_spec=dataclasses.asdict(model.variant))
    assert infer_main(["--checkpoint", str(base / "model.pt"), "--dataset", "synthetic", "--root", str(syn),
                       "--pred", str(base / "pred"), "--threads", "1"]) == 0
    return {"syn": syn, "model": base / "model.pt", "pred": base / "pred"}


def train_argv(env, out, *extra, root=None):
    return ["--variant", "segformer", "--backbone", "mit_b0", "--dataset", "synthetic", "--root",
            str(root or env.syn), "--out", str(out), "--threads", "1", "--progress", "none", "--batch-size", "1",
            "--iters", "2", "--checkpoint-every", "1", *extra]


def infer_argv(env, *, root=None, pred=None, model=None):
    return ["--checkpoint", str(model or env.model), "--dataset", "synthetic", "--root", str(root or env.syn),
            "--pred", str(pred or env.tmp / "pred"), "--threads", "1"]


def eval_argv(env, *, pred=None, out=None, extra=()):
    return ["--dataset", "synthetic", "--root", str(env.syn), "--split", "val", "--pred", str(pred or env.pred),
            "--out", str(out or env.tmp / "metrics.json"), *extra]


def copy_syn(env, name="tree") -> Path:
    return Path(shutil.copytree(env.syn, env.tmp / name))


def copy_pred(env) -> Path:
    return Path(shutil.copytree(env.pred, env.tmp / "pred"))


def vspw(env, **kw) -> Path:
    kw.setdefault("size", (6, 8))
    return write_vspw_tree(env.tmp / "vspw", kw.pop("videos", {"a": 4, "b": 3}), **kw)


def check_argv(dataset, root, *extra):
    return ["--dataset", dataset, "--root", str(root), *extra]


# ---------------------------------------------------------------------------------------------- the cases
@dataclasses.dataclass(frozen=True)
class Case:
    id: str
    before: str                                  # good | weak | defect: main before these fixes
    command: str                                 # CLI module, "plan" (the Snakefile's planning) or "snakemake"
    setup: Callable[[Env], list[str]]
    rc: int
    words: tuple[str, ...]
    absent: tuple[str, ...] = ()                 # globs under tmp_path that must not exist afterwards
    after: Callable[[Env, str], None] | None = None   # further checks, given the output text


def marker_absent(env, _):
    assert not (env.tmp / MARKER).exists(), "a crafted pickle ran code"


def crafted_model(env):
    torch.save({"format": "vss-bench-model/1", "state_dict": CraftedModel(env.tmp / MARKER)}, env.tmp / "model.pt")
    return infer_argv(env, model=env.tmp / "model.pt")


def crafted_checkpoint(env):
    out = env.tmp / "run"
    out.mkdir()
    torch.save({"format": "vss-bench-checkpoint/1", "rng": ShellPayload(env.tmp / MARKER)}, out / "checkpoint.pt")
    return train_argv(env, out)


def crafted_pretrained(env):
    torch.save({"state_dict": CraftedModel(env.tmp / MARKER)}, env.tmp / "mit_b0.pth")
    return train_argv(env, env.tmp / "run", "--pretrained", str(env.tmp / "mit_b0.pth"))


def crafted_flow(env):
    torch.save({"conv.weight": CraftedModel(env.tmp / MARKER)}, env.tmp / "flow.pth")
    return eval_argv(env, extra=("--tc-flow", "learned", "--flow-model", "tests.test_bad_input:TinyFlow",
                                 "--flow-checkpoint", str(env.tmp / "flow.pth")))


def differing_sizes(env, video="val_000"):
    """Frame 00001 of one video re-saved wider, with a mask and flow of its own size: every file agrees
    with its own frame, only the video mixes two sizes."""
    root = copy_syn(env)
    d = root / "data" / video
    (d / "origin/00001.png").write_bytes(png_bytes(noise_image((32, 40), "wider")))
    cv2.imwrite(str(d / "mask/00001.png"), np.ones((32, 40), np.uint8))
    np.save(d / "flow/00001.npy", np.zeros((32, 40, 2), np.float32))
    return root


def frame_directory(env):
    root = copy_syn(env)
    frame = root / "data/val_000/origin/00002.png"
    frame.unlink()
    frame.mkdir()
    return root


def gap(env):
    root = copy_syn(env)
    for sub, suffix in (("origin", ".png"), ("mask", ".png"), ("flow", ".npy")):
        (root / f"data/val_000/{sub}/00002{suffix}").unlink()
    return root


def frames_without_mask(env):
    root = copy_syn(env)
    pred = copy_pred(env)
    for f in ("00001", "00002"):
        (root / f"data/val_000/mask/{f}.png").unlink()
        (pred / f"val_000/{f}.png").unlink()      # engine.infer predicts labelled frames only
    return eval_argv(env, pred=pred) + ["--root", str(root)]


def extra_predictions(env):
    pred = copy_pred(env)
    shutil.copy(pred / "val_000/00000.png", pred / "val_000/00099.png")
    (pred / "other_video").mkdir()
    shutil.copy(pred / "val_000/00000.png", pred / "other_video/00000.png")
    return eval_argv(env, pred=pred)


def stale_temporaries(env):
    out = env.tmp / "run"
    out.mkdir()
    dead = subprocess.Popen(["true"])
    dead.wait()
    (out / f".checkpoint.pt.tmp.{dead.pid}@{_host()}.0123abcd.tmp").write_bytes(b"\0" * 4096)
    (out / ".checkpoint.pt.tmp.k2j4h5g6.tmp").write_bytes(b"\0" * 4096)   # an older version's name, a day old
    os.utime(out / ".checkpoint.pt.tmp.k2j4h5g6.tmp", (time.time() - 86400,) * 2)
    return train_argv(env, out)


def stale_prediction_folder(env):
    dead = subprocess.Popen(["true"])
    dead.wait()
    tmp = env.tmp / f".pred.tmp.{dead.pid}@{_host()}.0123abcd"
    (tmp / "val_000").mkdir(parents=True)
    (tmp / "val_000" / "00000.png").write_bytes(b"half")
    return infer_argv(env)


def _host():
    from common.io import host_tag
    return host_tag()


def full_disk_train(env):
    # room for one checkpoint, not for the second one beside it (the old file stays until the new is whole)
    size = env.shared.get("checkpoint_bytes")
    if size is None:
        probe = env.tmp / "probe"
        assert importlib.import_module("engine.train").main(train_argv(env, probe, "--iters", "1")) == 0
        size = env.shared["checkpoint_bytes"] = (probe / "checkpoint.pt").stat().st_size
        shutil.rmtree(probe)
    disk = env.full_disk("disk", int(size * 1.5))
    return train_argv(env, disk / "run")


def full_disk_kept(env, _):
    from engine.checkpoint import load_checkpoint
    assert load_checkpoint(env.tmp / "disk/run/checkpoint.pt")["iteration"] == 1


def full_disk_eval(env):
    return eval_argv(env, out=env.full_disk("disk", 0) / "metrics.json")


def full_disk_infer(env):
    return infer_argv(env, pred=env.full_disk("disk", 0) / "pred")


def registry_with(env, text: str, raw: bytes | None = None) -> Path:
    path = env.tmp / "variants.yaml"
    if raw is not None:
        path.write_bytes(raw)
    else:
        path.write_text((REPO / "config/variants.yaml").read_text() + text)
    return path


def experiment(env, text: str | bytes) -> str:
    path = env.tmp / "exp.yaml"
    path.write_bytes(text if isinstance(text, bytes) else text.encode())
    return str(path)


def plan(env, experiment_path="smoke", **config) -> list[str]:
    return [f"experiment={experiment_path}", f"results={env.tmp / 'results'}"] + [f"{k}={v}" for k, v in config.items()]


def locked_results(env):
    """Another live process holds the results folder while this run starts."""
    holder = subprocess.Popen([sys.executable, "-c", "import sys, time; sys.path.insert(0, sys.argv[1]); "
                               "from common.lock import hold_results_lock; hold_results_lock(sys.argv[2]); "
                               "print('held', flush=True); time.sleep(60)", str(REPO), str(env.tmp / "results/smoke")],
                              stdout=subprocess.PIPE, text=True)
    env.request.addfinalizer(holder.kill)
    assert holder.stdout.readline().strip() == "held"
    return [str(env.tmp / "results/smoke/plan.json"), "--cores", "1", "--nolock", "--config", "experiment=smoke",
            f"results={env.tmp / 'results'}"]


def kill_and_resume(env):
    """kill -9 a training run once it has checkpointed, rerun the command: the weights equal an uninterrupted run."""
    argv = train_argv(env, env.tmp / "killed", "--iters", "8")
    proc = subprocess.Popen([sys.executable, "-m", "engine.train", *argv], cwd=REPO, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL, env={**os.environ, "VSS_THREADS": "1"})
    deadline = time.time() + 120
    while not (env.tmp / "killed/checkpoint.pt").exists() and proc.poll() is None and time.time() < deadline:
        time.sleep(0.01)
    time.sleep(0.05)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert not (env.tmp / "killed/model.pt").exists(), "the run finished before the kill: nothing was tested"
    train = importlib.import_module("engine.train")
    assert train.main(train_argv(env, env.tmp / "straight", "--iters", "8")) == 0
    return argv


def resumed_equals_uninterrupted(env, text):
    import re
    assert 1 <= int(re.search(r"resumed from (\d+)", text).group(1)) < 8, text
    from engine.checkpoint import load_model_file
    a = load_model_file(env.tmp / "killed/model.pt")["state_dict"]
    b = load_model_file(env.tmp / "straight/model.pt")["state_dict"]
    assert all(torch.equal(a[k], b[k]) for k in b)


def not_deleted(env, _):
    assert (env.tmp / "mine" / "keep.txt").read_text() == "mine"


FOUR_POINTS = "sdcpc_four:\n  base: sdcpc\n  label: P=four\n  options: {points: four}\n"

CASES = [
    # ------------------------------------------------------------------ dataset trees: videos.check
    Case("check/missing-root", "good", "videos.check", lambda e: check_argv("vspw", e.tmp / "nope"), 1,
         ("nope", "dataset root not found")),
    Case("check/missing-split-file", "good", "videos.check",
         lambda e: check_argv("vspw", vspw(e, splits={"val": ["a"]}), "--split", "train"), 1,
         ("train.txt", "split file not found")),
    Case("check/split-names-absent-video", "good", "videos.check",
         lambda e: check_argv("vspw", vspw(e, splits={"val": ["a", "ghost"]})), 1, ("val.txt", "names video 'ghost'")),
    Case("check/zero-byte-frame", "good", "videos.check",
         lambda e: (vspw(e), (e.tmp / "vspw/data/a/origin/00000001.jpg").write_bytes(b""),
                    check_argv("vspw", e.tmp / "vspw"))[-1], 1, ("00000001.jpg", "zero-byte")),
    Case("check/truncated-jpeg", "good", "videos.check",
         lambda e: (vspw(e), (e.tmp / "vspw/data/a/origin/00000001.jpg").write_bytes(
             jpeg_bytes(noise_image((6, 8), "x"))[:200]), check_argv("vspw", e.tmp / "vspw"))[-1], 1,
         ("00000001.jpg", "unreadable image")),
    Case("check/truncated-png", "weak", "videos.check",
         lambda e: (copy_syn(e), (e.tmp / "tree/data/val_000/origin/00001.png").write_bytes(
             png_bytes(noise_image((32, 32), "x"))[:300]), check_argv("synthetic", e.tmp / "tree"))[-1], 1,
         ("00001.png", "unreadable image")),
    Case("check/mask-wrong-size", "good", "videos.check",
         lambda e: (vspw(e), cv2.imwrite(str(e.tmp / "vspw/data/a/mask/00000002.png"), np.zeros((7, 8), np.uint8)),
                    check_argv("vspw", e.tmp / "vspw"))[-1], 1, ("00000002.png", "mask is 8x7 but its frame is 8x6")),
    Case("check/label-out-of-range", "good", "videos.check",
         lambda e: (vspw(e), cv2.imwrite(str(e.tmp / "vspw/data/a/mask/00000002.png"), np.full((6, 8), 200, np.uint8)),
                    check_argv("vspw", e.tmp / "vspw"))[-1], 1, ("00000002.png", "label values [200]")),
    Case("check/colour-mask", "good", "videos.check",
         lambda e: (vspw(e), (e.tmp / "vspw/data/a/mask/00000002.png").write_bytes(png_bytes(noise_image((6, 8), "c"))),
                    check_argv("vspw", e.tmp / "vspw"))[-1], 1, ("00000002.png", "mode RGB")),
    Case("check/frame-without-mask", "good", "videos.check",
         lambda e: check_argv("vspw", vspw(e, labelled={"a": [0, 1, 2], "b": [0, 1, 2]})), 1,
         ("00000003.jpg", "frame without a mask")),
    Case("check/non-utf8-split-file", "defect", "videos.check",
         lambda e: (vspw(e), (e.tmp / "vspw/val.txt").write_bytes(b"a\n\xff\xfeb\n"),
                    check_argv("vspw", e.tmp / "vspw"))[-1], 1, ("val.txt", "not UTF-8", "line 2")),
    Case("check/empty-split-file", "defect", "videos.check",
         lambda e: (vspw(e), (e.tmp / "vspw/val.txt").write_text("\n"), check_argv("vspw", e.tmp / "vspw"))[-1], 1,
         ("val.txt", "empty split file")),
    Case("check/frames-differ-in-size", "defect", "videos.check",
         lambda e: check_argv("synthetic", differing_sizes(e)), 1,
         ("val_000/origin/00001.png", "frame is 40x32 but frame 00000 of the same video is 32x32")),
    Case("check/missing-val-split", "defect", "videos.check",
         lambda e: check_argv("cityscapes", write_cityscapes_tree(e.tmp / "cs", split="train", size=(6, 8))), 1,
         ("gtFine/val", "not found")),
    Case("check/frame-is-a-directory", "defect", "videos.check", lambda e: check_argv("synthetic", frame_directory(e)),
         1, ("00002.png", "is a directory")),
    Case("check/gap-in-numbering-vspw", "weak", "videos.check",
         lambda e: (vspw(e, videos={"a": 5}), [p.unlink() for p in (e.tmp / "vspw/data/a").glob("*/00000002.*")],
                    check_argv("vspw", e.tmp / "vspw"))[-1], 0,
         ("warning:", "data/a/origin", "jumps from 00000001 to 00000003", "; 1 warning")),
    Case("check/gap-in-numbering-synthetic", "weak", "videos.check", lambda e: check_argv("synthetic", gap(e)), 1,
         ("val_000/origin", "jumps from 00001 to 00003")),
    Case("check/duplicate-split-lines", "weak", "videos.check",
         lambda e: check_argv("vspw", vspw(e, splits={"val": ["a", "b", "a"]})), 1,
         ("val.txt", "line 3 repeats video 'a'")),
    Case("check/frame-saved-as-jpg-and-png", "weak", "videos.check",
         lambda e: (vspw(e), (e.tmp / "vspw/data/a/origin/00000001.png").write_bytes(png_bytes(noise_image((6, 8), "p"))),
                    check_argv("vspw", e.tmp / "vspw"))[-1], 1,
         ("00000001.jpg", "saved more than once", "00000001.png")),
    Case("check/jpeg-bytes-in-png-frame", "weak", "videos.check",
         lambda e: (copy_syn(e), (e.tmp / "tree/data/val_000/origin/00001.png").write_bytes(
             jpeg_bytes(noise_image((32, 32), "j"))), check_argv("synthetic", e.tmp / "tree"))[-1], 1,
         ("00001.png", "holds JPEG data but the name says PNG")),
    Case("check/jpeg-bytes-in-png-mask", "weak", "videos.check",
         lambda e: (vspw(e), (e.tmp / "vspw/data/a/mask/00000001.png").write_bytes(
             cv2.imencode(".jpg", np.full((6, 8), 3, np.uint8))[1].tobytes()), check_argv("vspw", e.tmp / "vspw"))[-1],
         1, ("mask/00000001.png", "mask holds JPEG data")),
    Case("check/synthetic-missing-flow", "good", "videos.check",
         lambda e: (copy_syn(e), (e.tmp / "tree/data/val_000/flow/00001.npy").unlink(),
                    check_argv("synthetic", e.tmp / "tree"))[-1], 1, ("flow/00001.npy", "file not found")),
    Case("check/synthetic-bad-meta", "good", "videos.check",
         lambda e: (copy_syn(e), (e.tmp / "tree/meta.json").write_text("{"), check_argv("synthetic", e.tmp / "tree"))[-1],
         1, ("meta.json", "unreadable")),
    Case("check/camvid-missing-val-split", "defect", "videos.check",
         lambda e: check_argv("camvid", write_camvid_tree(e.tmp / "cv", annotated={"train": ["0001TP_000019"]},
                                                          size=(6, 8))), 1, ("valannot", "not found")),
    # ------------------------------------------------------------------ training: engine.train
    Case("train/crop-zero", "defect", "engine.train", lambda e: train_argv(e, e.tmp / "run", "--crop", "[0,0]"), 1,
         ("crop must be two positive sizes", "[0, 0]"), ("run",)),
    Case("train/crop-not-yaml", "defect", "engine.train", lambda e: train_argv(e, e.tmp / "run", "--crop", "[0,"), 2,
         ("--crop", "invalid YAML value"), ("run",)),
    Case("train/config-duplicate-key", "defect", "engine.train",
         lambda e: ((e.tmp / "c.yaml").write_text("lr: 0.1\niters: 2\nlr: 0.001\n"),
                    train_argv(e, e.tmp / "run", "--config", str(e.tmp / "c.yaml")))[-1], 1,
         ("c.yaml", "duplicate key 'lr' on line 3 (first on line 1)"), ("run",)),
    Case("train/config-not-utf8", "defect", "engine.train",
         lambda e: ((e.tmp / "c.yaml").write_bytes(b"lr: 0.1\n# caf\xe9\n"),
                    train_argv(e, e.tmp / "run", "--config", str(e.tmp / "c.yaml")))[-1], 1,
         ("c.yaml", "not UTF-8", "line 2"), ("run",)),
    Case("train/config-unknown-option", "good", "engine.train",
         lambda e: ((e.tmp / "c.yaml").write_text("learning_rate: 0.1\n"),
                    train_argv(e, e.tmp / "run", "--config", str(e.tmp / "c.yaml")))[-1], 1,
         ("c.yaml", "unknown training option(s) learning_rate"), ("run",)),
    Case("train/out-is-a-file", "defect", "engine.train",
         lambda e: ((e.tmp / "run").write_text("x"), train_argv(e, e.tmp / "run"))[-1], 1,
         ("run", "run folder is a file")),
    Case("train/out-under-a-file", "defect", "engine.train",
         lambda e: ((e.tmp / "file").write_text("x"), train_argv(e, e.tmp / "file/run"))[-1], 1,
         ("file/run", "is a file, not a directory")),
    Case("train/full-disk", "defect", "engine.train", full_disk_train, 1,
         ("checkpoint.pt", "no space left on device: the disk is full", "keeps iteration 1"),
         ("disk/run/model.pt",), full_disk_kept),
    Case("train/stale-temporaries-removed", "weak", "engine.train", stale_temporaries, 0, ("trained",),
         ("run/.checkpoint.pt.tmp.*",)),
    Case("train/crafted-checkpoint-to-resume", "defect", "engine.train", crafted_checkpoint, 1,
         ("checkpoint.pt", "refused", "posix.system"), ("run/model.pt",), marker_absent),
    Case("train/crafted-pretrained-weights", "defect", "engine.train", crafted_pretrained, 1,
         ("mit_b0.pth", "refused", "write_marker"), ("run/model.pt",), marker_absent),
    Case("train/crafted-pretrained-resnet", "defect", "engine.train",
         lambda e: (torch.save({"state_dict": CraftedModel(e.tmp / MARKER)}, e.tmp / "resnet18.pth"),
                    ["--variant", "msaf_baseline", "--backbone", "resnet18", "--dataset", "synthetic", "--root",
                     str(e.syn), "--out", str(e.tmp / "run"), "--threads", "1", "--iters", "1", "--pretrained",
                     str(e.tmp / "resnet18.pth")])[-1], 1,
         ("resnet18.pth", "pretrained weights refused", "write_marker"), ("run/model.pt",), marker_absent),
    Case("train/kill-9-then-resume", "good", "engine.train", kill_and_resume, 0, ("trained", "resumed from"),
         (), resumed_equals_uninterrupted),
    Case("train/frames-differ-in-size", "defect", "engine.train",
         lambda e: ["--variant", "sdcpc", "--backbone", "mit_b0", "--dataset", "synthetic", "--root",
                    str(differing_sizes(e, "train_000")), "--out", str(e.tmp / "run"), "--threads", "1",
                    "--progress", "none",
                    "--iters", "1", "--model-options", "{width: 16, embed_dim: 16, coord_hidden: 32, dcn_groups: 2}"],
         1, ("00001.png: frames of one video differ in size", "this one is 40x32, 00000.png is 32x32"),
         ("run/model.pt",)),
    # ------------------------------------------------------------------ model files and predictions: engine.infer
    Case("infer/crafted-model-file", "defect", "engine.infer", crafted_model, 1,
         ("model.pt", "refused", "write_marker"), ("pred",), marker_absent),
    Case("infer/torn-model-file", "good", "engine.infer",
         lambda e: ((e.tmp / "model.pt").write_bytes(e.model.read_bytes()[:4096]),
                    infer_argv(e, model=e.tmp / "model.pt"))[-1], 1, ("model.pt", "cannot read model file"), ("pred",)),
    Case("infer/checkpoint-instead-of-model", "good", "engine.infer",
         lambda e: (torch.save({"format": "vss-bench-checkpoint/1"}, e.tmp / "checkpoint.pt"),
                    infer_argv(e, model=e.tmp / "checkpoint.pt"))[-1], 1, ("checkpoint.pt", "pass DIR/model.pt"),
         ("pred",)),
    Case("infer/frame-is-a-directory", "defect", "engine.infer", lambda e: infer_argv(e, root=frame_directory(e)), 1,
         ("00002.png", "is a directory"), ("pred",)),
    Case("infer/frames-differ-in-size", "defect", "engine.infer", lambda e: infer_argv(e, root=differing_sizes(e)), 1,
         ("00001.png: frames of one video differ in size", "this one is 40x32, 00000.png is 32x32"), ("pred",)),
    Case("infer/pred-is-a-file", "defect", "engine.infer",
         lambda e: ((e.tmp / "pred").write_text("x"), infer_argv(e))[-1], 1, ("pred", "prediction folder is a file")),
    Case("infer/pred-is-someone-elses-folder", "defect", "engine.infer",
         lambda e: ((e.tmp / "mine").mkdir(), (e.tmp / "mine/keep.txt").write_text("mine"),
                    infer_argv(e, pred=e.tmp / "mine"))[-1], 1, ("mine", "holds no info.json", "refusing to replace"),
         (), not_deleted),
    Case("infer/stale-temporary-folder-removed", "weak", "engine.infer", stale_prediction_folder, 0, ("predicted",),
         (".pred.tmp.*",)),
    Case("infer/full-disk", "defect", "engine.infer", full_disk_infer, 1,
         ("pred", "no space left on device: the disk is full"), ("disk/pred",)),
    # ------------------------------------------------------------------ predictions and metrics: metrics.evaluate
    Case("evaluate/missing-prediction-folder", "good", "metrics.evaluate",
         lambda e: eval_argv(e, pred=e.tmp / "nope"), 1, ("nope", "prediction folder not found"), ("metrics.json",)),
    Case("evaluate/missing-prediction", "good", "metrics.evaluate",
         lambda e: (copy_pred(e), (e.tmp / "pred/val_000/00002.png").unlink(), eval_argv(e, pred=e.tmp / "pred"))[-1],
         1, ("00002.png", "missing prediction"), ("metrics.json",)),
    Case("evaluate/prediction-wrong-size", "good", "metrics.evaluate",
         lambda e: (copy_pred(e), cv2.imwrite(str(e.tmp / "pred/val_000/00001.png"), np.zeros((8, 8), np.uint8)),
                    eval_argv(e, pred=e.tmp / "pred"))[-1], 1, ("00001.png", "prediction is 8x8 but its mask is 32x32"),
         ("metrics.json",)),
    Case("evaluate/prediction-label-out-of-range", "good", "metrics.evaluate",
         lambda e: (copy_pred(e), cv2.imwrite(str(e.tmp / "pred/val_000/00001.png"), np.full((32, 32), 9, np.uint8)),
                    eval_argv(e, pred=e.tmp / "pred"))[-1], 1, ("00001.png", "predicted label(s) [9] outside 0..3"),
         ("metrics.json",)),
    Case("evaluate/jpeg-prediction", "weak", "metrics.evaluate",
         lambda e: (copy_pred(e), (e.tmp / "pred/val_000/00001.png").write_bytes(
             cv2.imencode(".jpg", np.ones((32, 32), np.uint8))[1].tobytes()), eval_argv(e, pred=e.tmp / "pred"))[-1],
         1, ("00001.png", "holds JPEG data"), ("metrics.json",)),
    Case("evaluate/frames-without-mask", "weak", "metrics.evaluate", frames_without_mask, 0,
         ("warning:", "00001.png: frame without a mask, not scored", "and 1 more", "warnings 2"),
         (), lambda e, _: _warned(e, "unlabelled_frames", 2)),
    Case("evaluate/extra-predictions", "weak", "metrics.evaluate", extra_predictions, 0,
         ("warning:", "other_video/00000.png", "ignored (and 1 more like it)", "warnings 2"), (), lambda e, _: _warned(e, "extra_predictions", 2)),
    Case("evaluate/out-is-a-directory", "defect", "metrics.evaluate",
         lambda e: ((e.tmp / "metrics.json").mkdir(), eval_argv(e))[-1], 1, ("metrics.json", "is a directory")),
    Case("evaluate/out-under-a-file", "defect", "metrics.evaluate",
         lambda e: ((e.tmp / "file").write_text("x"), eval_argv(e, out=e.tmp / "file/metrics.json"))[-1], 1,
         ("file/metrics.json", "is a file, not a directory")),
    Case("evaluate/full-disk", "defect", "metrics.evaluate", full_disk_eval, 1,
         ("metrics.json", "no space left on device: the disk is full"), ("disk/metrics.json",)),
    Case("evaluate/crafted-flow-checkpoint", "defect", "metrics.evaluate", crafted_flow, 1,
         ("flow.pth", "refused", "write_marker"), ("metrics.json",), marker_absent),
    # ------------------------------------------------------------------ configs: planning (snakemake -n) and the lock
    Case("plan/unknown-experiment", "good", "plan", lambda e: plan(e, "nosuch"), 1, ("no such experiment 'nosuch'",)),
    Case("plan/invalid-yaml", "good", "plan", lambda e: plan(e, experiment(e, "extends: smoke\nseeds: [0,\n")), 1,
         ("exp.yaml", "not valid YAML")),
    Case("plan/unknown-variant", "good", "plan",
         lambda e: plan(e, experiment(e, "extends: smoke\nruns:\n  - {dataset: synthetic, backbone: mit_b0, "
                                         "variants: [sdcpc_p99]}\n")), 1, ("no variant named 'sdcpc_p99'",)),
    Case("plan/duplicate-key-in-registry", "defect", "plan",
         lambda e: plan(e, variants_file=registry_with(e, "sdcpc:\n  family: segformer\n  label: SD-CPC\n"
                                                          "  ref_offsets: []\n")), 1,
         ("variants.yaml", "duplicate key 'sdcpc'", "first on line")),
    Case("plan/duplicate-key-in-experiment", "defect", "plan",
         lambda e: plan(e, experiment(e, "extends: smoke\nseeds: [0]\nseeds: [0, 1]\n")), 1,
         ("exp.yaml", "duplicate key 'seeds' on line 3")),
    Case("plan/experiment-not-utf8", "defect", "plan",
         lambda e: plan(e, experiment(e, b"extends: smoke\ndescription: caf\xe9\n")), 1, ("exp.yaml", "not UTF-8")),
    Case("plan/registry-not-utf8", "defect", "plan",
         lambda e: plan(e, variants_file=registry_with(e, "", raw=b"segformer:\n  family: segformer\n  label: S\xe9\n")),
         1, ("variants.yaml", "not UTF-8", "line 3")),
    Case("plan/train-crop-zero", "defect", "plan",
         lambda e: plan(e, experiment(e, "extends: smoke\ntrain: {iters: 3, options: {crop: [0, 0]}}\n")), 1,
         ("exp.yaml: train/options (for synthetic): crop must be two positive sizes (H, W), got [0, 0]",)),
    Case("plan/variant-option-wrong-type", "defect", "snakemake",
         lambda e: ["-n", "tables", "--nolock", "--config", "experiment=smoke", f"results={e.tmp / 'results'}",
                    f"variants_file={registry_with(e, FOUR_POINTS)}"],
         1, ("variants.yaml", "entry sdcpc_four", "points: expected int, got 'four'"), ("results",)),
    Case("plan/results-folder-in-use", "weak", "snakemake", locked_results, 1,
         ("results/smoke", "in use by pid", "--config results="), ("results/smoke/plan.json",)),
]


def _warned(env, kind, n):
    result = json.loads((env.tmp / "metrics.json").read_text())
    assert result["warnings"][kind] == n, result["warnings"]


# ---------------------------------------------------------------------------------------------- runners
def run_plan(argv):
    """What the Snakefile does with --config KEY=VALUE before any job: one line and exit 1 on a bad plan."""
    from workflow.plan import Plan, PlanError

    try:
        Plan(dict(a.split("=", 1) for a in argv))
    except PlanError as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    return 0


def run(case: Case, argv: list[str], capfd) -> tuple[int, str, str]:
    if case.command == "snakemake":
        exe = shutil.which("snakemake")
        res = subprocess.run(([exe] if exe else [sys.executable, "-m", "snakemake"]) + argv, cwd=REPO,
                             capture_output=True, text=True, timeout=300)
        return res.returncode, res.stdout, res.stderr
    if case.command == "plan":
        rc = run_plan(argv)
    else:
        main = importlib.import_module(case.command).main
        try:
            run_cli(main, argv)
            rc = 0
        except SystemExit as e:
            rc = e.code
    out, err = capfd.readouterr()
    return rc, out, err


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_bad_input(case, shared, tmp_path, monkeypatch, request, capfd):
    monkeypatch.setenv("VSS_THREADS", "1")
    env = Env(tmp_path, shared, monkeypatch, request)
    argv = [str(a) for a in case.setup(env)]
    capfd.readouterr()
    rc, out, err = run(case, argv, capfd)
    text = out + err
    assert rc == case.rc, text[-3000:]
    assert "Traceback" not in text and "[ WARN" not in text, text[-3000:]
    if case.command == "snakemake":   # snakemake's own chatter aside, our line is the only error line
        message = [line for line in err.splitlines() if line.startswith("error:")]
        assert len(message) == 1, err[-3000:]
        message = message[0]
    elif rc == 1 and case.command != "videos.check":
        assert len(err.strip().splitlines()) == 1 and err.startswith("error: "), err
        message = err
    else:
        message = text
    for word in case.words:
        assert word in message, (word, message)
    for pattern in case.absent:
        assert not list(tmp_path.glob(pattern)), (pattern, list(tmp_path.glob(pattern)))
    left = [p for p in tmp_path.rglob("*.tmp*") if p.name.startswith(".")]
    assert not left, left
    if case.after is not None:
        case.after(env, text)


def test_table_counts():
    """The closing note's counts come from this table."""
    before = {k: sum(c.before == k for c in CASES) for k in ("good", "weak", "defect")}
    assert len(CASES) == len({c.id for c in CASES}) == sum(before.values())
    assert before == {"good": 22, "weak": 13, "defect": 33}, before


@pytest.mark.parametrize("family", ["segformer", "sdcpc", "msaf"])
def test_torch_free_option_table_matches_the_family_code(family):
    """common.options reads a family's options from its source; the names must be exactly those its build()
    accepts (its own refusal lists them), and every registry entry must pass."""
    import re

    from common.options import family_options, variant_problems
    from models.registry import FAMILIES, family_module, load_variants

    with pytest.raises(ValueError) as refused:
        family_module(family).build(family_module(family).BACKBONES[0], 4, (), not_an_option=1)
    known = set(re.search(r"known: ([^)]*)\)", str(refused.value)).group(1).split(", "))
    assert set(family_options(FAMILIES[family])) == known
    assert [p for v in load_variants().values() if v.family == family for p in variant_problems(v)] == []
