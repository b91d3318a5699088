"""Train one registered variant on one dataset; resumable, deterministic on CPU, DDP under torchrun.

    python -m engine.train --variant V --backbone B --dataset D --root ROOT --out DIR
                           [--iters N --seed S --checkpoint-every K --config FILE --threads T ...]

Writes DIR/checkpoint.pt every K iterations and at the end (atomic), then DIR/model.pt (weights + how to
rebuild the model + resolved config + provenance) and DIR/train_log.csv (one row per iteration: each loss,
lr, clips/s, data-loading time, and the model's ``diagnostics()``, e.g. the in-frame fraction of every
deformable sampler, which the log lines print too, with a warning once one falls below 0.5; with
``validate_every`` the val-split mIoU on the validated iterations, engine/validation.py). Every
hyperparameter is a field of engine.config.TrainConfig and can be set in the YAML file or as --field-name.

Resume: rerunning the same command continues from DIR/checkpoint.pt. A checkpoint written under other
settings (the training config's identity fields, the variant/backbone/dataset, the variant's resolved
definition and its family's code version (common/codeversion.py), the ``--data-stamp`` of videos.check) is
refused, or with ``--on-mismatch restart`` (what the pipeline passes) dropped and the run
started over. Each iteration's samples (which clip,
which augmentation) and the model's own randomness (dropout, drop-path) are seeded from (seed, iteration,
rank), never from a running random stream, so a resumed run sees exactly the batches an uninterrupted run
would: on CPU its final weights are bit-identical.

DDP: under torchrun (``torchrun --standalone --nproc_per_node=N -m engine.train ...``, what the pipeline runs
for ``train: {gpus: N}``) each process trains on its own GPU (gloo on CPU) with --batch-size clips, so the
global batch is N x batch_size; BatchNorm becomes SyncBatchNorm on CUDA (``sync_bn``); rank 0 writes.

Threads: --threads N (or $VSS_THREADS) caps torch threads so parallel pipeline jobs do not oversubscribe
the machine; default: the cores this process may run on.

A loss that is NaN or infinite stops the run (exit 1) naming the iteration; checkpoint.pt keeps the last
good state. So does a write that fails (full disk, read-only folder): one line naming the file, the cause
and the iteration checkpoint.pt still holds. Temporaries a killed run left in DIR are removed at the start.
"""
from __future__ import annotations

import argparse
import contextlib
import csv
import dataclasses
import io
import math
import os
import random
import sys
import time
import warnings
from pathlib import Path
from typing import Any, Callable

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset, Sampler

from common.cli import InputError, run_cli
from common.codeversion import code_version
from common.device import pick_device
from common.io import OutputError, check_output_dir, remove_stale_temporaries, write_text
from common.provenance import provenance
from engine import checkpoint as ckpt_io
from engine.config import (TrainConfig, add_cli_flags, apply_threads, cli_values, identity, identity_hash,
                           resolve_config, to_dict)
from engine.schedule import make_scheduler, param_groups
from videos.info import DATASET_NAMES

CHECKPOINT = "checkpoint.pt"
MODEL = "model.pt"
LOG = "train_log.csv"


class NonFiniteLoss(RuntimeError):
    """The loss became NaN/inf; the message names the iteration and the checkpoint kept."""


class TrainingInterrupted(RuntimeError):
    """Raised by ``stop_after`` (tests): simulates a run killed after some iterations."""


# ---------------------------------------------------------------------------------------------- seeding
def derive_seed(seed: int, iteration: int, rank: int, stream: int) -> int:
    """A 63-bit seed that depends only on (seed, iteration, rank, stream): stream 0 = the model's own
    randomness, stream 1 + b = batch element b."""
    return int(np.random.SeedSequence([seed, iteration, rank, stream]).generate_state(1, np.uint64)[0]) >> 1


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed % (1 << 32))
    torch.manual_seed(seed)


@contextlib.contextmanager
def seeded_rngs(seed: int):
    """Seed python/numpy/torch for one sample, then put the caller's RNG states back."""
    py, npy = random.getstate(), np.random.get_state()
    with torch.random.fork_rng(devices=[]):
        seed_everything(seed)
        try:
            yield
        finally:
            random.setstate(py)
            np.random.set_state(npy)


