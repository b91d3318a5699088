"""The variant registry: reads config/variants.yaml and builds any entry.

A *family* is a piece of model code (models/segformer.py, models/sdcpc.py, models/msaf.py). Each family
module exposes

    BACKBONES: tuple[str, ...]                       # backbone names it accepts
    def build(backbone, num_classes, ref_offsets, **options) -> torch.nn.Module

A *variant* is a registry entry: a family plus option overrides, optionally on top of a base variant.
``build_model(variant, backbone, num_classes)`` is the one way the rest of the suite makes a model.
"""
from __future__ import annotations

import importlib
import os
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any

from common.cli import InputError
from common.families import FAMILIES as FAMILY_TABLE
from common.inputs import load_yaml

REPO_ROOT = Path(__file__).resolve().parents[1]
VARIANTS_PATH = REPO_ROOT / "config" / "variants.yaml"
SCHEMA_PATH = REPO_ROOT / "config" / "schemas" / "variants.schema.yaml"

# family name -> module that implements it, from the one family table (imported lazily, so reading the
# registry stays cheap)
FAMILIES: dict[str, str] = {name: info.module for name, info in FAMILY_TABLE.items()}


class RegistryError(InputError, ValueError):
    """A malformed registry or an unknown variant/backbone; the message names the file and the entry."""


@dataclass(frozen=True)
class Variant:
    name: str
    family: str
    label: str
    ref_offsets: tuple[int, ...]
    options: dict[str, Any] = field(default_factory=dict)
    base: str | None = None
    tables: tuple[str, ...] = ()
    description: str = ""

    @property
    def num_frames(self) -> int:
        """Frames in one clip: the references plus the target."""
        return len(self.ref_offsets) + 1

    @property
    def clip_offsets(self) -> tuple[int, ...]:
        """Offsets of every clip frame relative to the target, time order, target (0) last."""
        return tuple(self.ref_offsets) + (0,)


def _read_yaml(path: Path) -> Any:
    return load_yaml(path, "variant registry", RegistryError)   # duplicate keys, non-UTF-8: one line


def _validate_schema(raw: Any, path: Path) -> None:
    import jsonschema

    schema = _read_yaml(SCHEMA_PATH)
    errors = sorted(jsonschema.Draft202012Validator(schema).iter_errors(raw), key=lambda e: list(e.path))
    if errors:
        e = errors[0]
        where = "/".join(str(p) for p in e.path) or "(top level)"
        raise RegistryError(f"{path}: entry {where}: {e.message}")


def parse_variants(raw: Any, path: Path | str = "<registry>") -> dict[str, Variant]:
    """Validate and resolve raw registry data (base chains merged) into Variants."""
    path = Path(path)
    _validate_schema(raw, path)
    resolved: dict[str, Variant] = {}

    def resolve(name: str, chain: tuple[str, ...]) -> Variant:
        if name in resolved:
            return resolved[name]
        if name in chain:
            raise RegistryError(f"{path}: entry {name}: base chain loops ({' -> '.join(chain + (name,))})")
        entry = raw[name]
        base = None
        if "base" in entry:
            if entry["base"] not in raw:
                raise RegistryError(f"{path}: entry {name}: base '{entry['base']}' is not a registered variant")
            base = resolve(entry["base"], chain + (name,))
        family = entry.get("family", base.family if base else None)
        if family not in FAMILIES:
            raise RegistryError(
                f"{path}: entry {name}: unknown family '{family}' (known: {', '.join(sorted(FAMILIES))})")
        if base is not None and family != base.family:
            raise RegistryError(f"{path}: entry {name}: family '{family}' differs from its base's '{base.family}'")
        options = dict(base.options) if base else {}
        options.update(entry.get("options") or {})
        refs = entry.get("ref_offsets", list(base.ref_offsets) if base else [])
        if list(refs) != sorted(set(refs)):
            raise RegistryError(f"{path}: entry {name}: ref_offsets must be distinct and in time order, got {refs}")
        v = Variant(
            name=name,
            family=family,
            label=entry["label"],
            ref_offsets=tuple(refs),
            options=options,
            base=entry.get("base"),
            tables=tuple(entry.get("tables", ())),
            description=entry.get("description", ""),
        )
        resolved[name] = v
        return v

    for name in raw:
        resolve(name, ())
    return resolved


@lru_cache(maxsize=8)
def _load_cached(path: str, mtime: float) -> dict[str, Variant]:
    return parse_variants(_read_yaml(Path(path)), path)


def registry_file(path: str | Path | None = None) -> Path:
    """The registry a command reads: ``path`` (a --registry flag), else $VSS_VARIANTS (how the pipeline
    points every command at a user's registry), else config/variants.yaml."""
    return Path(path or os.environ.get("VSS_VARIANTS") or VARIANTS_PATH)


def load_variants(path: str | Path | None = None) -> dict[str, Variant]:
    """All variants of a registry file (``registry_file(path)``), bases resolved."""
    p = registry_file(path)
    if not p.exists():
        raise RegistryError(f"{p}: variant registry not found")
    return dict(_load_cached(str(p), p.stat().st_mtime))


def get_variant(name: str | Variant, path: str | Path | None = None) -> Variant:
    if isinstance(name, Variant):
        return name
    variants = load_variants(path)
    if name not in variants:
        raise RegistryError(
            f"{registry_file(path)}: no variant named '{name}' (known: {', '.join(sorted(variants))})")
    return variants[name]


def family_module(family: str):
    return importlib.import_module(FAMILIES[family])


def family_backbones(family: str) -> tuple[str, ...]:
    return tuple(family_module(family).BACKBONES)


def build_model(variant: str | Variant, backbone: str, num_classes: int, *,
                registry: str | Path | None = None, **overrides):
    """Build any registered variant on a backbone. ``overrides`` are merged over the variant's options
    (used by tests and by experiment configs that shrink a model, never to define a variant)."""
    v = get_variant(variant, registry)
    mod = family_module(v.family)
    if backbone not in mod.BACKBONES:
        raise RegistryError(
            f"variant '{v.name}' (family {v.family}) does not take backbone '{backbone}' "
            f"(valid: {', '.join(mod.BACKBONES)})")
    options = {**v.options, **overrides}
    model = mod.build(backbone, num_classes, ref_offsets=v.ref_offsets, **options)
    model.variant = v  # who built it travels with the model (clip sampling, reports)
    return model
