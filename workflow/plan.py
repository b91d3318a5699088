"""The experiment plan: one experiment config (config/experiments/NAME.yaml) turned into the exact job list.

The Snakefile and the report CLIs both use this module, so the DAG and the tables always agree on what an
experiment contains, and where each file of it lives (``Layout``: the one set of path templates). Nothing
here imports torch: reading a plan is cheap (a dry run stays fast).

An experiment file may say ``extends: OTHER`` and then only lists what differs (deep merge, lists replace).
Variants are chosen per run group by family (``families: [sdcpc]`` = every sdcpc entry of the registry,
so a new registry entry is picked up with no other edit) or by name (``variants: [...]``), minus ``exclude``.
Training settings resolve per variant: the ``train`` block, then ``train/families/<family>``, then
``train/variants/<variant>`` (each merged over the last: mappings merge, lists replace; ``train_settings``).
Backbone weights resolve per backbone (``pretrained``: a local file, ``none``, or ``{pretrain: VARIANT}``
= made by the pretrain stage, ``pretrain``, from the experiment's own data).
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
from dataclasses import dataclass, field, replace
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
CONFIG_KEYS = frozenset({"experiment", "results", "variants_file", "root", "variants", "weights"})
DEFAULT_WEIGHTS = "weights"     # where an experiment's relative ``pretrained`` paths are (--config weights=DIR)

# Job ids: one training run, one complexity count, one FPS / complexity group, one pretrained encoder
RUN = "{dataset}/{backbone}/{variant}/seed{seed}"
COUNT = "{dataset}/{backbone}/{variant}@{height}x{width}"
GROUP = "{dataset}/{backbone}"
PRETRAIN = "{dataset}/{backbone}"
PRETRAINED_NONE, PRETRAIN_KEY = "none", "pretrain"
# Keys of a train block that are the pipeline's, not engine.train flags; the rest are passed as flags
TRAIN_OVERRIDES = ("families", "variants")


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
        "complexity_group": f"complexity/{GROUP}",       # one counting job per (dataset, backbone)
        "pretrain": f"pretrain/{PRETRAIN}",              # engine.pretrain --out: the pretext run
        "encoder": f"pretrain/{PRETRAIN}/{{backbone}}.pth",   # its encoder, in the backbone's public layout
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
    """One trained model group: a variant on a backbone and dataset, trained once per seed of ``seeds``
    (the union over the run groups that list it; the experiment's ``seeds`` where none says)."""
    dataset: str
    backbone: str
    variant: str
    seeds: tuple[int, ...] = field(default=(), compare=False)


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


def train_settings(block: dict, variant) -> dict:
    """A train block resolved for one variant (a models.registry.Variant): the block, then
    ``families/<variant.family>``, then ``variants/<variant.name>``, each merged over the last."""
    base = {k: v for k, v in block.items() if k not in TRAIN_OVERRIDES}
    for layer in ((block.get("families") or {}).get(variant.family), (block.get("variants") or {}).get(variant.name)):
        if layer:
            base = _deep_merge(base, layer)
    return base


def train_flags(settings: dict) -> list[str]:
    """engine.train flags of a resolved train block: only what it sets, so engine/config.py (TrainConfig and
    the dataset's row) stays the one place of every training default."""
    args = [_flags(settings, ("iters", "checkpoint_every", "config"))]
    args += [f"--{k.replace('_', '-')} {shlex.quote(json.dumps(v))}" for k, v in settings.get("options", {}).items()]
    return [a for a in args if a]


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

        self._check_train_block(self.cfg["train"], "train", where)
        if self.cfg.get("pretrain"):
            self._check_train_block(self.cfg["pretrain"].get("train", {}), "pretrain/train", where)
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
            seeds = tuple(group.get("seeds", self.seeds))
            for v in self._select(group, f"{where}: runs/{i}", only):
                self._check_pair(v, group["backbone"], f"{where}: runs/{i}")
                self._check_dataset(group["dataset"], f"{where}: runs/{i}")
                r = Run(group["dataset"], group["backbone"], v, seeds)
                if r in self.runs:   # listed by two groups: trained on the seeds of both
                    k = self.runs.index(r)
                    self.runs[k] = replace(r, seeds=tuple(dict.fromkeys(self.runs[k].seeds + seeds)))
                else:
                    self.runs.append(r)

        self._check_names(self.cfg["report"].get("main", []), f"{where}: report/main")
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
        self.weights_dir = Path(str(config.get("weights") or DEFAULT_WEIGHTS))
        self.pretrain: dict[str, str] = {}          # backbone -> the pretext variant the pretrain stage trains
        self.pretrained: dict[str, str | None] = {}  # backbone -> the weights file its runs start from
        self._resolve_pretrained(where)
        # training and variant options, torch-free, one line; once per distinct resolved train block
        blocks: dict[str, tuple[dict, list]] = {}
        jobs = [(r.dataset, r.variant, self.train_settings(r.variant)) for r in self.runs]
        jobs += [(self.cfg["pretrain"]["dataset"], v, self.pretrain_settings(v)) for v in self.pretrain.values()]
        for ds, v, block in jobs:
            blocks.setdefault(json.dumps(block, sort_keys=True), (block, []))[1].append((ds, v))
        counted = [c.variant for c in self.counts]
        for block, pairs in blocks.values() or [({}, [])]:
            check_run_options(self.variants, block, pairs, where, PlanError, self.variants_file, counted)
            counted = []

    # ------------------------------------------------------------------ training settings and weights
    def _check_train_block(self, block: dict, what: str, where: str) -> None:
        """Option names of a train block and of its per-family / per-variant layers (TrainConfig's fields)."""
        import dataclasses

        from engine.config import TrainConfig   # imports no torch

        fields = {f.name for f in dataclasses.fields(TrainConfig)}
        layers = [(what, block)]
        layers += [(f"{what}/families/{f}", b) for f, b in (block.get("families") or {}).items()]
        layers += [(f"{what}/variants/{v}", b) for v, b in (block.get("variants") or {}).items()]
        self._check_names(list(block.get("variants") or {}), f"{where}: {what}/variants")
        for name, layer in layers:
            bad = sorted(set(layer.get("options", {})) - fields)
            if bad:
                raise PlanError(f"{where}: {name}/options: unknown training option(s) {', '.join(bad)} "
                                f"(known: {', '.join(sorted(fields))})")

    def train_settings(self, variant: str) -> dict:
        """The experiment's train block resolved for one variant (its family's and its own layers over it)."""
        return train_settings(self.cfg["train"], self.variants[variant])

    def pretrain_settings(self, variant: str) -> dict:
        """The pretrain stage's train block resolved for its pretext variant."""
        return train_settings((self.cfg.get("pretrain") or {}).get("train", {}), self.variants[variant])

    def _resolve_pretrained(self, where: str) -> None:
        """Where each trained backbone's weights come from (``pretrained``), checked before any job: a real
        dataset's run needs weights (or ``pretrained: none``, said explicitly); a given file must exist."""
        spec = self.cfg.get("pretrained")
        backbones: dict[str, Run] = {}
        for r in self.runs:   # per backbone, a run on real data speaks for it (it needs real weights)
            if r.backbone not in backbones or not dataset_info(r.dataset).generated:
                backbones[r.backbone] = r
        for b, r in backbones.items():
            entry = PRETRAINED_NONE if spec == PRETRAINED_NONE else (spec or {}).get(b)
            if entry is None:
                if not dataset_info(r.dataset).generated:
                    raise PlanError(f"{where}: pretrained: no weights for {b}, which {r.variant} trains on "
                                    f"{r.dataset}: give pretrained: {{{b}: FILE}} (docs/weights.md lists the "
                                    "papers' files) or say pretrained: none to train from random weights")
                self.pretrained[b] = None
            elif entry == PRETRAINED_NONE:
                self.pretrained[b] = None
            elif isinstance(entry, dict):
                self.pretrain[b] = self._pretext(b, entry[PRETRAIN_KEY], where)
                source = self.cfg["pretrain"]["dataset"]
                if dataset_info(source).generated and not dataset_info(r.dataset).generated:
                    raise PlanError(f"{where}: pretrained/{b}: the pretrain stage makes this encoder from the "
                                    f"generated {source} set, but {r.variant} trains on {r.dataset}: give {b}'s "
                                    "ImageNet file (docs/weights.md) or say pretrained: none")
                self.pretrained[b] = self.layout.path("encoder", dataset=self.cfg["pretrain"]["dataset"], backbone=b)
            else:
                path = Path(entry) if Path(entry).is_absolute() else self.weights_dir / entry
                if not path.is_file():
                    raise PlanError(f"{where}: pretrained/{b}: {path}: no such file (put the backbone's weights "
                                    "there, point --config weights=DIR at their folder, or say pretrained: none)")
                self.pretrained[b] = str(path)

    def _pretext(self, backbone: str, variant: str, where: str) -> str:
        """The pretrain stage's variant for a backbone: a single-frame registry entry taking the backbone."""
        self._check_names([variant], f"{where}: pretrained/{backbone}/pretrain")
        self._check_pair(variant, backbone, f"{where}: pretrained/{backbone}/pretrain")
        if self.variants[variant].ref_offsets:
            raise PlanError(f"{where}: pretrained/{backbone}/pretrain: {variant} reads reference frames; the "
                            "pretrain stage trains on single frames (a variant with ref_offsets: [])")
        pre = self.cfg.get("pretrain")
        if not pre:
            raise PlanError(f"{where}: pretrained/{backbone}: {{pretrain: {variant}}} needs a pretrain: block "
                            "(its dataset and schedule)")
        self._check_dataset(pre["dataset"], f"{where}: pretrain")
        return variant

    def pretrained_input(self, wildcards) -> list[str]:
        """The weights file a training job starts from (a workflow output when the pretrain stage makes it)."""
        path = self.pretrained.get(wildcards.backbone)
        return [path] if path else []

    def pretrain_jobs(self) -> list[tuple[str, str, str]]:
        """(dataset, backbone, pretext variant) of every encoder the pretrain stage makes."""
        return [(self.cfg["pretrain"]["dataset"], b, v) for b, v in self.pretrain.items()]

    def pretrain_args(self, backbone: str) -> str:
        return " ".join(train_flags(self.pretrain_settings(self.pretrain[backbone])))

    def encoder_files(self) -> list[str]:
        return [self.layout.path("encoder", dataset=d, backbone=b) for d, b, _ in self.pretrain_jobs()]

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

    def train_args(self, variant: str, backbone: str) -> str:
        """engine.train flags of one run: its resolved train block (``train_settings``) and its backbone's
        weights (``--pretrained``)."""
        args = train_flags(self.train_settings(variant))
        if self.pretrained.get(backbone):
            args.append(f"--pretrained {shlex.quote(self.pretrained[backbone])}")
        return " ".join(args)

    def train_resource(self, variant: str, key: str):
        """A per-run job resource of the resolved train block (``mem_mb``, ``runtime_min``)."""
        return self.train_settings(variant).get(key, self.cfg["train"][key])

    def family(self, variant: str) -> str:
        return self.variants[variant].family

    def train_gpus(self, variant: str) -> int:
        """GPUs one training job of the variant holds (the `gpu` resource): the experiment's resolved train
        block, never the submitting host's."""
        return int(self.train_settings(variant)["gpus"])

    def train_launcher(self, variant: str) -> list[str]:
        """The command that starts engine.train: one process, or torchrun with one process per GPU (DDP;
        engine.train reads torchrun's RANK/WORLD_SIZE). ``--standalone``: a single-node rendezvous on a free
        port, so two jobs on one node never collide."""
        n = self.train_gpus(variant)
        return ["torchrun", "--standalone", f"--nproc_per_node={n}"] if n > 1 else ["python"]

    def run_gpus(self, variants: list[str] | str) -> int:
        """GPUs of an evaluation or timing job: one where its runs trained on GPUs, else none."""
        names = [variants] if isinstance(variants, str) else variants
        return int(any(self.train_gpus(v) > 0 for v in names))

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

    def count_group_identity(self, dataset: str, backbone: str) -> str:
        """The model identities of a complexity group's variants (a changed one counts the group again)."""
        return json.dumps({c.variant: self.model_identity(c.variant) for c in self.count_groups()[(dataset, backbone)]},
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
        return [self.layout.path("pred", seed=r.seeds[0], **r.__dict__) for r in self.runs
                if r.variant in q.get("variants", []) and r.dataset == q.get("dataset")]

    # ------------------------------------------------------------------ every file, from Layout
    def run_files(self, kind: str) -> list[str]:
        """One file per (run, seed): kind is "model", "metrics", "train_log" or "pred"."""
        return [self.layout.path(kind, seed=s, **r.__dict__) for r in self.runs for s in r.seeds]

    def complexity_files(self) -> list[str]:
        return [self.layout.path("complexity", **c.__dict__) for c in self.counts]

    def count_groups(self) -> dict[tuple[str, str], list[Count]]:
        """(dataset, backbone) -> its counts, made by one job (one process: one torch start-up)."""
        groups: dict[tuple[str, str], list[Count]] = {}
        for c in self.counts:
            groups.setdefault((c.dataset, c.backbone), []).append(c)
        return groups

    def complexity_dirs(self) -> list[str]:
        return [self.layout.path("complexity_group", dataset=d, backbone=b) for d, b in self.count_groups()]

    def count_group_args(self, dataset: str, backbone: str, out_dir: str) -> str:
        """metrics.complexity flags of one group: every (variant, input size) and its output file."""
        group = self.count_groups()[(dataset, backbone)]
        return " ".join("--count " + shlex.quote(f"{c.variant}@{c.height}x{c.width}={out_dir}/{c.variant}@{c.height}x{c.width}.json")
                        for c in group)

    def count_group_mem_mb(self, dataset: str, backbone: str) -> int:
        """A group's counts run one after the other: its peak is its largest count's."""
        return max(self.count_mem_mb(backbone, c.height, c.width) for c in self.count_groups()[(dataset, backbone)])

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
            "runs": [{**r.__dict__, "seeds": list(r.seeds)} for r in self.runs],
            "counts": [c.__dict__ for c in self.counts],
            "pretrained": self.pretrained,
            "pretrain": [dict(zip(("dataset", "backbone", "variant"), job)) for job in self.pretrain_jobs()],
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
