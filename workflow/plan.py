"""The experiment plan: one experiment config (config/experiments/NAME.yaml) turned into the exact job list.

The Snakefile and the report CLIs both use this module, so the DAG and the tables always agree on what an
experiment contains, and where each file of it lives (``Layout``: the one set of path templates). Nothing
here imports torch: reading a plan is cheap (a dry run stays fast).

An experiment file may say ``extends: OTHER`` and then only lists what differs (deep merge, lists replace).
Variants are chosen per run group by family (``families: [sdcpc]`` = every sdcpc entry of the registry,
so a new registry entry is picked up with no other edit) or by name (``variants: [...]``), minus ``exclude``.
Every key is described in config/README.md.

Defaults: a setting the experiment leaves out is not passed to the command, so the command's own default
applies (training: engine/config.py and the dataset's row of videos/info.py; FPS: engine.fps). Only what the
pipeline itself needs (job memory and time, the evaluated split, which GFLOPs the tables print) has its
default in config/schemas/experiment.schema.yaml, filled in when the file is validated.
"""
from __future__ import annotations

import copy
import json
import re
import shlex
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from common.codeversion import code_version
from common.families import BACKBONES, FAMILIES, families_of_backbone, family_backbones
from common.inputs import load_yaml
from common.options import check_run_options
from videos.info import DATASETS, dataset_info

REPO_ROOT = Path(__file__).resolve().parents[1]
EXPERIMENTS_DIR = REPO_ROOT / "config" / "experiments"
SCHEMA_PATH = REPO_ROOT / "config" / "schemas" / "experiment.schema.yaml"
DEFAULT_REGISTRY = "config/variants.yaml"

# Keys of config/config.yaml (and of --config KEY=VALUE); everything else lives in the experiment file
CONFIG_KEYS = frozenset({"experiment", "results", "variants_file", "root", "variants"})

# Job ids: one training run, one complexity count, one FPS group (the wildcards of the rules)
RUN = "{dataset}/{backbone}/{variant}/seed{seed}"
COUNT = "{dataset}/{backbone}/{variant}@{height}x{width}"
GROUP = "{dataset}/{backbone}"


class Layout:
    """Every file of one experiment, under results/<experiment>/, as one template per kind.

    ``pattern(kind)`` keeps the wildcards (``{dataset}``, ...) for Snakemake rules; ``path(kind, **fields)``
    fills them in for the planner and the report CLIs. docs/architecture.md ("Results layout") lists them."""

    TEMPLATES = {
        "generated": "data/{dataset}",                   # a generated dataset (videos/info.py ``generator``)
        "checked": "data/{dataset}.checked",             # videos.check --stamp: the data a run trained on
        "run": f"runs/{RUN}",                            # engine.train --out (checkpoint.pt lives here too)
        "model": f"runs/{RUN}/model.pt",
        "train_log": f"runs/{RUN}/train_log.csv",
        "pred": f"runs/{RUN}/pred",                      # PRED/<video>/<frame>.png
        "metrics": f"runs/{RUN}/metrics.json",
        "complexity": f"complexity/{COUNT}.json",
        "fps_group": f"fps/{GROUP}",                     # one timing job per (dataset, backbone)
        "fps": f"fps/{GROUP}/{{variant}}.json",
        "plan": "plan.json",
        "table": "tables/{name}",
        "plot": "plots/{name}",
    }

    def __init__(self, experiment_dir: str | Path):
        self.dir = str(experiment_dir)

    def pattern(self, kind: str) -> str:
        return f"{self.dir}/{self.TEMPLATES[kind]}"

    def path(self, kind: str, **fields) -> str:
        return self.pattern(kind).format(**fields)

    def log(self, stage: str, job: str) -> str:
        """One log per job: logs/<stage>/<job id>.log (job ids: RUN, COUNT, GROUP or a dataset name)."""
        return f"{self.dir}/logs/{stage}/{job}.log"

    def benchmark(self, stage: str, job: str) -> str:
        """Snakemake's per-job wall time and memory record (``benchmark:``)."""
        return f"{self.dir}/benchmarks/{stage}/{job}.tsv"


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


