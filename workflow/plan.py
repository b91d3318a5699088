"""The experiment plan: one experiment config (config/experiments/NAME.yaml) turned into the exact job list.

The Snakefile and the report CLIs both use this module, so the DAG and the tables always agree on what an
experiment contains. Nothing here imports torch: reading a plan is cheap (a dry run stays fast).

An experiment file may say ``extends: OTHER`` and then only lists what differs (deep merge, lists replace).
Variants are chosen per run group by family (``families: [sdcpc]`` = every sdcpc entry of the registry,
so a new registry entry is picked up with no other edit) or by name (``variants: [...]``), minus ``exclude``.
"""
from __future__ import annotations

import copy
import json
import re
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from common.inputs import load_yaml
from common.options import check_run_options

REPO_ROOT = Path(__file__).resolve().parents[1]
EXPERIMENTS_DIR = REPO_ROOT / "config" / "experiments"
SCHEMA_PATH = REPO_ROOT / "config" / "schemas" / "experiment.schema.yaml"
DEFAULT_REGISTRY = "config/variants.yaml"

# Backbone names each family's code accepts (docs/architecture.md). Checked again against the family
# module's BACKBONES when the module imports; this table keeps planning free of torch.
FAMILY_BACKBONES: dict[str, tuple[str, ...]] = {
    "segformer": ("mit_b0", "mit_b1", "mit_b2", "mit_b3", "mit_b4", "mit_b5"),
    "sdcpc": ("mit_b0", "mit_b1", "mit_b2", "mit_b3", "mit_b4", "mit_b5"),
    "msaf": ("resnet18", "resnet50", "resnet101", "pspnet18", "pspnet50", "pspnet101", "hrnet_w18", "hrnet_w48"),
}


# Keys of config/config.yaml (and of --config KEY=VALUE); everything else lives in the experiment file
CONFIG_KEYS = frozenset({"experiment", "results", "variants_file", "root", "variants"})


class PlanError(ValueError):
    """A bad experiment config; the message is one line naming the file and the key."""


@dataclass(frozen=True)
class Run:
    """One trained model group: a variant on a backbone and dataset (trained once per seed)."""
    dataset: str
    backbone: str
    variant: str


@dataclass(frozen=True)
class Count:
    """One complexity measurement: a variant on a backbone at one input size."""
    dataset: str
    backbone: str
    variant: str
    height: int
    width: int


def _deep_merge(base: dict, delta: dict) -> dict:
    out = copy.deepcopy(base)
    for k, v in delta.items():
        if isinstance(v, dict) and isinstance(out.get(k), dict):
            out[k] = _deep_merge(out[k], v)
        else:
            out[k] = copy.deepcopy(v)
    return out


def _experiment_path(name: str) -> Path:
    p = Path(name)
    if p.suffix in (".yaml", ".yml"):  # a path to a file outside config/experiments (tests, users' own)
        return p if p.is_absolute() else REPO_ROOT / p
    if not re.fullmatch(r"[A-Za-z0-9_\-]+", name):
        raise PlanError(f"experiment '{name}': not a valid experiment name")
    return EXPERIMENTS_DIR / f"{name}.yaml"


def read_experiment(name: str, _chain: tuple[str, ...] = ()) -> dict:
    """The experiment's raw config with its ``extends`` chain merged (no validation yet)."""
    path = _experiment_path(name)
    if not path.exists():
        known = ", ".join(sorted(p.stem for p in EXPERIMENTS_DIR.glob("*.yaml")))
        raise PlanError(f"{path}: no such experiment '{name}' (known: {known})")
    try:
        raw = load_yaml(path, "experiment file", PlanError) or {}   # duplicate keys, non-UTF-8: one line
    except yaml.YAMLError as e:
        raise PlanError(f"{path}: not valid YAML: {str(e).splitlines()[0]}") from None
    if not isinstance(raw, dict):
        raise PlanError(f"{path}: an experiment file is a mapping of keys")
    parent = raw.pop("extends", None)
    if parent:
        if parent in _chain:
            raise PlanError(f"{path}: extends loops ({' -> '.join(_chain + (name, parent))})")
        raw = _deep_merge(read_experiment(parent, _chain + (name,)), raw)
    return raw


