"""Training hyperparameters: one table of defaults, then per-dataset rows, a YAML file and CLI flags on top.

Resolution order (later wins):
    TrainConfig defaults  ->  the dataset's row (videos/info.py, ``train``)  ->  --config FILE (YAML)  ->  CLI flags

The defaults follow the papers where they speak: AdamW (both), "poly" schedule (both), linear warm-up over
1,500 iterations (MSAF), base LR 6e-5 (MSAF; SegFormer's own recipe too; SD-CPC's paper prints 2e-5, which
no default here sets: an experiment's train block has to), batch of 2 clips per GPU (MSAF). The head
learning-rate multiplier of 10, weight decay 0.01 and no decay on norms/biases are the SegFormer/CFFM mmseg
recipe the video papers build on. Layers that emit deformable sampling positions train at 0.1x the base LR
(``offset_lr_mult``: Deformable DETR's sampling offsets, mmcv's ``dcn_offset_lr_mult``; the model declares
them, engine/schedule.py). Gradient clipping (max norm 1.0) is our choice for stability on tiny synthetic
runs; neither paper states one.

Fields split in two: *identity* fields change the numbers a run produces (a checkpoint written under other
identity values cannot be resumed), *runtime* fields only change how it runs (threads, logging, workers).
The identity fields are what gets hashed into provenance.
"""
from __future__ import annotations

import argparse
import dataclasses
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from common.cli import InputError
from common.inputs import load_yaml, parse_yaml_value
from common.provenance import config_hash

# Environment variable a pipeline job sets to cap torch threads (the CLI flag --threads wins over it).
THREADS_ENV = "VSS_THREADS"


@dataclass
class TrainConfig:
    # ---- schedule and optimiser (identity)
    iters: int = 80_000               # optimiser steps
    batch_size: int = 2               # clips per process (per GPU); the global batch is this x world size
    lr: float = 6e-5                  # base LR of the backbone parameters
    head_lr_mult: float = 10.0        # LR multiplier of every non-backbone parameter (head, temporal modules)
    offset_lr_mult: float = 0.1       # LR multiplier (of the base LR) of deformable offset layers
    weight_decay: float = 0.01        # AdamW decoupled weight decay
    no_decay_norm_bias: bool = True   # no weight decay on 1-D parameters (norm weights, biases)
    betas: tuple[float, float] = (0.9, 0.999)
    eps: float = 1e-8
    warmup_iters: int = 1500          # linear warm-up length (clamped to iters)
    warmup_ratio: float = 1e-6        # LR factor at iteration 0 of warm-up (mmseg convention)
    poly_power: float = 1.0           # lr = base * (1 - it / iters) ** power
    min_lr: float = 0.0               # floor of the poly schedule (absolute, scaled by the group multiplier)
    grad_clip: float | None = 1.0     # max global grad L2 norm; null disables clipping
    amp: bool = True                  # automatic mixed precision; only ever used on CUDA
    amp_dtype: str = "bfloat16"       # bfloat16 (no loss scaling needed) or float16 (with GradScaler)
    cpu_amp: bool = False             # bfloat16 autocast on CPU too (oneDNN's AVX512-BF16 convolutions: ~2x)
    seed: int = 0
    # ---- data (identity)
    crop: tuple[int, int] | None = None   # training crop (H, W); null = the size of the split's first frame
    clip_options: dict[str, Any] = field(default_factory=dict)   # extra ClipDataset keywords (augmentation)
    # ---- model (identity)
    model_options: dict[str, Any] = field(default_factory=dict)  # build_model overrides (e.g. shrink for tests)
    # local backbone weights (never downloaded): a path, a mapping {backbone: path}, or "none" (random init,
    # said explicitly); loaded strictly (models/pretrained.py, docs/weights.md)
    pretrained: str | dict[str, str] | None = None
    pretrained_partial: bool = False  # load what fits of a file that does not match the backbone (reported)
    # ---- runtime (not part of the identity)
    checkpoint_every: int = 1000      # write checkpoint.pt every K iterations (and always at the end)
    log_every: int = 50               # one log line per N iterations when stderr is not a terminal
    threads: int | None = None        # torch threads; null = $VSS_THREADS, else the cores this job may use
    num_workers: int | None = None    # DataLoader workers; null = 0 on CPU (loading is cheap), 4 on CUDA
    device: str = "auto"              # auto | cpu | cuda | cuda:N
    deterministic: bool = True        # torch.use_deterministic_algorithms (warn-only where no such kernel)
    sync_bn: bool = True              # DDP on CUDA: SyncBatchNorm, as mmseg trains (no CPU kernel exists)
    ddp_find_unused: bool = True      # DDP: tolerate parameters a variant's options leave unused
    progress: str = "auto"            # auto (bar on a terminal, lines otherwise) | bar | lines | none
    validate_every: int | None = None  # val-split mIoU every K iterations, logged as val_miou (engine/validation.py)
    validate_final: bool = True       # ... and after the last one (off when engine.validate scores the final model)