def set_determinism(enabled: bool, device: torch.device) -> None:
    if device.type == "cuda":
        torch.backends.cudnn.benchmark = False
        torch.backends.cudnn.deterministic = enabled
    # warn_only: ops without a deterministic kernel (some CUDA backward passes) warn instead of failing
    torch.use_deterministic_algorithms(enabled, warn_only=True)


# ---------------------------------------------------------------------------------------------- data
class SeededItems(Dataset):
    """Wraps a ClipDataset: item (index, seed) is dataset[index] drawn with every RNG seeded by ``seed``,
    so random crops/flips/scales are a function of the key alone (also inside DataLoader workers)."""

    def __init__(self, dataset: Dataset):
        self.dataset = dataset

    def __len__(self) -> int:
        return len(self.dataset)

    def __getitem__(self, key: tuple[int, int]):
        index, seed = key
        with seeded_rngs(seed):
            return self.dataset[index]


class IterationBatches(Sampler):
    """Batch keys for iterations start..stop-1: element b of iteration i is (index, seed) with the seed
    derived from (seed, i, rank, 1 + b) and the index uniform over the dataset's (labelled) targets."""

    def __init__(self, n: int, seed: int, start: int, stop: int, batch_size: int, rank: int = 0):
        if n < 1:
            raise InputError("the training set has no labelled target frame")
        self.n, self.seed, self.start, self.stop, self.batch_size, self.rank = n, seed, start, stop, batch_size, rank

    def keys(self, iteration: int) -> list[tuple[int, int]]:
        out = []
        for b in range(self.batch_size):
            s = derive_seed(self.seed, iteration, self.rank, 1 + b)
            out.append((int(s % self.n), s))
        return out

    def __iter__(self):
        for it in range(self.start, self.stop):
            yield self.keys(it)

    def __len__(self) -> int:
        return max(0, self.stop - self.start)


def make_loader(dataset: Dataset, cfg: TrainConfig, start: int, rank: int, device: torch.device) -> DataLoader:
    workers = cfg.num_workers if cfg.num_workers is not None else (0 if device.type == "cpu" else 4)
    sampler = IterationBatches(len(dataset), cfg.seed, start, cfg.iters, cfg.batch_size, rank)
    return DataLoader(SeededItems(dataset), batch_sampler=sampler, num_workers=workers,
                      pin_memory=device.type == "cuda", persistent_workers=False,
                      worker_init_fn=_worker_init if workers else None)


def _worker_init(_: int) -> None:
    torch.set_num_threads(1)   # workers decode and augment; torch threads there only oversubscribe


def open_training_set(dataset: str, root: str | os.PathLike, clip_offsets: tuple[int, ...], cfg: TrainConfig):
    """(ClipDataset over the train split, num_classes)."""
    from videos.clips import ClipDataset
    from videos.datasets import open_dataset

    ds = open_dataset(dataset, root, "train")
    if cfg.crop:
        crop = tuple(cfg.crop)
    else:
        # the random rescale changes frame sizes, so a batch needs a fixed crop: default to the frame size
        video = next((v for v in ds.videos if v.labelled), None)
        if video is None:
            raise InputError(f"{ds.root}: the {dataset} train split has no labelled frame")
        crop = tuple(ds.read_image(video, video.labelled[0]).shape[:2])
    try:
        clips = ClipDataset(ds, clip_offsets, train=True, crop=crop, **cfg.clip_options)
        with seeded_rngs(0):   # one probe sample: bad augmentation options fail here, not mid-run
            clips[0]
    except (TypeError, ValueError) as e:   # no labelled frame, or a clip_options key ClipDataset refuses
        raise InputError(f"{dataset} train split at {root} (clip_options {cfg.clip_options}): {e}") from None
    return clips, ds.num_classes


