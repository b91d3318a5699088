"""reports/: the papers' numbers as data, the paper diff, the LaTeX/CSV tables and the plots, on a hand-made
results tree (no training)."""
from __future__ import annotations

import json
import math
import re
import shutil
import subprocess

import pandas as pd
import pytest

from common.cli import InputError
from models.registry import load_variants
from reports import paper as P
from reports import compare, latex, plots, tables

VARIANTS = load_variants()


# ---------------------------------------------------------------------------------------------- reported.csv
def test_reported_loads_every_table_with_registry_names():
    df = P.load_reported(variants=VARIANTS)
    assert set(df.table) == set(P.TABLES)
    # every printed cell of the six tables (411, checked against the papers' text) + 9 P-sweep cells of the text
    assert len(df) == 420
    assert set(df.variant) - {""} <= set(VARIANTS)
    # every registry variant of the papers' ablation tables has its row
    for v in ("sdcpc_only_dssa", "sdcpc_wo_multiscale", "sdcpc_m1", "msaf_baseline_tr", "msaf_wo_dcn"):
        assert v in set(df.variant)
    # reported-only rows exist (methods the suite does not run), e.g. CFFM-VSS and MRCFA on MiT-B1
    ro = df[(df.table == "sdcpc_t1") & (df.variant == "")]
    assert {"CFFM-VSS", "MRCFA", "OCRNet"} <= set(ro.row)


def test_reported_spot_values():
    df = P.load_reported()
    cell = lambda t, r, b, c, res=None: df[(df.table == t) & (df.row == r) & (df.backbone == b) & (df.column == c)
                                          & ((df.resolution == res) if res else True)].value.item()
    assert cell("sdcpc_t1", "SD-CPC(ours)", "mit_b1", "GFLOPs") == 69.2
    assert cell("sdcpc_t3", "w/o LA", "mit_b1", "mIoU") == 38.98
    assert cell("msaf_t1", "Ours", "resnet18", "FPS", "512x1024") == 24.39
    assert cell("msaf_t1", "Ours", "resnet18", "FPS", "768x1536") == 13.54
    assert cell("msaf_t2", "Ours", "hrnet_w48", "mIoU-T") == 78.8
    assert cell("msaf_t3", "Baseline + TR", "resnet50", "MonA") == 0.0


def test_derived_cells_are_computed_not_typed():
    df = P.load()
    d = df[df.derived]
    get = lambda t, r, c, b="mit_b1": d[(d.table == t) & (d.row == r) & (d.column == c) & (d.backbone == b)].value.item()
    # P sweep: Table 1 SD-CPC MiT-B1 (39.9 / 88.9 / 84.7) + the gains the text states
    assert get("sdcpc_p", "P=4", "mIoU") == pytest.approx(39.9)
    assert get("sdcpc_p", "P=9", "mIoU") == pytest.approx(40.1)
    assert get("sdcpc_p", "P=16", "mVC16") == pytest.approx(85.2)
    # FPS ratios to the table's baseline row on the same backbone and resolution
    assert get("sdcpc_t1", "SD-CPC(ours)", "FPS ratio") == pytest.approx(32.54 / 68.67, abs=1e-4)
    assert get("sdcpc_p", "P=16", "FPS ratio") == pytest.approx(21.13 / 32.54, abs=1e-4)
    assert get("msaf_t1", "Ours", "FPS ratio", "pspnet18") == pytest.approx(7.91 / 10.99, abs=1e-4)
    assert get("msaf_t1", "Ours", "FPS ratio", "pspnet101") == pytest.approx(1.82 / 2.78, abs=1e-4)
    assert "FPS ratio" not in set(df[df.table == "msaf_t2"].column)   # CamVid has no baseline row
    assert not any(r.derived for r in P.load_reported().itertuples())


def test_within_tolerance():
    assert P.within(100.0, 104.9, "5%") and not P.within(100.0, 105.2, "5%")
    assert P.within(36.5, 37.5, "1.0") and not P.within(36.5, 37.6, "1.0")
    assert P.within(1.0, 5.0, "") is None


