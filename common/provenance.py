"""Provenance recorded in every result file: where a number came from."""
from __future__ import annotations

import hashlib
import json
import os
import platform
import subprocess
from functools import lru_cache
from importlib import metadata
from pathlib import Path
from typing import Any

REPO_ROOT = Path(__file__).resolve().parents[1]
_PACKAGES = ("torch", "numpy", "fvcore", "snakemake", "pandas", "opencv-python-headless", "pillow")


@lru_cache(maxsize=1)
def git_commit() -> str | None:
    try:
        out = subprocess.run(["git", "-C", str(REPO_ROOT), "rev-parse", "HEAD"], capture_output=True, text=True,
                             timeout=5)
        commit = out.stdout.strip() if out.returncode == 0 else None
        if commit:
            dirty = subprocess.run(["git", "-C", str(REPO_ROOT), "status", "--porcelain", "--untracked-files=no"],
                                   capture_output=True, text=True, timeout=5).stdout.strip()
            return commit + ("-dirty" if dirty else "")
        return None
    except (OSError, subprocess.SubprocessError):
        return None


@lru_cache(maxsize=1)
def package_versions() -> dict[str, str | None]:
    out: dict[str, str | None] = {}
    for name in _PACKAGES:
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            out[name] = None
    return out


def config_hash(config: Any) -> str:
    """Stable short hash of any JSON-able config (key order does not matter)."""
    blob = json.dumps(config, sort_keys=True, default=str).encode()
    return hashlib.sha256(blob).hexdigest()[:16]


@lru_cache(maxsize=1)
def cpu_name() -> str:
    """The CPU model (/proc/cpuinfo on Linux); platform.processor() is often just the architecture."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def device_description(device: Any = None) -> dict[str, Any]:
    import torch

    dev = torch.device(device) if device is not None else torch.device("cpu")
    info: dict[str, Any] = {"device": str(dev), "threads": torch.get_num_threads()}
    if dev.type == "cuda":
        info["device_name"] = torch.cuda.get_device_name(dev)
    else:
        info["device_name"] = cpu_name()
        info["cpu_count"] = os.cpu_count()
    return info


def provenance(config: Any = None, seed: int | None = None, device: Any = None) -> dict[str, Any]:
    """The block every result JSON carries under the key "provenance"."""
    return {
        "git_commit": git_commit(),
        "config_hash": config_hash(config) if config is not None else None,
        "seed": seed,
        "packages": package_versions(),
        "python": platform.python_version(),
        **device_description(device),
    }