# ---------------------------------------------------------------------------------------------- distributed
class Dist:
    """Process-group facts; a single process is rank 0 of 1."""

    def __init__(self, cfg: TrainConfig):
        self.world = int(os.environ.get("WORLD_SIZE", "1"))
        self.rank = int(os.environ.get("RANK", "0"))
        self.local_rank = int(os.environ.get("LOCAL_RANK", str(self.rank)))
        self.owns_group = False
        if self.world > 1:
            import torch.distributed as dist

            use_cuda = torch.cuda.is_available() and not str(cfg.device).startswith("cpu")
            self.device = torch.device(f"cuda:{self.local_rank}") if use_cuda else torch.device("cpu")
            if use_cuda:
                torch.cuda.set_device(self.device)
            if not dist.is_initialized():
                dist.init_process_group("nccl" if use_cuda else "gloo")
                self.owns_group = True
        else:
            self.device = pick_device(cfg.device)

    @property
    def main(self) -> bool:
        return self.rank == 0

    def barrier(self) -> None:
        if self.world > 1:
            import torch.distributed as dist

            dist.barrier()

    def mean(self, values: torch.Tensor) -> torch.Tensor:
        if self.world > 1:
            import torch.distributed as dist

            values = values.clone()
            dist.all_reduce(values)
            values /= self.world
        return values

    def broadcast_buffers(self, model: torch.nn.Module) -> None:
        """Give every rank rank 0's buffers (BatchNorm running statistics drift apart per rank without
        SyncBatchNorm, which needs CUDA), so all ranks end with the same model."""
        if self.world > 1:
            import torch.distributed as dist

            for b in model.buffers():
                dist.broadcast(b, 0)

    def close(self) -> None:
        if self.owns_group:
            import torch.distributed as dist

            dist.destroy_process_group()


# ---------------------------------------------------------------------------------------------- helpers
def model_diagnostics(model: torch.nn.Module) -> dict[str, float]:
    """The model's ``diagnostics()`` hook (docs/architecture.md): figures of its learned mechanisms since the
    last call, e.g. the in-frame fraction of each deformable sampler ({} for models without one)."""
    hook = getattr(model, "diagnostics", None)
    return dict(hook()) if callable(hook) else {}


# an in-frame fraction below this is said once in the log: the sampler's points are leaving the map
IN_FRAME_WARNING = 0.5


def write_log(path: Path, rows: list[dict]) -> None:
    keys: list[str] = ["iteration"]
    for row in rows:
        keys += [k for k in row if k not in keys]
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=keys, lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    write_text(path, buf.getvalue())


class Progress:
    """tqdm bar on a terminal, else one line per ``every`` iterations on stderr."""

    def __init__(self, mode: str, start: int, total: int, every: int, enabled: bool):
        if mode == "auto":
            mode = "bar" if sys.stderr.isatty() else "lines"
        self.mode = mode if enabled else "none"
        self.every, self.total = every, total
        self.bar = None
        if self.mode == "bar":
            from tqdm import tqdm

            self.bar = tqdm(total=total, initial=start, unit="it", dynamic_ncols=True)

    def update(self, row: dict) -> None:
        losses = " ".join(f"{k[5:]} {v:.4f}" for k, v in row.items() if k.startswith("loss_"))
        losses += "".join(f" {k} {v:.3f}" for k, v in row.items() if k.startswith(("inframe_", "ref_attention")))
        if self.bar is not None:
            self.bar.set_postfix_str(f"{losses} lr {row['lr']:.2e} {row['clips_per_s']:.1f} clips/s", refresh=False)
            self.bar.update(1)
        elif self.mode == "lines" and (row["iteration"] % self.every == 0 or row["iteration"] == self.total):
            print(f"iter {row['iteration']}/{self.total} {losses} lr {row['lr']:.3e} "
                  f"{row['clips_per_s']:.2f} clips/s data {row['data_time_s'] * 1e3:.1f} ms", file=sys.stderr,
                  flush=True)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()