@pytest.mark.parametrize("mutate, needle", [
    (lambda t: t.replace("sdcpc,sdcpc_t1,SegFormer,mit_b1,segformer,vspw,mIoU,36.5", "sdcpc,sdcpc_t1,SegFormer,mit_b1,segformer,vspw,mIoU,abc", 1), ":2: value 'abc'"),
    (lambda t: t.replace("sdcpc,sdcpc_t1,SegFormer,mit_b1,segformer", "sdcpc,sdcpc_t9,SegFormer,mit_b1,segformer", 1), ":2: table 'sdcpc_t9'"),
    (lambda t: t.replace("sdcpc,sdcpc_t1,SegFormer,mit_b1,segformer", "sdcpc,sdcpc_t1,SegFormer,mit_b1,segfromer", 1), ":2: variant 'segfromer'"),
    (lambda t: t.replace(",vspw,mIoU,36.5,1.0,480x853", ",vspw,mIoU,36.5,1.0,480by853", 1), ":2: resolution"),
    (lambda t: t + t.splitlines()[1] + "\n", "appears twice"),
])
def test_reported_errors_name_file_and_line(tmp_path, mutate, needle):
    bad = tmp_path / "reported.csv"
    bad.write_text(mutate(P.REPORTED_PATH.read_text()))
    with pytest.raises(InputError) as e:
        P.load_reported(bad, VARIANTS)
    assert str(bad) in str(e.value) and needle in str(e.value) and "\n" not in str(e.value)


def test_tex_escape():
    assert latex.tex_escape("a_b & 5% #1 {x} $") == r"a\_b \& 5\% \#1 \{x\} \$"
    assert latex.tex_escape("w/o MCP-CL") == "w/o MCP-CL"


# ---------------------------------------------------------------------------------------------- a fake experiment
def _write(path, obj):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(obj))


@pytest.fixture()
def fake_results(tmp_path):
    """A hand-made experiment 'fake': segformer/sdcpc/sdcpc_wo_la on synthetic mit_b0 (2 seeds), complexity of
    sdcpc MiT-B1 at 480x853 matching the paper and segformer MiT-B1 off by 20%, FPS of all three."""
    exp = tmp_path / "fake"
    runs = [{"dataset": "synthetic", "backbone": "mit_b0", "variant": v} for v in ("segformer", "sdcpc", "sdcpc_wo_la")]
    counts = [{"dataset": "vspw", "backbone": "mit_b1", "variant": "sdcpc", "height": 480, "width": 853},
              {"dataset": "vspw", "backbone": "mit_b1", "variant": "segformer", "height": 480, "width": 853}]
    counts += [{**r, "height": 32, "width": 32} for r in runs]
    plan = {"experiment": "fake", "variants_file": "config/variants.yaml", "seeds": [0, 1],
            "roots": {"synthetic": str(exp / "data" / "synthetic")}, "test_sizes": {"synthetic": [32, 32]},
            "runs": runs, "counts": counts, "evaluate": {"split": "val", "tc_flow": "gt"}, "fps": {},
            "report": {"gflops": "fvcore", "qualitative": {"dataset": "synthetic", "variants": ["segformer", "sdcpc"],
                                                           "frames": 2}}}
    _write(exp / "plan.json", plan)
    miou = {"segformer": (0.50, 0.52), "sdcpc": (0.60, 0.64), "sdcpc_wo_la": (0.55, 0.55)}
    for v, seeds in miou.items():
        for s, m in enumerate(seeds):
            _write(exp / "runs/synthetic/mit_b0" / v / f"seed{s}" / "metrics.json",
                   {"miou": m, "wiou": m + 0.1, "mvc8": 0.8, "mvc16": 0.7, "tc": 0.9, "tc_flow": "gt"})
            log = exp / "runs/synthetic/mit_b0" / v / f"seed{s}" / "train_log.csv"
            log.write_text("iteration,loss_total,lr\n1,2.0,0.1\n2,1.5,0.1\n3,1.0,0.1\n")
        _write(exp / "fps/synthetic/mit_b0" / f"{v}.json",
               {"fps": {"segformer": 100.0, "sdcpc": 50.0, "sdcpc_wo_la": 40.0}[v], "device_name": "TestCPU",
                "threads": 1, "resolution": [32, 32]})
        _write(exp / "complexity/synthetic/mit_b0" / f"{v}@32x32.json",
               {"params": 4_000_000, "gflops": 0.05, "gflops_paper_convention": 0.04, "params_train_only": 0})
    _write(exp / "complexity/vspw/mit_b1/sdcpc@480x853.json",
           {"params": 15_000_000, "gflops": 70.0, "gflops_paper_convention": 69.2, "params_train_only": 1000})
    _write(exp / "complexity/vspw/mit_b1/segformer@480x853.json",
           {"params": 13_800_000, "gflops": 32.0, "gflops_paper_convention": 26.6, "params_train_only": 0})
    return tmp_path


