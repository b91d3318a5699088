"""One table per concept: every list the suite derives from the dataset, family/backbone and metric tables
agrees with them, and no other file spells what a table holds. Together these checks are what makes the
checklists of docs/extending.md true (a new dataset, family, backbone or metric touches only the files
named there); the last test holds the checklists to three files each."""
from __future__ import annotations

import ast
import importlib
import re
from pathlib import Path

import pytest

from common.families import BACKBONES, FAMILIES
from metrics.info import METRIC_KEYS
from videos.datasets import VideoDataset, reader_class
from videos.info import DATASET_NAMES, DATASETS

REPO = Path(__file__).resolve().parents[1]
CLIS = ("engine.train", "engine.infer", "engine.fps", "metrics.evaluate", "metrics.complexity", "videos.check")


# ---------------------------------------------------------------------------------------------- datasets
@pytest.mark.parametrize("name", DATASET_NAMES)
def test_each_dataset_row_names_its_reader_and_layout(name):
    info, cls = DATASETS[name], reader_class(name)
    assert issubclass(cls, VideoDataset) and cls.name == name
    assert info.gt_flow == (cls.read_flow is not VideoDataset.read_flow)   # TC's `auto` flow and the check
    if info.generated:   # the row's class count and size are the generator's defaults
        gen = importlib.import_module(info.generator)
        assert (gen.DEFAULTS["classes"], gen.DEFAULTS["height"], gen.DEFAULTS["width"]) == \
               (info.num_classes, *info.test_size)
    else:   # 0: the reader sets it when it opens a tree (VSPW, from this table)
        assert cls.num_classes in (0, info.num_classes)
    assert "{split}" in info.split_marker


@pytest.mark.parametrize("module", CLIS)
def test_every_cli_offers_exactly_the_table_datasets(module, capsys):
    mod = importlib.import_module(module)
    with pytest.raises(SystemExit):
        mod.main(["--dataset", "no_such_set"])
    offered = re.search(r"invalid choice: 'no_such_set' \(choose from (.*)\)", capsys.readouterr().err).group(1)
    assert [c.strip(" '") for c in offered.split(",")] == list(DATASET_NAMES)


def test_experiment_schema_names_come_from_the_tables():
    from workflow.plan import SCHEMA_PATH, experiment_schema

    schema = experiment_schema()["$defs"]
    assert schema["dataset"]["enum"] == list(DATASETS)
    assert schema["backbone"]["enum"] == list(BACKBONES)
    assert schema["family"]["enum"] == list(FAMILIES)
    text = SCHEMA_PATH.read_text()
    for name in (*DATASETS, *BACKBONES, *FAMILIES):   # the file itself spells none of them
        assert not re.search(rf"\b{name}\b", text.split("properties:", 1)[0].split("$defs:", 1)[1]), name


def test_engine_config_takes_the_dataset_rows_training_defaults():
    from engine.config import resolve_config

    for name, info in DATASETS.items():
        cfg = resolve_config(name)
        for key, value in info.train.items():
            assert getattr(cfg, key) == value, (name, key)


# ---------------------------------------------------------------------------------------------- families
def test_family_table_matches_the_model_code_and_the_registry():
    """What the model modules and models/registry.py expose equals the table."""
    from models.registry import FAMILIES as REGISTRY_FAMILIES
    from models.registry import load_variants

    assert REGISTRY_FAMILIES == {f.name: f.module for f in FAMILIES.values()}
    for fam in FAMILIES.values():
        assert tuple(importlib.import_module(fam.module).BACKBONES) == fam.backbones, fam.name
    from models.backbones import CNN_BACKBONES
    from models.backbones.mit import MIT_SETTINGS

    assert set(CNN_BACKBONES) | set(MIT_SETTINGS) == set(BACKBONES)
    assert {v.family for v in load_variants().values()} == set(FAMILIES)


# ---------------------------------------------------------------------------------------------- metrics
def test_metrics_evaluate_writes_every_metric_of_the_table(tmp_path):
    """Scored against its own ground truth, every metric of the table is in the result, as 1.0."""
    from metrics.evaluate import evaluate
    from videos.datasets import open_dataset
    from videos.synthetic import generate

    root = generate(tmp_path / "s", 1, 1, 4, 16, 16, 3, 0, "dense", 1.0)
    ds = open_dataset("synthetic", root, "val")
    for v in ds.videos:
        (tmp_path / "pred" / v.name).mkdir(parents=True)
        for f in v.labelled:
            from PIL import Image

            Image.fromarray(ds.read_label(v, f)).save(tmp_path / "pred" / v.name / f"{f}.png")
    from metrics.flow import make_flow_source

    result = evaluate(ds, tmp_path / "pred", flow_source=make_flow_source("gt"), vc_min_frames=1,
                      window_lengths=(2, 8, 16))
    assert set(METRIC_KEYS) <= set(result)
    assert result["miou"] == result["tc"] == 1.0