# ---------------------------------------------------------------------------------------------- training
def train(cfg: TrainConfig, out: str | os.PathLike, *, variant: str, backbone: str, dataset: str,
          root: str | os.PathLike | None, registry: str | os.PathLike | None = None,
          model_factory: Callable[[int], torch.nn.Module] | None = None,
          data_factory: Callable[[], tuple[Dataset, int]] | None = None,
          stop_after: int | None = None, data_stamp: str | None = None,
          on_mismatch: str = "refuse") -> dict[str, Any]:
    """Run (or resume) one training run into ``out``. Returns a summary dict.

    ``registry``: the variant registry file (default config/variants.yaml). ``model_factory(num_classes)``
    and ``data_factory() -> (clip dataset, num_classes)`` replace the registry model and the on-disk
    dataset (tests use a tiny model). ``stop_after`` raises
    TrainingInterrupted once that many iterations are complete (a simulated kill). ``data_stamp``: what
    identifies the data (joins the checkpoint's identity); ``on_mismatch``: "refuse" or "restart" a
    checkpoint written under other settings."""
    out = check_output_dir(out, "run folder")   # before any data or model is read
    remove_stale_temporaries(out)
    if cfg.deterministic:   # deterministic cuBLAS needs this before the first CUDA context exists
        os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
    dist = Dist(cfg)
    device = dist.device
    threads_before = torch.get_num_threads()
    threads = apply_threads(cfg.threads)
    # put the global determinism switch and thread count back afterwards: train() also runs inside other
    # processes (tests, benchmarks)
    was_deterministic = (torch.are_deterministic_algorithms_enabled(),
                         torch.is_deterministic_algorithms_warn_only_enabled())
    set_determinism(cfg.deterministic, device)
    try:
        return _train(cfg, out, dist, device, threads, variant=variant, backbone=backbone, dataset=dataset,
                      root=root, registry=registry, model_factory=model_factory, data_factory=data_factory,
                      stop_after=stop_after, data_stamp=data_stamp, on_mismatch=on_mismatch)
    finally:
        torch.use_deterministic_algorithms(was_deterministic[0], warn_only=was_deterministic[1])
        torch.set_num_threads(threads_before)
        dist.close()


