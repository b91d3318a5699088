"""Check training and variant options before any job runs, without importing torch (a dry run stays fast).

    problems = run_option_problems(variants, train, runs, registry)        # [] when every option is fine
    check_run_options(variants, train, runs, where, PlanError, registry)   # the planner's hook

- Training options (an experiment's ``train: {options: ..., config: FILE}``, engine.train's flags) resolve
  through engine.config exactly as engine.train resolves them, per dataset: unknown names, wrong types and
  values out of range (``crop: [0, 0]``) are caught here, not deep inside augmentation.
- ``clip_options`` keys and types are read from the signatures of videos.clips.ClipDataset and
  videos.augment.sample_geometry; ``model_options`` and every registry entry's ``options`` from the family
  module's option tables (models/registry.py FAMILIES), so ``points: "four"`` fails the dry run in one line.

The family modules import torch, so their options are read from their source (the ``ast`` of the module):
the dict tables ``build()`` checks options against (SD-CPC's SWITCHES and HYPER, MSAF's DEFAULT_OPTIONS) or
the names of a literal set it checks (SegFormer's ``known``), each typed by its default value or by the
annotation of the constructor parameter of the same name. What the source does not say is not checked here
(the job still checks it, in one line): e.g. that SD-CPC's P is a square.
"""
from __future__ import annotations

import ast
import dataclasses
from functools import lru_cache
from pathlib import Path
from typing import Any, Iterable, Mapping

REPO_ROOT = Path(__file__).resolve().parents[1]
_UNKNOWN = object()


@dataclasses.dataclass(frozen=True)
class Option:
    name: str
    types: tuple[str, ...]          # of "bool", "int", "float", "str", "none", "sequence", "mapping"; () = any

    def problem(self, value: Any) -> str | None:
        if not self.types or _kind(value) in self.types or (_kind(value) == "int" and "float" in self.types):
            return None
        want = " or ".join("null" if t == "none" else ("a list" if t == "sequence" else t) for t in self.types)
        return f"{self.name}: expected {want}, got {value!r}"


def _kind(value: Any) -> str:
    if value is None:
        return "none"
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, int):
        return "int"
    if isinstance(value, float):
        return "float"
    if isinstance(value, str):
        return "str"
    if isinstance(value, (list, tuple)):
        return "sequence"
    if isinstance(value, dict):
        return "mapping"
    return type(value).__name__


_ANNOTATION_KINDS = {"bool": "bool", "int": "int", "float": "float", "str": "str", "None": "none",
                     "tuple": "sequence", "list": "sequence", "Sequence": "sequence", "dict": "mapping"}


def _annotation_kinds(node: ast.expr | None) -> tuple[str, ...]:
    """'int | None' -> ('int', 'none'); anything it cannot read -> () (any)."""
    if node is None:
        return ()
    if isinstance(node, ast.Constant) and isinstance(node.value, str):   # a string annotation
        try:
            node = ast.parse(node.value, mode="eval").body
        except SyntaxError:
            return ()
    parts: list[ast.expr] = []

    def split(n):
        if isinstance(n, ast.BinOp) and isinstance(n.op, ast.BitOr):
            split(n.left), split(n.right)
        else:
            parts.append(n)

    split(node)
    kinds = []
    for p in parts:
        base = p.value if isinstance(p, ast.Subscript) else p
        if isinstance(base, ast.Constant) and base.value is None:
            kind = "none"
        else:
            kind = _ANNOTATION_KINDS.get(base.id) if isinstance(base, ast.Name) else None
        if kind is None:
            return ()
        kinds.append(kind)
    return tuple(dict.fromkeys(kinds))