RUNTIME_FIELDS = frozenset({"checkpoint_every", "log_every", "threads", "num_workers", "device",
                            "sync_bn", "ddp_find_unused", "progress", "validate_every", "validate_final"})


_FIELDS = {f.name: f for f in dataclasses.fields(TrainConfig)}


def _coerce(name: str, value: Any, source: str) -> Any:
    """Check and convert one value to the field's type; errors name the source and the key."""
    f = _FIELDS[name]
    default = f.default if f.default is not dataclasses.MISSING else f.default_factory()  # type: ignore[misc]
    kind = str(f.type)
    try:
        if value is None:
            if "None" not in kind:
                raise ValueError("may not be null")
            return None
        if kind.startswith("tuple"):
            if isinstance(value, (str, bytes, dict)):
                raise ValueError(f"needs two numbers, got {value!r}")
            value = tuple(value)
            if len(value) != 2:
                raise ValueError("needs two numbers")
            cast = float if "float" in kind else int
            return tuple(cast(v) for v in value)
        if isinstance(value, dict) and "dict" in kind:
            return {str(k): str(v) for k, v in value.items()} if kind.startswith("str") else dict(value)
        if kind.startswith("dict"):
            raise ValueError("needs a mapping")
        if isinstance(default, bool) or kind.startswith("bool"):
            if isinstance(value, str):
                if value.lower() in ("1", "true", "yes", "on"):
                    return True
                if value.lower() in ("0", "false", "no", "off"):
                    return False
                raise ValueError(f"not a boolean: {value!r}")
            if not isinstance(value, bool):
                raise ValueError(f"not a boolean: {value!r}")
            return value
        if kind.startswith("int"):
            if isinstance(value, float) and not value.is_integer():
                raise ValueError(f"not an integer: {value!r}")
            return int(value)
        if kind.startswith("float"):
            return float(value)
        return str(value)
    except (TypeError, ValueError) as e:
        raise InputError(f"{source}: {name}: {e}") from None


def _check(cfg: TrainConfig, source: str) -> TrainConfig:
    problems = []
    if cfg.iters < 1:
        problems.append("iters must be >= 1")
    if cfg.batch_size < 1:
        problems.append("batch_size must be >= 1")
    if cfg.lr <= 0:
        problems.append("lr must be > 0")
    if cfg.checkpoint_every < 1:
        problems.append("checkpoint_every must be >= 1")
    if cfg.log_every < 1:
        problems.append("log_every must be >= 1")
    if cfg.validate_every is not None and cfg.validate_every < 1:
        problems.append("validate_every must be >= 1 or null")
    if cfg.warmup_iters < 0:
        problems.append("warmup_iters must be >= 0")
    if cfg.threads is not None and cfg.threads < 1:
        problems.append("threads must be >= 1")
    if cfg.amp_dtype not in ("bfloat16", "float16"):
        problems.append("amp_dtype must be bfloat16 or float16")
    if cfg.cpu_amp and cfg.amp_dtype != "bfloat16":
        problems.append("cpu_amp needs amp_dtype bfloat16 (CPU autocast has no float16 loss scaling)")
    if cfg.progress not in ("auto", "bar", "lines", "none"):
        problems.append("progress must be auto, bar, lines or none")
    problems += _check_ranges(cfg)
    if problems:
        raise InputError(f"{source}: " + "; ".join(problems))
    return cfg


def _check_ranges(cfg: TrainConfig) -> list[str]:
    """Values that pass their type but would fail (or silently misbehave) deep inside a run."""
    out = []
    if cfg.crop is not None and min(cfg.crop) < 1:
        out.append(f"crop must be two positive sizes (H, W), got {list(cfg.crop)}")
    if not all(0 <= b < 1 for b in cfg.betas):
        out.append(f"betas must be in [0, 1), got {list(cfg.betas)}")
    for name in ("eps", "head_lr_mult", "poly_power"):
        if not getattr(cfg, name) > 0:
            out.append(f"{name} must be > 0, got {getattr(cfg, name)}")
    for name in ("weight_decay", "min_lr"):
        if not getattr(cfg, name) >= 0:
            out.append(f"{name} must be >= 0, got {getattr(cfg, name)}")
    if not 0 <= cfg.warmup_ratio <= 1:
        out.append(f"warmup_ratio must be in [0, 1], got {cfg.warmup_ratio}")
    if cfg.grad_clip is not None and not cfg.grad_clip > 0:
        out.append(f"grad_clip must be > 0 or null, got {cfg.grad_clip}")
    if cfg.num_workers is not None and cfg.num_workers < 0:
        out.append(f"num_workers must be >= 0, got {cfg.num_workers}")
    return out