def _one_line_schema_error(cfg: dict, err: Exception, where: str) -> PlanError:
    """snakemake.utils.validate flattens the jsonschema error into a multi-line text; re-run the check to name
    the key and the problem on one line."""
    import jsonschema

    schema = yaml.safe_load(SCHEMA_PATH.read_text())
    errors = list(jsonschema.Draft202012Validator(schema).iter_errors(cfg))
    if not errors:
        return PlanError(f"{where}: {str(err).splitlines()[0]}")
    e = jsonschema.exceptions.best_match(errors)
    path = "/".join(str(p) for p in e.absolute_path) or "(top level)"
    msg = e.message if len(e.message) < 300 else e.message[:300] + "..."
    return PlanError(f"{where}: {path}: {msg}")


def validate_experiment(cfg: dict, where: str) -> dict:
    """Schema check (snakemake.utils.validate, defaults filled in). Raises PlanError, one line."""
    cfg = copy.deepcopy(cfg)
    try:
        from snakemake.utils import validate
    except ImportError:  # the report CLIs also run where snakemake is absent
        validate = None
    try:
        if validate is not None:
            validate(cfg, str(SCHEMA_PATH))
        else:
            import jsonschema

            jsonschema.validate(cfg, yaml.safe_load(SCHEMA_PATH.read_text()))
    except Exception as err:  # WorkflowError or jsonschema.ValidationError
        raise _one_line_schema_error(cfg, err, where) from None
    return cfg


def _parse_resolution(text: str, where: str) -> tuple[int, int]:
    m = re.fullmatch(r"(\d+)x(\d+)", str(text))
    if not m:
        raise PlanError(f"{where}: resolution '{text}' is not HxW (e.g. 480x853)")
    return int(m.group(1)), int(m.group(2))


def gpu_count() -> int:
    """GPUs visible to jobs (nvidia-smi), 0 on a CPU machine; decides the rules' `gpu` resource."""
    if not shutil.which("nvidia-smi"):
        return 0
    try:
        out = subprocess.run(["nvidia-smi", "-L"], capture_output=True, text=True, timeout=10)
        return sum(1 for line in out.stdout.splitlines() if line.startswith("GPU "))
    except (OSError, subprocess.SubprocessError):
        return 0


def cli_flags(module: str) -> set[str]:
    """Long options a CLI module declares, read from its source (no import): lets a rule pass an optional
    flag (e.g. --registry) only to CLIs that take it."""
    path = REPO_ROOT / (module.replace(".", "/") + ".py")
    try:
        return set(re.findall(r"[\"'](--[a-z][a-z0-9\-]*)[\"']", path.read_text()))
    except OSError:
        return set()