class _Module:
    """The literal facts of one source file: module-level constants and imported names, functions."""

    def __init__(self, path: Path):
        self.path = path
        self.tree = ast.parse(path.read_text(encoding="utf-8"), str(path))
        self.assigns: dict[str, ast.expr] = {}
        self.imports: dict[str, tuple[str, str]] = {}
        for node in self.tree.body:
            if isinstance(node, ast.Assign) and len(node.targets) == 1 and isinstance(node.targets[0], ast.Name):
                self.assigns[node.targets[0].id] = node.value
            elif isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name) and node.value is not None:
                self.assigns[node.target.id] = node.value
            elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                for alias in node.names:
                    self.imports[alias.asname or alias.name] = (node.module, alias.name)

    def value(self, node: ast.expr, depth: int = 0) -> Any:
        """The literal value of an expression, following module constants and repo imports; else _UNKNOWN."""
        if depth > 4:
            return _UNKNOWN
        if isinstance(node, ast.Name):
            if node.id in self.assigns:
                return self.value(self.assigns[node.id], depth + 1)
            if node.id in self.imports:
                other = _module(*self.imports[node.id][:1])
                name = self.imports[node.id][1]
                if other is not None and name in other.assigns:
                    return other.value(other.assigns[name], depth + 1)
            return _UNKNOWN
        try:
            return ast.literal_eval(node)
        except (ValueError, TypeError, SyntaxError, MemoryError, RecursionError):
            return _UNKNOWN

    def table(self, name: str) -> dict[str, ast.expr] | None:
        """A module-level ``NAME = {"key": value, ...}`` or ``NAME = dict(key=value, ...)``: key -> node."""
        node = self.assigns.get(name)
        if isinstance(node, ast.Dict) and all(isinstance(k, ast.Constant) and isinstance(k.value, str)
                                              for k in node.keys):
            return {k.value: v for k, v in zip(node.keys, node.values)}
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id == "dict" \
                and not node.args and all(k.arg for k in node.keywords):
            return {k.arg: k.value for k in node.keywords}
        return None

    def functions(self) -> Iterable[ast.FunctionDef]:
        for node in ast.walk(self.tree):
            if isinstance(node, ast.FunctionDef):
                yield node

    def function(self, qualname: str) -> ast.FunctionDef | None:
        scope: list[ast.stmt] = self.tree.body
        found = None
        for part in qualname.split("."):
            found = next((n for n in scope if isinstance(n, (ast.FunctionDef, ast.ClassDef)) and n.name == part), None)
            if found is None:
                return None
            scope = found.body
        return found if isinstance(found, ast.FunctionDef) else None

    def parameters(self, fn: ast.FunctionDef) -> dict[str, tuple[tuple[str, ...], Any]]:
        """Keyword-capable parameters of ``fn``: name -> (annotation kinds, literal default or _UNKNOWN)."""
        a = fn.args
        positional = a.posonlyargs + a.args
        defaults = [None] * (len(positional) - len(a.defaults)) + list(a.defaults)
        out = {}
        for arg, d in list(zip(positional, defaults)) + list(zip(a.kwonlyargs, a.kw_defaults)):
            out[arg.arg] = (_annotation_kinds(arg.annotation), self.value(d) if d is not None else _UNKNOWN)
        return out


@lru_cache(maxsize=32)
def _module(dotted: str) -> _Module | None:
    path = REPO_ROOT / (dotted.replace(".", "/") + ".py")
    if not path.is_file():
        path = REPO_ROOT / dotted.replace(".", "/") / "__init__.py"
    try:
        return _Module(path)
    except (OSError, SyntaxError, UnicodeDecodeError):
        return None


def _typed(name: str, default: Any, annotated: tuple[str, ...]) -> Option:
    if annotated:
        return Option(name, annotated)
    if default is _UNKNOWN or default is None:
        return Option(name, ())
    kind = _kind(default)
    return Option(name, (kind,) if kind in ("bool", "int", "float", "str", "sequence", "mapping") else ())


@lru_cache(maxsize=8)
def family_options(module: str) -> dict[str, Option] | None:
    """The options a family module's build() accepts, typed, read from its source; None if it cannot tell."""
    mod = _module(module)
    fn = mod.function("build") if mod is not None else None
    if fn is None:
        return None
    annotations: dict[str, tuple[tuple[str, ...], Any]] = {}
    for other in mod.functions():   # constructor parameters of the same name give annotations
        if other is not fn:
            for name, spec in mod.parameters(other).items():
                annotations.setdefault(name, spec)
    defaults: dict[str, Any] = {}
    for node in ast.walk(fn):
        if isinstance(node, ast.Name) and mod.table(node.id) is not None:
            for key, value in mod.table(node.id).items():
                defaults.setdefault(key, mod.value(value))
        elif isinstance(node, ast.Set) and node.elts and all(isinstance(e, ast.Constant) and isinstance(e.value, str)
                                                            for e in node.elts):
            for e in node.elts:
                defaults.setdefault(e.value, _UNKNOWN)
    if not defaults:
        return None
    out = {}
    for name, default in defaults.items():
        kinds, ctor_default = annotations.get(name, ((), _UNKNOWN))
        default = default if default is not _UNKNOWN else ctor_default
        if default is None:      # None means "derive it": null is valid beside the annotated type
            out[name] = Option(name, tuple(dict.fromkeys(kinds + ("none",))) if kinds else ())
        elif kinds and Option(name, kinds).problem(default) is not None:
            out[name] = _typed(name, default, ())    # an annotation of another function's same-named parameter
        else:
            out[name] = _typed(name, default, kinds)
    return out