# ---------------------------------------------------------------------------------------------- no copies
def _string_literals(path: Path):
    """Every string constant of a Python file that is not a docstring."""
    tree = ast.parse(path.read_text())
    docs = {id(n.body[0].value) for n in ast.walk(tree)
            if isinstance(n, (ast.Module, ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)) and n.body
            and isinstance(n.body[0], ast.Expr) and isinstance(n.body[0].value, ast.Constant)}
    for n in ast.walk(tree):
        if isinstance(n, ast.Constant) and isinstance(n.value, str) and id(n) not in docs:
            yield n.lineno, n.value


# Where a name may be spelled: its table; the reader or model code it names; the papers' own table
# descriptions (reports/paper.py: which dataset and baseline a printed table uses); the complexity CLI's
# paper-convention input sizes; benchmarks and tests.
ALLOWED = {
    "dataset": {"videos/info.py", "videos/vspw.py", "videos/cityscapes.py", "videos/camvid.py",
                "reports/paper.py", "metrics/complexity.py", "metrics/bench.py"},
    "backbone": {"common/families.py", "reports/paper.py"},
    "metric": {"metrics/info.py", "metrics/evaluate.py", "metrics/temporal.py"},
}


def test_no_other_file_spells_a_dataset_backbone_or_metric_key():
    kinds = {**{d: "dataset" for d in DATASETS}, **{b: "backbone" for b in BACKBONES},
             **{k: "metric" for k in METRIC_KEYS}}
    found = []
    for path in sorted(REPO.rglob("*.py")):
        rel = path.relative_to(REPO).as_posix()
        if rel.split("/")[0] in ("tests", "benchmarks", "models", "results", ".snakemake") or rel == "conftest.py":
            continue
        for line, text in _string_literals(path):
            if text in kinds and rel not in ALLOWED[kinds[text]]:
                found.append(f"{rel}:{line}: {text!r}")
    for path in [REPO / "Snakefile", *sorted((REPO / "workflow" / "rules").glob("*.smk")),
                 *sorted((REPO / "config" / "schemas").glob("*.yaml"))]:
        code = "\n".join(line.split("#")[0] for line in path.read_text().splitlines())
        found += [f"{path.relative_to(REPO)}: {name}" for name in kinds if re.search(rf"\b{name}\b", code)]
    assert not found, found


def test_conda_env_pins_equal_requirements():
    import yaml

    env = yaml.safe_load((REPO / "workflow" / "envs" / "vss-bench.yaml").read_text())
    pip = next(d["pip"] for d in env["dependencies"] if isinstance(d, dict))
    reqs = [line.strip() for line in (REPO / "requirements.txt").read_text().splitlines()
            if line.strip() and not line.startswith("#")]
    assert pip == reqs


def test_config_readme_describes_every_key():
    """config/README.md names every key of config.yaml, of the experiment schema (nested ones as a/b) and of
    the registry schema."""
    import yaml

    from workflow.plan import CONFIG_KEYS, SCHEMA_PATH

    text = (REPO / "config" / "README.md").read_text()

    def keys(schema, prefix=""):
        for name, sub in schema.get("properties", {}).items():
            yield prefix + name
            if sub.get("type") == "object" and "properties" in sub:
                yield from keys(sub, prefix + name + "/")
            if "additionalProperties" in sub and isinstance(sub["additionalProperties"], dict):
                yield from keys(sub["additionalProperties"], prefix + name + "/NAME/")
            if sub.get("type") == "array" and isinstance(sub.get("items"), dict):
                yield from keys(sub["items"], prefix + name + "/N/")

    experiment = [k for k in keys(yaml.safe_load(SCHEMA_PATH.read_text()))
                  if not k.startswith(("datasets/NAME/generate/", "complexity/N/", "report/qualitative/"))]
    registry = keys(yaml.safe_load((REPO / "config" / "schemas" / "variants.schema.yaml").read_text())
                    ["additionalProperties"])
    missing = [k for k in [*CONFIG_KEYS, *experiment, *registry] if f"`{k}`" not in text]
    assert not missing, missing


def test_extending_checklists_name_at_most_three_existing_files():
    """docs/extending.md: each "New ..." checklist names at most three files, and each exists (a path with
    <placeholders> names an existing folder)."""
    text = (REPO / "docs" / "extending.md").read_text()
    sections = re.findall(r"^## (New \w+)\n(.*?)(?=^## |\Z)", text, re.S | re.M)
    assert {name for name, _ in sections} == {"New variant", "New family", "New backbone", "New dataset",
                                              "New metric"}
    for name, body in sections:
        numbered = re.findall(r"^\d+\. (.*)$", body, re.M)
        items = [re.match(r"`([^`]+)`", line).group(1) for line in numbered]   # each step starts with its file
        assert 1 <= len(items) <= 3, (name, items)
        for path in items:
            target = REPO / (path.split("<")[0].rsplit("/", 1)[0] if "<" in path else path)
            assert target.exists(), (name, path)