class Plan:
    """Everything one experiment will produce, as plain lists (see module docstring)."""

    def __init__(self, config: dict):
        """``config``: the Snakemake config (config/config.yaml merged with --config)."""
        unknown = sorted(set(config) - CONFIG_KEYS)
        if unknown:
            raise PlanError(f"config: unknown key(s) {', '.join(unknown)} (known: {', '.join(sorted(CONFIG_KEYS))})")
        self.name = str(config.get("experiment", "default"))
        self.results = Path(str(config.get("results", "results")))
        self.dir = self.results / Path(self.name).stem
        where = str(_experiment_path(self.name).relative_to(REPO_ROOT)
                    if _experiment_path(self.name).is_relative_to(REPO_ROOT) else _experiment_path(self.name))
        raw = read_experiment(self.name)
        self.cfg = validate_experiment(raw, where)
        self.experiment = Path(self.name).stem

        # registry: --config variants_file=... beats the experiment's, which beats the default
        self.variants_file = str(config.get("variants_file") or self.cfg.get("variants_file") or DEFAULT_REGISTRY)
        from models.registry import RegistryError, load_variants

        vf = Path(self.variants_file)
        self.variants_path = str(vf if vf.is_absolute() else REPO_ROOT / vf)
        try:
            self.variants = load_variants(self.variants_path)
        except RegistryError as e:
            raise PlanError(str(e)) from None

        opts = self.cfg.get("train", {}).get("options", {})
        try:  # engine/config.py imports no torch; its fields are the flags engine.train takes
            import dataclasses

            from engine.config import TrainConfig

            fields = {f.name for f in dataclasses.fields(TrainConfig)}
            bad = sorted(set(opts) - fields)
            if bad:
                raise PlanError(f"{where}: train/options: unknown training option(s) {', '.join(bad)} "
                                f"(known: {', '.join(sorted(fields))})")
        except ImportError:
            pass
        self.seeds: list[int] = list(self.cfg["seeds"])
        self.datasets: dict[str, dict] = self.cfg["datasets"]
        # --config root=PATH points every real (non-generated) dataset of the experiment at PATH
        root_override = config.get("root")
        self.roots: dict[str, str] = {}
        for ds, spec in self.datasets.items():
            if ds == "synthetic" and not spec.get("root"):
                self.roots[ds] = str(self.dir / "data" / "synthetic")
            else:
                root = root_override or spec.get("root")
                if not root:
                    raise PlanError(f"{where}: datasets/{ds}: needs a root (or --config root=PATH)")
                self.roots[ds] = str(root)

        only = config.get("variants")  # --config variants=a,b restricts every run group
        if isinstance(only, str):
            only = [v for v in only.split(",") if v]
        if only:
            self._check_names(only, "--config variants")

        self.runs: list[Run] = []
        for i, group in enumerate(self.cfg.get("runs", [])):
            for v in self._select(group, f"{where}: runs/{i}", only):
                self._check_pair(v, group["backbone"], f"{where}: runs/{i}")
                self._check_dataset(group["dataset"], f"{where}: runs/{i}")
                r = Run(group["dataset"], group["backbone"], v)
                if r not in self.runs:
                    self.runs.append(r)

        self.counts: list[Count] = []
        for i, group in enumerate(self.cfg.get("complexity", [])):
            sizes = [_parse_resolution(r, f"{where}: complexity/{i}") for r in group["resolutions"]]
            for v in self._select(group, f"{where}: complexity/{i}", None):
                for b in group["backbones"]:
                    if self.variants[v].family not in _families_of_backbone(b):
                        continue  # a family selector over mixed backbones: count only valid pairs
                    for h, w in sizes:
                        self._add_count(Count(group["dataset"], b, v, h, w))
        # every trained run is also counted at its dataset's test size (the cross table's params/GFLOPs)
        for r in self.runs:
            h, w = self.test_size(r.dataset)
            self._add_count(Count(r.dataset, r.backbone, r.variant, h, w))
        check_run_options(self.variants, self.cfg.get("train"), [(r.dataset, r.variant) for r in self.runs], where,
                          PlanError, self.variants_file, [c.variant for c in self.counts])  # torch-free, one line

    # ------------------------------------------------------------------ selection and checks
    def _check_names(self, names, where):
        import difflib

        for v in names:
            if v not in self.variants:
                close = difflib.get_close_matches(v, list(self.variants), n=1)
                hint = f"did you mean '{close[0]}'? " if close else ""
                raise PlanError(f"{where}: no variant named '{v}' in {self.variants_file} ({hint}"
                                f"known: {', '.join(sorted(self.variants))})")

    def _check_dataset(self, ds, where):
        if ds not in self.datasets:
            raise PlanError(f"{where}: dataset '{ds}' is not declared under datasets: of this experiment")

    def _check_pair(self, variant, backbone, where):
        fam = self.variants[variant].family
        if backbone not in FAMILY_BACKBONES.get(fam, ()):
            raise PlanError(f"{where}: variant '{variant}' (family {fam}) does not take backbone '{backbone}' "
                            f"(valid: {', '.join(FAMILY_BACKBONES.get(fam, ()))})")

    def _select(self, group: dict, where: str, only: list[str] | None) -> list[str]:
        names: list[str] = []
        for fam in group.get("families", []):
            names += [n for n, v in self.variants.items() if v.family == fam]
        explicit = group.get("variants", [])
        self._check_names(explicit, where)
        self._check_names(group.get("exclude", []), where)
        names += explicit
        names = [n for n in dict.fromkeys(names) if n not in set(group.get("exclude", []))]
        if only:
            names = [n for n in names if n in only]
        return names

    def _add_count(self, c: Count):
        self._check_pair(c.variant, c.backbone, "complexity")
        if c not in self.counts:
            self.counts.append(c)

    # ------------------------------------------------------------------ facts the rules need
    def test_size(self, dataset: str) -> tuple[int, int]:
        spec = self.datasets.get(dataset, {})
        if dataset == "synthetic":
            gen = spec.get("generate", {})
            return int(gen.get("height", 64)), int(gen.get("width", 64))
        if spec.get("test_size"):
            return _parse_resolution(spec["test_size"], f"datasets/{dataset}/test_size")
        from videos.info import dataset_info

        return dataset_info(dataset).test_size

    def run_dir(self, r: Run, seed: int) -> str:
        return f"{self.dir}/runs/{r.dataset}/{r.backbone}/{r.variant}/seed{seed}"

    def metrics_files(self) -> list[str]:
        return [f"{self.run_dir(r, s)}/metrics.json" for r in self.runs for s in self.seeds]

    def train_logs(self) -> list[str]:
        return [f"{self.run_dir(r, s)}/train_log.csv" for r in self.runs for s in self.seeds]

    def fps_files(self) -> list[str]:
        return [f"{self.dir}/fps/{r.dataset}/{r.backbone}/{r.variant}.json" for r in self.runs]

    def fps_groups(self) -> dict[tuple[str, str], list[str]]:
        """(dataset, backbone) -> the trained variants timed together in one FPS job, in run order."""
        groups: dict[tuple[str, str], list[str]] = {}
        for r in self.runs:
            groups.setdefault((r.dataset, r.backbone), []).append(r.variant)
        return groups

    def complexity_files(self) -> list[str]:
        return [f"{self.dir}/complexity/{c.dataset}/{c.backbone}/{c.variant}@{c.height}x{c.width}.json"
                for c in self.counts]

    def to_json(self) -> dict[str, Any]:
        """What the report CLIs need, written to results/<experiment>/plan.json by the workflow."""
        return {
            "experiment": self.experiment,
            "variants_file": self.variants_file,
            "seeds": self.seeds,
            "roots": self.roots,
            "test_sizes": {d: list(self.test_size(d)) for d in self.datasets},
            "runs": [r.__dict__ for r in self.runs],
            "counts": [c.__dict__ for c in self.counts],
            "evaluate": self.cfg.get("evaluate", {}),
            "fps": self.cfg.get("fps", {}),
            "report": self.cfg.get("report", {}),
            "description": self.cfg.get("description", ""),
            "config": self.cfg,
        }


def _families_of_backbone(backbone: str) -> set[str]:
    return {f for f, bbs in FAMILY_BACKBONES.items() if backbone in bbs}


def load_plan(experiment: str, results: str = "results", **overrides) -> dict[str, Any]:
    """The plan of an experiment as the report CLIs see it: results/<exp>/plan.json when the workflow wrote
    one (it records --config overrides), else rebuilt from the config files."""
    stem = Path(experiment).stem
    written = Path(results) / stem / "plan.json"
    if written.exists() and not overrides:
        return json.loads(written.read_text())
    return Plan({"experiment": experiment, "results": results, **overrides}).to_json()