def _train(cfg, out, dist, device, threads, *, variant, backbone, dataset, root, registry, model_factory,
           data_factory, stop_after, data_stamp, on_mismatch):
    from models.registry import build_model, get_variant

    spec = None
    if model_factory is None:
        spec = get_variant(variant, registry)    # unknown variant: RegistryError names the registry
        clip_offsets = spec.clip_offsets
    else:
        clip_offsets = (0,)
    if data_factory is not None:
        train_set, num_classes = data_factory()
    else:
        train_set, num_classes = open_training_set(dataset, root, clip_offsets, cfg)

    seed_everything(cfg.seed)   # model initialisation is a function of the seed
    if model_factory is not None:
        model = model_factory(num_classes)
    else:
        try:
            model = build_model(spec, backbone, num_classes, **cfg.model_options)
        except (TypeError, ValueError) as e:   # e.g. a model_options key the family does not know
            raise InputError(f"building {variant} on {backbone} (model_options {cfg.model_options}): {e}") from None
    from models.pretrained import describe, load_pretrained
    pretrained_report = None
    if cfg.pretrained is not None:   # strict: a file that does not fit the backbone is a one-line error
        pretrained_report = load_pretrained(model, cfg.pretrained, backbone, partial=cfg.pretrained_partial)
        pretrained_report["summary"] = describe(pretrained_report)
        if dist.main:
            print(pretrained_report["summary"], file=sys.stderr)
    model.to(device).train()

    with warnings.catch_warnings():
        warnings.simplefilter("always")
        groups = param_groups(model, cfg.lr, cfg.head_lr_mult, cfg.weight_decay, cfg.no_decay_norm_bias,
                              cfg.offset_lr_mult)
    # foreach: one multi-tensor update per group, the implementation torch picks on CUDA, so CPU and GPU
    # runs share it (on the 2-core CPU: SD-CPC steps ~5% faster, MSAF within noise)
    optimizer = torch.optim.AdamW(groups, lr=cfg.lr, betas=tuple(cfg.betas), eps=cfg.eps,
                                  weight_decay=cfg.weight_decay, foreach=True)
    scheduler = make_scheduler(optimizer, cfg.iters, cfg.warmup_iters, cfg.warmup_ratio, cfg.poly_power,
                               cfg.min_lr, cfg.lr)
    use_amp = cfg.amp and (device.type == "cuda" or (cfg.cpu_amp and device.type == "cpu"))
    amp_dtype = torch.bfloat16 if cfg.amp_dtype == "bfloat16" else torch.float16
    scaler = torch.amp.GradScaler("cuda") if use_amp and amp_dtype == torch.float16 else None

    run_meta = {"variant": variant, "backbone": backbone, "dataset": dataset, "num_classes": num_classes}
    if spec is not None:   # a changed registry entry or model code is another run: never resumed into
        run_meta["model"] = {"family": spec.family, "ref_offsets": list(spec.ref_offsets), "options": spec.options,
                             "code": code_version(spec.family)}
    if data_stamp is not None:
        run_meta["data"] = data_stamp
    ident = identity(cfg)
    ckpt_path, log_rows, start = out / CHECKPOINT, [], 0
    state = ckpt_io.load_checkpoint(ckpt_path) if ckpt_path.exists() else None
    if state is not None and _stale(state, ckpt_path, ident, run_meta, on_mismatch, dist.main):
        ckpt_path.unlink(missing_ok=True)   # every rank decides alike; the first one removes it
        state = None
    if state is not None:
        start = ckpt_io.restore_checkpoint(state, model=model, optimizer=optimizer, scheduler=scheduler,
                                           scaler=scaler)
        log_rows = list(state["log_rows"])
        if dist.main:
            print(f"resuming {ckpt_path} at iteration {start}/{cfg.iters}", file=sys.stderr)

    net = model
    if dist.world > 1:
        if cfg.sync_bn and device.type == "cuda":
            net = model = torch.nn.SyncBatchNorm.convert_sync_batchnorm(model)
        net = torch.nn.parallel.DistributedDataParallel(
            model, device_ids=[device.index] if device.type == "cuda" else None,
            find_unused_parameters=cfg.ddp_find_unused)

    last_saved = start if ckpt_path.exists() else None

    def kept() -> str:
        return (f"{ckpt_path} keeps iteration {last_saved}" if last_saved is not None
                else "no checkpoint was written yet")

    def save(iteration: int) -> None:
        nonlocal last_saved
        if dist.main:
            try:
                ckpt_io.save_checkpoint(ckpt_path, model=model, optimizer=optimizer, scheduler=scheduler,
                                        scaler=scaler, iteration=iteration, config=ident, log_rows=log_rows,
                                        extra={"run": run_meta})
            except OutputError as e:
                raise OutputError(f"{e}; stopped at iteration {iteration}, {kept()}", e.cause) from None
            last_saved = iteration
            try:
                write_log(out / LOG, log_rows)
            except OutputError as e:
                raise OutputError(f"{e}; stopped at iteration {iteration}, {kept()}", e.cause) from None
        last_saved = iteration
        dist.barrier()

    validator = _validator(cfg, dataset, root, clip_offsets, device, data_factory) if dist.main else None
    params = [p for p in model.parameters() if p.requires_grad]
    progress = Progress(cfg.progress, start, cfg.iters, cfg.log_every, dist.main)
    loader = iter(make_loader(train_set, cfg, start, dist.rank, device))
    clips_per_iter = cfg.batch_size * dist.world
    warned: set[str] = set()
    wall = time.perf_counter()
    try:
        for it in range(start, cfg.iters):
            t0 = time.perf_counter()
            clip, target = next(loader)
            clip = clip.to(device, non_blocking=True)
            target = target.to(device, non_blocking=True)
            t_data = time.perf_counter() - t0
            # the model's own randomness (dropout, drop-path) is a function of (seed, iteration, rank)
            torch.manual_seed(derive_seed(cfg.seed, it, dist.rank, 0))
            with torch.autocast(device.type, dtype=amp_dtype) if use_amp else contextlib.nullcontext():
                outputs = net(clip)
                losses = model.loss(outputs, target)
            names = ["total"] + sorted(k for k in losses if k != "total")
            values = dist.mean(torch.stack([losses[k].detach().float() for k in names]))
            values = values.tolist()
            if not all(math.isfinite(v) for v in values):
                bad = ", ".join(f"{k}={v}" for k, v in zip(names, values) if not math.isfinite(v))
                raise NonFiniteLoss(f"loss is not finite at iteration {it + 1} ({bad}); stopped, {kept()}")
            optimizer.zero_grad(set_to_none=True)
            total = losses["total"]
            if scaler is not None:
                scaler.scale(total).backward()
                scaler.unscale_(optimizer)
            else:
                total.backward()
            if cfg.grad_clip is not None:
                torch.nn.utils.clip_grad_norm_(params, cfg.grad_clip)
            lr = optimizer.param_groups[0]["lr"] / optimizer.param_groups[0].get("lr_mult", 1.0)
            if scaler is not None:
                scaler.step(optimizer)
                scaler.update()
            else:
                optimizer.step()
            scheduler.step()
            if device.type == "cuda":
                torch.cuda.synchronize(device)
            dt = time.perf_counter() - t0
            diag = model_diagnostics(model)
            row = {"iteration": it + 1, **{f"loss_{k}": v for k, v in zip(names, values)}, "lr": lr,
                   "clips_per_s": clips_per_iter / dt, "data_time_s": t_data, "step_time_s": dt, **diag}
            low = {k: v for k, v in diag.items() if k.startswith("inframe_") and v < IN_FRAME_WARNING}
            if dist.main and set(low) - warned:
                warned.update(low)
                print(f"warning: iteration {it + 1}: " + ", ".join(f"{k} {v:.2f}" for k, v in low.items())
                      + f" < {IN_FRAME_WARNING}: deformable samples are leaving the feature map", file=sys.stderr)
            if validator is not None and _validation_due(cfg, it + 1):
                row.update(validator(model))   # eval mode inside, train mode after; no RNG is drawn
                print(f"iter {it + 1}/{cfg.iters}: val mIoU {100 * row['val_miou']:.2f} "
                      f"({row['val_s']:.1f} s)", file=sys.stderr, flush=True)
            log_rows.append(row)
            progress.update(row)
            if (it + 1) % cfg.checkpoint_every == 0 or it + 1 == cfg.iters:
                save(it + 1)
            if stop_after is not None and it + 1 >= stop_after and it + 1 < cfg.iters:
                raise TrainingInterrupted(f"stopped after iteration {it + 1}")
    finally:
        progress.close()
    elapsed = time.perf_counter() - wall
    dist.broadcast_buffers(model)

    prov = provenance(ident, cfg.seed, device)
    prov.update({"train_config_hash": identity_hash(cfg), "world_size": dist.world, "threads": threads,
                 "backbone_init": pretrained_report["summary"] if pretrained_report else "random init"})
    if dist.main:
        try:
            ckpt_io.save_model(out / MODEL, model=model, variant=variant, backbone=backbone,
                               num_classes=num_classes, dataset=dataset, model_options=cfg.model_options,
                               config=to_dict(cfg), provenance=prov, iterations=cfg.iters,
                               variant_spec=dataclasses.asdict(spec) if spec is not None else None)
            write_log(out / LOG, log_rows)
        except OutputError as e:   # rerunning the command after freeing space only writes these files
            raise OutputError(f"{e}; training finished, {kept()}", e.cause) from None
    dist.barrier()
    new_rows = log_rows[-(cfg.iters - start):] if cfg.iters > start else []
    data_time = sum(r["data_time_s"] for r in new_rows)
    return {"iterations": cfg.iters, "resumed_from": start, "elapsed_s": elapsed,
            "clips_per_s": (len(new_rows) * clips_per_iter / elapsed) if new_rows else None,
            "data_share": (data_time / elapsed) if new_rows else None, "threads": threads,
            "device": str(device), "model": model}