def experiment_schema() -> dict:
    """config/schemas/experiment.schema.yaml with its name lists filled in from the tables: datasets
    (videos/info.py), backbones and families (common/families.py). The file spells no name itself."""
    schema = yaml.safe_load(SCHEMA_PATH.read_text())
    names = {"dataset": list(DATASETS), "backbone": list(BACKBONES), "family": list(FAMILIES)}
    for key, values in names.items():
        schema["$defs"][key]["enum"] = values
    # train/families/<family>: train's own keys but `families`, without defaults (an unset key is train's)
    train = schema["properties"]["train"]["properties"]
    schema["properties"]["train"]["properties"]["families"]["additionalProperties"] = {
        "type": "object", "additionalProperties": False,
        "properties": {k: {a: b for a, b in v.items() if a != "default"} for k, v in train.items() if k != "families"}}
    return schema


def _validator(schema: dict):
    """A Draft 2020-12 validator that also fills in each property's ``default`` (as snakemake.utils.validate
    does), nested objects included when their parent has a default too."""
    import jsonschema

    base = jsonschema.Draft202012Validator
    check_properties = base.VALIDATORS["properties"]

    def properties(validator, props, instance, subschema):
        if isinstance(instance, dict):
            for name, sub in props.items():
                if isinstance(sub, dict) and "default" in sub:
                    instance.setdefault(name, copy.deepcopy(sub["default"]))
        yield from check_properties(validator, props, instance, subschema)

    return jsonschema.validators.extend(base, {"properties": properties})(schema)


def validate_experiment(cfg: dict, where: str) -> dict:
    """Schema check with defaults filled in. Raises PlanError, one line naming the key and the problem."""
    import jsonschema

    cfg = copy.deepcopy(cfg)
    errors = list(_validator(experiment_schema()).iter_errors(cfg))
    if errors:
        e = jsonschema.exceptions.best_match(errors)
        path = "/".join(str(p) for p in e.absolute_path) or "(top level)"
        msg = e.message if len(e.message) < 300 else e.message[:300] + "..."
        raise PlanError(f"{where}: {path}: {msg}")
    return cfg


def _parse_resolution(text: str, where: str) -> tuple[int, int]:
    m = re.fullmatch(r"(\d+)x(\d+)", str(text))
    if not m:
        raise PlanError(f"{where}: resolution '{text}' is not HxW (e.g. 480x853)")
    return int(m.group(1)), int(m.group(2))


