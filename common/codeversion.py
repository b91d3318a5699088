"""Which version of a family's model code a result was made with, without importing torch.

    code_version("sdcpc")     # 12 hex digits: sha256 of models/sdcpc.py and every models/ module it imports

The pipeline makes it part of what a family's jobs depend on (a changed SD-CPC module retrains SD-CPC and
nothing else; a changed MiT backbone retrains SegFormer and SD-CPC), and engine.train of what a checkpoint
was written with (a checkpoint of older code is not resumed). The closure is read with ``ast``: every
``import`` and ``from ... import`` of a ``models.*`` module, at any depth (lazy imports in functions too),
and every string literal naming one (tables of modules imported by name, e.g. models/backbones/__init__.py).
The shared training loop (engine/) is not part of it: a change there concerns every family alike.
"""
from __future__ import annotations

import ast
import hashlib
import re
from functools import lru_cache
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]
TRACKED_PACKAGES = ("models",)
# What the table and plot jobs read besides the results: the report code and the tables, rules and path
# templates it imports (metrics/info.py's columns, engine/convergence.py's rule, workflow/plan.py's layout, ...)
REPORT_PACKAGES = ("reports", "metrics", "engine", "common", "workflow", "videos")
_MODULE_NAME = re.compile(r"^[a-z_][a-z0-9_]*(\.[a-z_][a-z0-9_]*)+$")


def module_file(name: str) -> Path | None:
    """The source file of a module of this repository (a package's __init__.py), else None."""
    path = REPO_ROOT.joinpath(*name.split("."))
    if (path / "__init__.py").is_file():
        return path / "__init__.py"
    if path.with_suffix(".py").is_file():
        return path.with_suffix(".py")
    return None


def _tracked(name: str | None, packages: tuple[str, ...]) -> bool:
    return bool(name) and name.split(".")[0] in packages


def imported_modules(path: Path, name: str, packages: tuple[str, ...] = TRACKED_PACKAGES) -> set[str]:
    """Modules of ``packages`` the source of module ``name`` (at ``path``) imports or names."""
    tree = syntax_tree(path)
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parts = package.split(".")[: len(package.split(".")) - (node.level - 1)]
                base = ".".join(parts + ([node.module] if node.module else []))
            found.add(base)
            found.update(f"{base}.{a.name}" for a in node.names)   # `from pkg import submodule`
        elif isinstance(node, ast.Constant) and isinstance(node.value, str) and _MODULE_NAME.match(node.value):
            found.add(node.value)
    return {m for m in found if _tracked(m, packages) and module_file(m) is not None}


@lru_cache(maxsize=None)
def module_closure(name: str, packages: tuple[str, ...] = TRACKED_PACKAGES) -> tuple[Path, ...]:
    """Source files of module ``name`` and of every module of ``packages`` it reaches, sorted."""
    seen: dict[str, Path] = {}
    todo = [name]
    while todo:
        mod = todo.pop()
        path = module_file(mod)
        if mod in seen or path is None:
            continue
        seen[mod] = path
        todo.extend(imported_modules(path, mod, packages) - set(seen))
    return tuple(sorted(set(seen.values())))


@lru_cache(maxsize=None)
def code_version(family: str) -> str:
    """12 hex digits of sha256 over (relative path, syntax tree) of the family module's closure
    (``models.<family>``). The tree (``ast.dump``) leaves out comments and layout, so only a change of code
    (docstrings included) is a new version; paths are relative, so a moved clone has the same version."""
    files = module_closure(f"models.{family}")
    if not files:
        raise ValueError(f"models/{family}.py: no such family module")
    return _digest(files)


@lru_cache(maxsize=None)
def report_code_version() -> str:
    """12 hex digits, the same way, over the closure of the two report CLIs (reports.tables, reports.plots)
    in REPORT_PACKAGES: the table and plot jobs depend on it, so a changed table, column, claim rule,
    convergence rule or plot is redrawn from the results already there."""
    files = {f for cli in ("reports.tables", "reports.plots") for f in module_closure(cli, REPORT_PACKAGES)}
    return _digest(sorted(files))


def syntax_tree(path: Path) -> ast.Module:
    """The parsed source of ``path``, parsed once per content (the closure walk and the digest both read it)."""
    stat = path.stat()
    return _parse(path, stat.st_mtime_ns, stat.st_size)


@lru_cache(maxsize=None)
def _parse(path: Path, mtime_ns: int, size: int) -> ast.Module:
    return ast.parse(path.read_bytes(), filename=str(path))


def _digest(files) -> str:
    h = hashlib.sha256()
    for path in files:
        tree = ast.dump(syntax_tree(path))
        h.update(path.relative_to(REPO_ROOT).as_posix().encode() + b"\0" + tree.encode() + b"\0")
    return h.hexdigest()[:12]