def _validator(cfg: TrainConfig, dataset: str, root, clip_offsets, device, data_factory):
    """The periodic validation of ``validate_every`` (engine/validation.py) on the dataset's val split."""
    if not cfg.validate_every:
        return None
    if data_factory is not None or root is None:
        raise InputError("validate_every needs a dataset root with a val split (not an in-memory dataset)")
    from engine.validation import Validator

    try:
        return Validator(dataset, root, clip_offsets, device)
    except ValueError as e:   # no labelled frame in the val split
        raise InputError(f"validate_every: {e}") from None


def _validation_due(cfg: TrainConfig, iteration: int) -> bool:
    if iteration == cfg.iters:
        return cfg.validate_final
    return iteration % cfg.validate_every == 0


def _stale(state: dict, path: Path, ident: dict, run_meta: dict, on_mismatch: str, main: bool) -> bool:
    """True when the checkpoint was written under other settings and is to be dropped ("restart");
    refused with one line naming what differs ("refuse")."""
    differ = sorted(k for k in set(ident) | set(state["config"]) if ident.get(k) != state["config"].get(k))
    differ += sorted(k for k in run_meta if state.get("run", {}).get(k) != run_meta[k])
    if not differ:
        return False
    if on_mismatch != "restart":
        raise InputError(f"{path}: written by a run with other settings ({', '.join(differ)}); "
                         "use another --out or delete the checkpoint to start over")
    if main:
        print(f"{path}: written by a run with other settings ({', '.join(differ)}); starting over", file=sys.stderr)
    return True