def _flags(settings: dict[str, Any], keys: tuple[str, ...] | None = None) -> str:
    """``{checkpoint_every: 2}`` -> ``--checkpoint-every 2``, for the keys that are set (and given)."""
    return " ".join(f"--{k.replace('_', '-')} {shlex.quote(str(v))}" for k, v in settings.items()
                    if (keys is None or k in keys) and v is not None)


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
        self.layout = Layout(self.dir)
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

        try:  # engine/config.py imports no torch; its fields are the flags engine.train takes
            import dataclasses

            from engine.config import TrainConfig

            fields = {f.name for f in dataclasses.fields(TrainConfig)}
            blocks = {"train": self.cfg["train"], **{f"train/families/{fam}": block for fam, block
                                                      in self.cfg["train"].get("families", {}).items()}}
            for key, block in blocks.items():
                bad = sorted(set(block.get("options", {})) - fields)
                if bad:
                    raise PlanError(f"{where}: {key}/options: unknown training option(s) {', '.join(bad)} "
                                    f"(known: {', '.join(sorted(fields))})")
        except ImportError:
            pass
        self.seeds: list[int] = list(self.cfg["seeds"])
        self.datasets: dict[str, dict] = self.cfg["datasets"]
        # --config root=PATH points every real (non-generated) dataset of the experiment at PATH
        root_override = config.get("root")
        self.roots: dict[str, str] = {}
        for ds, spec in self.datasets.items():
            if dataset_info(ds).generated and not spec.get("root"):
                self.roots[ds] = self.layout.path("generated", dataset=ds)
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
        for i, group in enumerate(self.cfg["runs"]):
            for v in self._select(group, f"{where}: runs/{i}", only):
                self._check_pair(v, group["backbone"], f"{where}: runs/{i}")
                self._check_dataset(group["dataset"], f"{where}: runs/{i}")
                r = Run(group["dataset"], group["backbone"], v)
                if r not in self.runs:
                    self.runs.append(r)

        self.counts: list[Count] = []
        for i, group in enumerate(self.cfg["complexity"]):
            sizes = [_parse_resolution(r, f"{where}: complexity/{i}") for r in group["resolutions"]]
            for v in self._select(group, f"{where}: complexity/{i}", None):
                for b in group["backbones"]:
                    if self.variants[v].family not in families_of_backbone(b):
                        continue  # a family selector over mixed backbones: count only valid pairs
                    for h, w in sizes:
                        self._add_count(Count(group["dataset"], b, v, h, w))
        # every trained run is also counted at its dataset's test size (the cross table's params/GFLOPs)
        for r in self.runs:
            h, w = self.test_size(r.dataset)
            self._add_count(Count(r.dataset, r.backbone, r.variant, h, w))
        # torch-free, one line; each family's runs with that family's settings
        for fam in dict.fromkeys([self.family(r.variant) for r in self.runs] + [self.family(c.variant)
                                                                                 for c in self.counts]):
            check_run_options(self.variants, self.train_settings(fam),
                              [(r.dataset, r.variant) for r in self.runs if self.family(r.variant) == fam], where,
                              PlanError, self.variants_file,
                              [c.variant for c in self.counts if self.family(c.variant) == fam])

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
        if backbone not in family_backbones(fam):
            raise PlanError(f"{where}: variant '{variant}' (family {fam}) does not take backbone '{backbone}' "
                            f"(valid: {', '.join(family_backbones(fam))})")

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
        """(H, W) at test time: a generated set's frame size, else the experiment's test_size, else the
        dataset table's."""
        spec, info = self.datasets.get(dataset, {}), dataset_info(dataset)
        if info.generated:
            gen = spec.get("generate", {})
            return int(gen.get("height", info.test_size[0])), int(gen.get("width", info.test_size[1]))
        if spec.get("test_size"):
            return _parse_resolution(spec["test_size"], f"datasets/{dataset}/test_size")
        return info.test_size

    def generated(self) -> list[str]:
        """Datasets this experiment generates (a generator row without a root)."""
        return [d for d in self.datasets if self.roots[d] == self.layout.path("generated", dataset=d)]

    def generated_input(self, wildcards) -> list[str]:
        """The check of a generated dataset takes the generated tree as input; a user's root is no workflow
        output."""
        d = wildcards.dataset
        return [self.layout.path("generated", dataset=d)] if d in self.generated() else []

    @staticmethod
    def generator(dataset: str) -> str:
        return dataset_info(dataset).generator

    def generate_args(self, dataset: str) -> str:
        """The generator's flags, from ``datasets/<name>/generate`` (its own defaults for the rest)."""
        return _flags(self.datasets[dataset].get("generate", {}))

    # ------------------------------------------------------------------ training, per family
    def family(self, variant: str) -> str:
        return self.variants[variant].family

    def train_settings(self, family: str) -> dict[str, Any]:
        """The experiment's ``train`` block as a family's jobs see it: ``train/families/<family>`` merged over
        the rest (mappings such as ``options`` key by key)."""
        t = {k: v for k, v in self.cfg["train"].items() if k != "families"}
        return _deep_merge(t, self.cfg["train"].get("families", {}).get(family, {}))

    def train_args(self, family: str) -> str:
        """engine.train flags from the family's ``train`` settings: only what they set, so engine/config.py
        (TrainConfig and the dataset's row) is the one place of every training default. Quoted for a shell."""
        t = self.train_settings(family)
        args = [_flags(t, ("iters", "checkpoint_every", "config"))]
        args += [f"--{k.replace('_', '-')} {shlex.quote(json.dumps(v))}" for k, v in t.get("options", {}).items()]
        return " ".join(a for a in args if a)

    def train_gpus(self, family: str) -> int:
        """GPUs one training job of the family holds (the `gpu` resource): the experiment's, never the
        submitting host's."""
        return int(self.train_settings(family)["gpus"])

    def train_launcher(self, family: str) -> list[str]:
        """The command that starts engine.train: one process, or torchrun with one process per GPU (DDP;
        engine.train reads torchrun's RANK/WORLD_SIZE). ``--standalone``: a single-node rendezvous on a free
        port, so two jobs on one node never collide."""
        n = self.train_gpus(family)
        return ["torchrun", "--standalone", f"--nproc_per_node={n}"] if n > 1 else ["python"]

    def run_gpus(self, variants: list[str] | str) -> int:
        """GPUs of an evaluation or timing job: one where its runs trained on GPUs, else none."""
        names = [variants] if isinstance(variants, str) else variants
        return int(any(self.train_gpus(self.family(v)) > 0 for v in names))

    def model_identity(self, variant: str) -> str:
        """What a variant's jobs depend on besides their files: its resolved definition (family, references,
        options: not its label or tables) and its family's code version (common/codeversion.py). A job param,
        so a changed registry entry or model module reruns exactly that variant's jobs; no path is in it."""
        v = self.variants[variant]
        return json.dumps({"family": v.family, "ref_offsets": list(v.ref_offsets), "options": v.options,
                           "code": code_version(v.family)}, sort_keys=True)

    def evaluate_args(self) -> str:
        """engine.validate / metrics.evaluate flags from the ``evaluate`` block."""
        return _flags(self.cfg["evaluate"], ("split", "tc_flow", "tc_videos", "vc_min_frames", "vc_convention"))

    def test_scale_args(self, dataset: str) -> str:
        """engine.validate's --test-scale: the experiment's test size is the box inference rescales frames
        into (a generated set is fed at its native size)."""
        return "" if dataset_info(dataset).generated else "--test-scale {}x{}".format(*self.test_size(dataset))

    def fps_args(self) -> str:
        return _flags(self.cfg.get("fps", {}), ("warmup", "iters", "repeats"))

    def group_identity(self, dataset: str, backbone: str) -> str:
        """The model identities of an FPS group's variants (a changed one times the group again)."""
        return json.dumps({v: self.model_identity(v) for v in self.fps_groups()[(dataset, backbone)]},
                          sort_keys=True)

    @staticmethod
    def count_mem_mb(backbone: str, height: int, width: int) -> int:
        """Declared peak memory of one complexity count (common/families.py, ``count_mb_per_mpix``), so the
        profile's mem_mb keeps several heavy counts from running at once on a small machine."""
        return int(1000 + BACKBONES[backbone].count_mb_per_mpix * height * width / 1e6)

    def fps_groups(self) -> dict[tuple[str, str], list[str]]:
        """(dataset, backbone) -> the trained variants timed together in one FPS job, in run order."""
        groups: dict[tuple[str, str], list[str]] = {}
        for r in self.runs:
            groups.setdefault((r.dataset, r.backbone), []).append(r.variant)
        return groups

    def qualitative_preds(self) -> list[str]:
        """Seed-0 prediction folders of the runs the qualitative strip shows (report/qualitative)."""
        q = self.cfg["report"].get("qualitative", {})
        return [self.layout.path("pred", seed=self.seeds[0], **r.__dict__) for r in self.runs
                if r.variant in q.get("variants", []) and r.dataset == q.get("dataset")]

    # ------------------------------------------------------------------ every file, from Layout
    def run_files(self, kind: str) -> list[str]:
        """One file per (run, seed): kind is "model", "metrics", "train_log" or "pred"."""
        return [self.layout.path(kind, seed=s, **r.__dict__) for r in self.runs for s in self.seeds]

    def complexity_files(self) -> list[str]:
        return [self.layout.path("complexity", **c.__dict__) for c in self.counts]

    def fps_dirs(self) -> list[str]:
        return [self.layout.path("fps_group", dataset=d, backbone=b) for d, b in self.fps_groups()]

    def fps_files(self) -> list[str]:
        return [self.layout.path("fps", **r.__dict__) for r in self.runs]

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
            "evaluate": self.cfg["evaluate"],
            "fps": self.cfg.get("fps", {}),
            "report": self.cfg["report"],
            "description": self.cfg.get("description", ""),
            "config": self.cfg,
        }


def report_entry(path: str, titles: dict[str, str]) -> dict[str, Any] | None:
    """How ``snakemake --report`` shows a result file: ``report()``'s caption (workflow/report/<kind>.rst,
    relative to workflow/rules/), category and labels for a CSV table or PNG plot; None for the rest (LaTeX,
    PDF, provenance). ``titles``: paper table id -> title (reports/paper.py)."""
    stem, ext = Path(path).stem, Path(path).suffix
    if ext == ".csv":
        caption = "paper_table" if stem in titles else stem
        return {"caption": f"../report/{caption}.rst", "category": "Tables", "labels": {"table": titles.get(stem, stem)}}
    if ext == ".png":
        return {"caption": f"../report/{stem}.rst", "category": "Plots", "labels": {"figure": stem}}
    return None


def load_plan(experiment: str, results: str = "results", **overrides) -> dict[str, Any]:
    """The plan of an experiment as the report CLIs see it: results/<exp>/plan.json when the workflow wrote
    one (it records --config overrides), else rebuilt from the config files."""
    written = Path(Layout(Path(results) / Path(experiment).stem).path("plan"))
    if written.exists() and not overrides:
        return json.loads(written.read_text())
    return Plan({"experiment": experiment, "results": results, **overrides}).to_json()