def test_tables_on_fake_results(fake_results):
    assert tables.main(["--experiment", "fake", "--results", str(fake_results)]) == 0
    out = fake_results / "fake" / "tables"
    for t in P.TABLES:
        assert (out / f"{t}.csv").exists() and (out / f"{t}.tex").exists()
    diff = pd.read_csv(out / "paper_diff.csv", keep_default_na=False)
    assert set(diff.status) <= set(compare.STATUSES)
    row = lambda t, r, b, c: diff[(diff.table == t) & (diff.row == r) & (diff.backbone == b) & (diff.column == c)].iloc[0]
    # complexity at the paper's resolution: compared with the tolerance (69.2 vs 70.0 within 5%: match)
    r = row("sdcpc_t1", "SD-CPC(ours)", "mit_b1", "GFLOPs")
    assert r.status == "match" and float(r.delta) == pytest.approx(0.8)
    r = row("sdcpc_t1", "SD-CPC(ours)", "mit_b1", "Params")
    assert r.status == "match" and float(r.ours) == pytest.approx(15.0)
    # segformer fvcore 32.0 vs 26.6 deviates; the reason says the paper-convention count matches
    r = row("sdcpc_t1", "SegFormer", "mit_b1", "GFLOPs")
    assert r.status == "deviates" and "paper-convention count 26.6 matches" in r.reason
    # reported-only rows: not run, with the reason
    r = row("sdcpc_t1", "CFFM-VSS", "mit_b1", "mIoU")
    assert r.status == "not run" and "reported only" in r.reason
    # SOTA table accuracy without a run on VSPW/MiT-B1: not run (no stand-in from another dataset)
    assert row("sdcpc_t1", "SD-CPC(ours)", "mit_b1", "mIoU").status == "not run"
    # ablation table: the synthetic run stands in, mean over seeds, never compared
    r = row("sdcpc_t3", "SD-CPC", "mit_b1", "mIoU")
    assert r.status == "not comparable" and float(r.ours) == pytest.approx(62.0)
    assert float(r.ours_std) == pytest.approx(math.sqrt(((60 - 62) ** 2 + (64 - 62) ** 2) / 1), abs=1e-4)
    assert "synthetic/mit_b0" in r.reason
    # absolute FPS never compared across devices
    r = row("sdcpc_t3", "SD-CPC", "mit_b1", "GFLOPs")
    assert r.status == "match"
    # MSAF Table 3 check marks come from the registry's options and all agree with the paper: configuration
    # checks, counted apart from reproduced numbers
    m3 = diff[(diff.table == "msaf_t3") & diff.column.isin(["MonA", "StaA", "SemA"])]
    assert len(m3) == 27 and set(m3.status) == {"config check"}

    cross = pd.read_csv(out / "cross.csv")
    sd = cross[cross.variant == "sdcpc"].iloc[0]
    assert sd.mIoU == pytest.approx(62.0) and sd.FPS == 50.0 and sd.Params == pytest.approx(4.0)
    assert sd["GFLOPs"] == pytest.approx(0.05)

    tex = (out / "sdcpc_t1.tex").read_text()
    assert r"\toprule" in tex and r"\bottomrule" in tex and r"\midrule" in tex
    assert r"\textit{CFFM-VSS}$^\dagger$" in tex           # reported-only rows marked
    assert r"\textbf{51.1}" in tex                          # best paper mIoU (SD-CPC MiT-B5) in bold
    assert "commit" in tex and "FPS: not measured" in tex  # provenance; no VSPW timing in this experiment
    assert "TestCPU" in (out / "sdcpc_p.tex").read_text()   # the device of the stand-in timings
    caption = lambda t: re.search(r"\\caption\{(.*)\}\n\\label", (out / f"{t}.tex").read_text(), re.S).group(1)
    assert "FPS" not in caption("sdcpc_t3") and "TC flow" not in caption("sdcpc_t3")   # columns it does not have
    assert "TC flow: gt" in caption("msaf_t1") or "TC flow: not measured" in caption("msaf_t1")
    t3 = (out / "sdcpc_t3.tex").read_text()
    assert r"\textbf{62.0" in t3                            # best of ours in bold
    for frag in out.glob("*.tex"):  # no TeX on the test machine: at least braces and environments balance
        text = frag.read_text().replace(r"\{", "").replace(r"\}", "")
        assert text.count("{") == text.count("}"), frag.name
        assert text.count(r"\begin{") == text.count(r"\end{"), frag.name
        body = re.sub(r"\\(input|label)\{[^}]*\}", "", text.split("\n", 1)[1]).replace(r"\_", "")
        assert "_" not in body, frag.name  # every underscore escaped (file names and labels aside)
    doc = (out / "tables.tex").read_text()
    for t in list(P.TABLES) + ["cross", "complexity"]:
        assert rf"\input{{{t}.tex}}" in doc
    assert doc.count(r"\begin{document}") == 1
    # one diff row per (table, row, column), "-" cells of the paper included with an empty paper value;
    # every printed or derived cell (descriptive Year excluded) is among them with its value
    rep = P.load()
    rep = rep[rep.column != "Year"]
    keys = set(zip(diff.table, diff.row, diff.backbone, diff.resolution, diff.column))
    assert len(keys) == len(diff)
    for r in rep.itertuples():
        assert (r.table, r.row, r.backbone, r.resolution, r.column) in keys
    assert diff.paper_value.replace("", float("nan")).astype(float).notna().sum() == len(rep)