def signature_options(module: str, qualname: str, skip: Iterable[str] = ()) -> dict[str, Option]:
    """The keyword parameters of a function in the repo's source, typed by annotation or default."""
    mod = _module(module)
    fn = mod.function(qualname) if mod is not None else None
    if fn is None:
        return {}
    return {name: _typed(name, default, kinds) for name, (kinds, default) in mod.parameters(fn).items()
            if name not in set(skip) and name != "self"}


def clip_options() -> dict[str, Option]:
    """What engine.train may pass to ClipDataset beside its own arguments (TrainConfig.clip_options)."""
    opts = signature_options("videos.clips", "ClipDataset.__init__", ("ds", "offsets", "train", "crop"))
    opts.update(signature_options("videos.augment", "sample_geometry", ("rng", "label", "base", "crop")))
    return opts


# ---------------------------------------------------------------------------------------------- checks
def option_problems(values: Mapping[str, Any], known: Mapping[str, Option] | None, what: str) -> list[str]:
    if not isinstance(values, Mapping):
        return [f"{what}: expected a mapping of option: value, got {values!r}"]
    if known is None:
        return []
    problems = []
    unknown = sorted(set(values) - set(known))
    if unknown:
        problems.append(f"{what}: unknown option(s) {', '.join(unknown)} (known: {', '.join(sorted(known))})")
    problems += [f"{what}: {p}" for k, v in values.items() if k in known for p in [known[k].problem(v)] if p]
    return problems


def variant_problems(variant, model_options: Mapping[str, Any] | None = None, registry: str = "registry") -> list[str]:
    """A registry entry's options (plus a run's model_options) against its family's option table."""
    from models.registry import FAMILIES

    known = family_options(FAMILIES[variant.family]) if variant.family in FAMILIES else None
    problems = option_problems(variant.options, known, f"{registry}: entry {variant.name}: options")
    if model_options:
        problems += option_problems(model_options, known, f"train/options/model_options for {variant.name} "
                                                          f"(family {variant.family})")
    return problems


def train_problems(dataset: str, options: Mapping[str, Any], config_file: str | None = None) -> tuple[list[str], Any]:
    """engine.config's resolution of a run's training options for one dataset: (problems, TrainConfig)."""
    from common.cli import InputError
    from engine.config import resolve_config

    try:
        cfg = resolve_config(dataset, config_file, dict(options))
    except InputError as e:   # engine.config names the source; options given here are the experiment's own
        message = str(e).removeprefix("command line: ").removeprefix("training config: ")
        return [f"train/options (for {dataset}): {message}"], None
    return option_problems(cfg.clip_options, clip_options(), "train/options/clip_options"), cfg


def run_option_problems(variants: Mapping[str, Any], train: Mapping[str, Any] | None,
                        runs: Iterable[tuple[str, str]], registry: str = "registry",
                        counted: Iterable[str] = ()) -> list[str]:
    """Every problem of an experiment's options, one line each. ``variants``: name -> models.registry.Variant;
    ``train``: the experiment's ``train:`` block (options, config, iters, checkpoint_every, as the workflow
    passes them to engine.train); ``runs``: the (dataset, variant) pairs it trains; ``registry``: the
    registry file's name for the messages; ``counted``: variants only built (complexity), not trained."""
    train = dict(train or {})
    options = dict(train.get("options") or {})
    for key in ("iters", "checkpoint_every"):   # the workflow passes these as flags too
        if key in train:
            options.setdefault(key, train[key])
    runs = list(runs)
    problems: list[str] = []
    cfgs = {}
    for ds in dict.fromkeys(d for d, _ in runs):
        found, cfgs[ds] = train_problems(ds, options, train.get("config"))
        problems += [p for p in found if p not in problems]
    for name in dict.fromkeys([v for _, v in runs] + list(counted)):
        model_options = next((cfgs[d].model_options for d, v in runs if v == name and cfgs[d] is not None), None)
        if name in variants:
            problems += [p for p in variant_problems(variants[name], model_options, registry) if p not in problems]
    return problems


def check_run_options(variants: Mapping[str, Any], train: Mapping[str, Any] | None, runs: Iterable[tuple[str, str]],
                      where: str, error: type[Exception], registry: str = "registry",
                      counted: Iterable[str] = ()) -> None:
    """The planner's hook: raise ``error`` with the first problem (one line; training-option problems are
    prefixed by ``where``, the experiment file) and a count of the others."""
    problems = run_option_problems(variants, train, runs, registry, counted)
    if problems:
        first = problems[0] if problems[0].startswith(registry) else f"{where}: {problems[0]}"
        more = f" (and {len(problems) - 1} more)" if len(problems) > 1 else ""
        raise error(first + more)