def apply_overrides(cfg: TrainConfig, overrides: dict[str, Any], source: str) -> TrainConfig:
    unknown = sorted(set(overrides) - set(_FIELDS))
    if unknown:
        raise InputError(f"{source}: unknown training option(s) {', '.join(unknown)} "
                         f"(known: {', '.join(_FIELDS)})")
    values = {k: _coerce(k, v, source) for k, v in overrides.items()}
    return dataclasses.replace(cfg, **values)


def read_config_file(path: str | os.PathLike) -> dict[str, Any]:
    path = Path(path)
    try:
        raw = load_yaml(path, "config file")   # duplicate keys, non-UTF-8: one line
    except FileNotFoundError:
        raise InputError(f"{path}: config file not found") from None
    except yaml.YAMLError as e:
        raise InputError(f"{path}: not valid YAML: {str(e).splitlines()[0]}") from None
    if raw is None:
        return {}
    if not isinstance(raw, dict):
        raise InputError(f"{path}: a training config must be a mapping of option: value")
    # An experiment file may keep the training block under a `train:` key beside other stages' keys.
    if "train" in raw and isinstance(raw["train"], dict) and not (set(raw) - {"train"}) & set(_FIELDS):
        raw = raw["train"]
    return raw


def resolve_config(dataset: str | None = None, config_file: str | os.PathLike | None = None,
                   cli: dict[str, Any] | None = None) -> TrainConfig:
    """Defaults -> dataset row -> YAML file -> CLI values (None entries in ``cli`` mean 'not given')."""
    from videos.info import DATASETS

    cfg = TrainConfig()
    if dataset in DATASETS:   # the dataset's training defaults (crops, the synthetic set's short schedule)
        cfg = apply_overrides(cfg, DATASETS[dataset].train, f"videos/info.py DATASETS[{dataset}].train")
    if config_file is not None:
        cfg = apply_overrides(cfg, read_config_file(config_file), str(config_file))
    if cli:
        cfg = apply_overrides(cfg, {k: v for k, v in cli.items() if v is not None}, "command line")
    return _check(cfg, str(config_file) if config_file else "training config")


def to_dict(cfg: TrainConfig) -> dict[str, Any]:
    """Plain JSON/YAML-able form (tuples as lists)."""
    out = dataclasses.asdict(cfg)
    return {k: list(v) if isinstance(v, tuple) else v for k, v in out.items()}


def identity(cfg: TrainConfig) -> dict[str, Any]:
    """The fields that change a run's numbers: what provenance hashes and resume compares."""
    return {k: v for k, v in to_dict(cfg).items() if k not in RUNTIME_FIELDS}


def identity_hash(cfg: TrainConfig) -> str:
    return config_hash(identity(cfg))


def from_dict(d: dict[str, Any]) -> TrainConfig:
    """Rebuild a config stored in a checkpoint (unknown keys from newer code are an error, not dropped)."""
    return apply_overrides(TrainConfig(), d, "stored config")


def add_cli_flags(parser: argparse.ArgumentParser, skip: tuple[str, ...] = ()) -> None:
    """One --flag per config field (underscores become dashes); values parse as YAML (`--crop [64,64]`)."""
    group = parser.add_argument_group("training options (override the config file; see engine/config.py)")
    for name, f in _FIELDS.items():
        if name in skip:
            continue
        default = f.default if f.default is not dataclasses.MISSING else f.default_factory()  # type: ignore[misc]
        group.add_argument("--" + name.replace("_", "-"), dest=name, default=None, type=parse_yaml_value,
                           metavar="V", help=f"default {default!r}")


def cli_values(ns: argparse.Namespace) -> dict[str, Any]:
    return {k: getattr(ns, k) for k in _FIELDS if hasattr(ns, k) and getattr(ns, k) is not None}


def allotted_cores() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


def resolve_threads(threads: int | None) -> int:
    """Torch threads for this job: the flag, else $VSS_THREADS, else the cores the job may run on.

    A pipeline running several jobs at once on a small machine gives each job `--threads {threads}` (or sets
    VSS_THREADS), so jobs never oversubscribe the cores between them."""
    if threads is not None:
        return int(threads)
    env = os.environ.get(THREADS_ENV)
    if env:
        try:
            n = int(env)
        except ValueError:
            raise InputError(f"${THREADS_ENV}: not an integer: {env!r}") from None
        if n < 1:
            raise InputError(f"${THREADS_ENV}: must be >= 1, got {n}")
        return n
    return allotted_cores()


def apply_threads(threads: int | None) -> int:
    import torch

    n = resolve_threads(threads)
    torch.set_num_threads(n)
    try:
        torch.set_num_interop_threads(1)   # only allowed before the first parallel op; best effort
    except RuntimeError:
        pass
    return n