def test_new_registry_variant_gets_a_table_row(fake_results, tmp_path):
    """A registry entry with `tables: [sdcpc_t3]` and no paper row appears in that table, marked as ours only."""
    reg = tmp_path / "variants.yaml"
    reg.write_text((P.REPO_ROOT / "config" / "variants.yaml").read_text()
                   + "sdcpc_p25:\n  base: sdcpc\n  label: P=25\n  options: {points: 25}\n  tables: [sdcpc_t3]\n")
    plan_path = fake_results / "fake" / "plan.json"
    plan = json.loads(plan_path.read_text())
    plan["variants_file"] = str(reg)
    plan["runs"].append({"dataset": "synthetic", "backbone": "mit_b0", "variant": "sdcpc_p25"})
    plan_path.write_text(json.dumps(plan))
    _write(fake_results / "fake/runs/synthetic/mit_b0/sdcpc_p25/seed0/metrics.json", {"miou": 0.7})
    assert tables.main(["--experiment", "fake", "--results", str(fake_results)]) == 0
    t3 = pd.read_csv(fake_results / "fake" / "tables" / "sdcpc_t3.csv")
    new = t3[t3.variant == "sdcpc_p25"].iloc[0]
    assert new.method == "P=25" and bool(new.ours_only) and new["mIoU ours"] == pytest.approx(70.0)
    assert pd.isna(new["mIoU paper"])
    assert r"P=25$^\ast$" in (fake_results / "fake" / "tables" / "sdcpc_t3.tex").read_text()