# ---------------------------------------------------------------------------------------------- CLI
def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m engine.train", description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--variant", required=True, help="registry name (config/variants.yaml)")
    p.add_argument("--backbone", required=True)
    p.add_argument("--dataset", required=True, choices=DATASET_NAMES)
    p.add_argument("--root", required=True, help="dataset root")
    p.add_argument("--out", required=True, help="run folder (checkpoint.pt, model.pt, train_log.csv)")
    p.add_argument("--config", default=None, help="YAML file of TrainConfig fields (engine/config.py)")
    p.add_argument("--registry", default=None, help="variant registry file (default: $VSS_VARIANTS, else "
                   "config/variants.yaml)")
    p.add_argument("--data-stamp", default=None, help="file identifying the data (videos.check --stamp); a "
                   "checkpoint of a run on other data is not resumed")
    p.add_argument("--on-mismatch", choices=("refuse", "restart"), default="refuse",
                   help="a checkpoint written under other settings: refuse (exit 1) or start over")
    add_cli_flags(p)
    return p


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    cfg = resolve_config(args.dataset, args.config, cli_values(args))
    from common.options import variant_problems
    from models.registry import RegistryError, family_backbones, get_variant, registry_file

    registry = args.registry  # None: models.registry.registry_file resolves $VSS_VARIANTS / the default
    try:
        v = get_variant(args.variant, registry)
    except RegistryError as e:
        raise InputError(str(e)) from None
    if args.backbone not in family_backbones(v.family):
        raise InputError(f"--backbone {args.backbone}: variant {v.name} (family {v.family}) takes "
                         f"{', '.join(family_backbones(v.family))}")
    problems = variant_problems(v, cfg.model_options, str(registry_file(registry)))   # before any data is read
    if problems:
        raise InputError(problems[0])
    try:
        summary = train(cfg, args.out, variant=args.variant, backbone=args.backbone, dataset=args.dataset,
                        root=args.root, registry=registry, data_stamp=_read_stamp(args.data_stamp),
                        on_mismatch=args.on_mismatch)
    except NonFiniteLoss as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    if int(os.environ.get("RANK", "0")) == 0:
        rate = summary["clips_per_s"]
        print(f"trained {args.variant}/{args.backbone} on {args.dataset}: {summary['iterations']} iterations "
              f"(resumed from {summary['resumed_from']}) in {summary['elapsed_s']:.1f} s"
              + (f", {rate:.2f} clips/s, data loading {summary['data_share']:.1%}" if rate else "")
              + f" -> {Path(args.out) / MODEL}", file=sys.stderr)
    return 0


def _read_stamp(path: str | None) -> str | None:
    if path is None:
        return None
    try:
        return Path(path).read_text()
    except OSError as e:
        raise InputError(f"{path}: cannot read the data stamp ({e.strerror})") from None


if __name__ == "__main__":
    run_cli(main)