def test_plots_on_fake_results(fake_results):
    assert plots.main(["--experiment", "fake", "--results", str(fake_results)]) == 0
    out = fake_results / "fake" / "plots"
    for name in ("tradeoff", "p_sweep", "ablation", "training", "qualitative"):
        assert (out / f"{name}.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
        assert (out / f"{name}.pdf").read_bytes()[:5] == b"%PDF-"


@pytest.mark.parametrize("cli", [tables, plots])
def test_missing_results_folder_is_one_line_error(tmp_path, capsys, cli):
    """--results pointing nowhere is an error (exit 1, one line naming it), not tables with nothing measured."""
    from common.cli import run_cli

    missing = tmp_path / "nowhere"
    with pytest.raises(SystemExit) as e:
        run_cli(cli.main, ["--experiment", "smoke", "--results", str(missing)])
    err = capsys.readouterr().err.strip().splitlines()
    assert e.value.code == 1 and len(err) == 1 and str(missing) in err[0] and "results folder not found" in err[0]
    assert not missing.exists()


@pytest.mark.skipif(shutil.which("pdflatex") is None, reason="no TeX on this machine (a test-time tool)")
def test_tables_tex_compiles_without_overfull_boxes(fake_results):
    """The standalone tables.tex compiles with pdflatex, every table fits the page (no overfull box)."""
    assert tables.main(["--experiment", "fake", "--results", str(fake_results)]) == 0
    out = fake_results / "fake" / "tables"
    res = subprocess.run(["pdflatex", "-interaction=nonstopmode", "-halt-on-error", "tables.tex"], cwd=out,
                         capture_output=True, text=True, timeout=120)
    log = (out / "tables.log").read_text(errors="replace")
    assert res.returncode == 0, log[-2000:]
    assert "Overfull" not in log and (out / "tables.pdf").stat().st_size > 0


def _fps_cell(row: dict, table: str, fps: dict) -> compare.Cell:
    from reports.results import Measured

    meas = Measured()
    meas.fps.update(fps)
    return compare.judge(row, P.COLUMNS["FPS ratio"], compare.Context(P.TABLES[table], meas, VARIANTS, {}))


def test_fps_ratio_flagged_when_timing_spread_is_large():
    """An FPS ratio whose two timings spread (IQR/median) over FPS_SPREAD_LIMIT together carries the flag;
    a tight one does not."""
    from reports.results import fps_spread

    row = {"value": 0.47, "decimals": 2, "variant": "sdcpc", "dataset": "vspw", "backbone": "mit_b1",
           "resolution": "480x853", "row": "SD-CPC(ours)", "tolerance": "15%"}
    for spread, flagged in ((0.02, False), (0.10, True)):
        cell = _fps_cell(row, "sdcpc_t1", {("vspw", "mit_b1", v): {"fps": f, "device": "TestCPU", "spread": spread}
                                           for v, f in (("sdcpc", 30.0), ("segformer", 64.0))})
        assert cell.ours == pytest.approx(30 / 64) and cell.status == "match"
        assert cell.unstable_timing == flagged and ("timing spread large" in cell.reason) == flagged
    assert fps_spread({"fps": 40.0, "fps_q1": 38.0, "fps_q3": 42.0}) == pytest.approx(0.1)
    assert fps_spread({"fps": 40.0}) is None                     # an FPS file from before the quartiles


def test_fps_ratio_against_another_papers_timing_is_not_comparable():
    """MSAF's PSPNet-18/50/101 FPS are TDNet's timings on TDNet's GPU (tagged in reported.csv): the derived
    Ours/PSPNet ratios mix two devices. Ratios the paper timed on one device stay comparable."""
    df = P.load()
    ratios = df[(df.table == "msaf_t1") & (df.column == "FPS ratio")]
    mixed = ratios[ratios.not_comparable != ""]
    assert set(mixed.backbone) == {"pspnet18", "pspnet50", "pspnet101"}
    assert all("TDNet" in r for r in mixed.not_comparable)
    assert (df[(df.table == "sdcpc_t1") & (df.column == "FPS ratio")].not_comparable == "").all()
    row = mixed[mixed.backbone == "pspnet18"].iloc[0].to_dict()
    cell = _fps_cell(row, "msaf_t1", {("cityscapes", "pspnet18", v): {"fps": f, "device": "TestGPU", "spread": 0.01}
                                      for v, f in (("msaf", 7.9), ("msaf_baseline", 11.0))})
    assert cell.status == "not comparable" and cell.ours == pytest.approx(7.9 / 11.0) and cell.delta is None
    assert "timed by TDNet on its own GPU" in cell.reason


def test_benchmark_miou_and_its_rule_in_captions():
    """Tables read miou_benchmark (the dataset's own convention), an older metrics.json's miou otherwise;
    each caption names the rule."""
    from metrics.info import METRICS

    assert METRICS["mIoU"].key == "miou_benchmark" and METRICS["mIoU"].fallback_key == "miou"
    assert "non-empty union" in latex.miou_definition("cityscapes")
    assert "present in the ground truth" in latex.miou_definition("vspw")


def test_a_run_fills_only_the_paper_row_of_its_own_test_size():
    """MSAF Table 1 prints a ResNet-18 row per test size (512 and 768 short side): a run tested at 512x1024
    is judged against the 512 row; beside the 768 row it is shown, never scored."""
    from reports.results import Measured

    df = P.load()
    rows = df[(df.table == "msaf_t1") & (df.backbone == "resnet18") & (df.variant == "msaf") & (df.column == "mIoU-V")]
    by_size = {r["resolution"]: r for r in (row.to_dict() for _, row in rows.iterrows())}
    assert {"512x1024", "768x1536"} <= set(by_size)
    meas = Measured()
    meas.metrics[("cityscapes", "resnet18", "msaf")] = {P.COLUMNS["mIoU-V"].key: [75.5, 75.9]}
    ctx = compare.Context(P.TABLES["msaf_t1"], meas, VARIANTS, {"test_sizes": {"cityscapes": [512, 1024]}})
    own = compare.judge(by_size["512x1024"], P.COLUMNS["mIoU-V"], ctx)
    other = compare.judge(by_size["768x1536"], P.COLUMNS["mIoU-V"], ctx)
    assert own.status == "match" and own.ours == pytest.approx(75.7)
    assert other.status == "not comparable" and other.ours == pytest.approx(75.7) and other.delta is None
    assert other.reason == "ours tested at 512x1024, the paper's row at 768x1536"
