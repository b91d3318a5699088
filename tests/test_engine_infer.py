"""A real registered variant end to end: engine.train CLI (segformer on mit_b0, tiny synthetic frames, a few
iterations, resumed), engine.infer (one PNG per labelled frame, right size, ids in range), engine.fps."""
from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from PIL import Image

from common.cli import InputError
from engine import checkpoint as ckpt_io
from engine import fps, infer, train

CLASSES = 4


@pytest.fixture(scope="module")
def synthetic_root(tmp_path_factory):
    from videos.synthetic import main as make_synthetic

    root = tmp_path_factory.mktemp("syn") / "data"
    make_synthetic(["--out", str(root), "--train-videos", "2", "--val-videos", "2", "--frames", "5",
                    "--height", "32", "--width", "48", "--classes", str(CLASSES)])
    return root


def train_args(root, out, *extra):
    return ["--variant", "segformer", "--backbone", "mit_b0", "--dataset", "synthetic", "--root", str(root),
            "--out", str(out), "--threads", "1", "--progress", "none", "--batch-size", "2", *extra]


@pytest.fixture(scope="module")
def trained(synthetic_root, tmp_path_factory):
    out = tmp_path_factory.mktemp("run")
    assert train.main(train_args(synthetic_root, out, "--iters", "3", "--checkpoint-every", "2")) == 0
    return out


def test_segformer_train_resume_matches_uninterrupted(synthetic_root, trained, tmp_path, monkeypatch):
    # the same 3 iterations, killed after 2 (checkpoint at 2), then the same command again
    real_train = train.train
    monkeypatch.setattr(train, "train", lambda *a, **k: real_train(*a, **k, stop_after=2))
    with pytest.raises(train.TrainingInterrupted):
        train.main(train_args(synthetic_root, tmp_path, "--iters", "3", "--checkpoint-every", "2"))
    monkeypatch.setattr(train, "train", real_train)
    assert train.main(train_args(synthetic_root, tmp_path, "--iters", "3", "--checkpoint-every", "2")) == 0
    a = ckpt_io.load_model_file(trained / "model.pt")
    b = ckpt_io.load_model_file(tmp_path / "model.pt")
    for k in a["state_dict"]:
        assert torch.equal(a["state_dict"][k], b["state_dict"][k]), k
    assert (a["variant"], a["backbone"], a["num_classes"], a["dataset"]) == ("segformer", "mit_b0", CLASSES,
                                                                             "synthetic")
    assert a["config"]["crop"] is None and a["config"]["iters"] == 3
    rows = (trained / "train_log.csv").read_text().splitlines()
    assert rows[0].startswith("iteration,loss_total,loss_ce,lr,clips_per_s") and len(rows) == 4


def test_infer_writes_one_png_per_labelled_frame(synthetic_root, trained, tmp_path):
    from videos.datasets import open_dataset

    pred = tmp_path / "pred"
    assert infer.main(["--checkpoint", str(trained / "model.pt"), "--dataset", "synthetic", "--root",
                       str(synthetic_root), "--split", "val", "--pred", str(pred), "--threads", "1"]) == 0
    ds = open_dataset("synthetic", synthetic_root, "val")
    expected = {f"{v.name}/{f}.png" for v in ds.videos for f in v.labelled}
    written = {str(p.relative_to(pred)) for p in pred.rglob("*.png")}
    assert written == expected and len(expected) == 10
    for name in sorted(expected)[:4]:
        ids = np.array(Image.open(pred / name))
        assert ids.dtype == np.uint8 and ids.shape == (32, 48)
        assert ids.max() < CLASSES
    info = json.loads((pred / "info.json").read_text())
    assert info["frames"] == 10 and info["variant"] == "segformer" and "provenance" in info
    # no temporary folder is left beside the output
    assert [p.name for p in pred.parent.iterdir()] == ["pred"]


def test_infer_matches_direct_prediction_on_first_frame(synthetic_root, trained, tmp_path):
    """The PNG holds exactly argmax(resize(model(clip))) of the first val frame."""
    from models.outputs import predict
    from videos.clips import ClipDataset
    from videos.datasets import open_dataset

    pred = tmp_path / "p"
    infer.infer(trained / "model.pt", "synthetic", synthetic_root, "val", pred, device="cpu", threads=1)
    model, _ = ckpt_io.build_from_model_file(trained / "model.pt")
    clips = ClipDataset(open_dataset("synthetic", synthetic_root, "val"), (0,), train=False)
    clip, label = clips[0]
    video, frame = clips.item(0)
    expect = predict(model, clip[None], tuple(label.shape))[0].numpy()
    assert np.array_equal(np.array(Image.open(pred / video.name / f"{frame}.png")), expect)


def test_validate_equals_infer_then_evaluate(synthetic_root, trained, tmp_path):
    """engine.validate (the pipeline's per-run step) writes the same PNGs and the same metrics as the two CLIs."""
    from engine import validate
    from metrics import evaluate

    where = ["--dataset", "synthetic", "--root", str(synthetic_root), "--split", "val"]
    assert infer.main(["--checkpoint", str(trained / "model.pt"), *where, "--pred", str(tmp_path / "a"),
                       "--threads", "1"]) == 0
    assert evaluate.main([*where, "--pred", str(tmp_path / "a"), "--out", str(tmp_path / "a.json"),
                          "--tc-flow", "gt", "--vc-min-frames", "3"]) == 0
    assert validate.main(["--checkpoint", str(trained / "model.pt"), *where, "--pred", str(tmp_path / "b"),
                          "--out", str(tmp_path / "b.json"), "--threads", "1", "--tc-flow", "gt",
                          "--vc-min-frames", "3"]) == 0
    pngs = sorted(p.relative_to(tmp_path / "a") for p in (tmp_path / "a").rglob("*.png"))
    assert pngs == sorted(p.relative_to(tmp_path / "b") for p in (tmp_path / "b").rglob("*.png"))
    assert all((tmp_path / "a" / p).read_bytes() == (tmp_path / "b" / p).read_bytes() for p in pngs)
    a, b = (json.loads((tmp_path / f"{x}.json").read_text()) for x in "ab")
    assert a["tc_flow"] == "gt" and a["num_frames"] == 10        # the evaluate flags reached metrics.evaluate
    drop = ("provenance", "pred")
    assert {k: v for k, v in a.items() if k not in drop} == {k: v for k, v in b.items() if k not in drop}
    with pytest.raises(InputError, match="not found"):       # the infer half's errors come through unchanged
        validate.main(["--checkpoint", str(tmp_path / "none.pt"), *where, "--pred", str(tmp_path / "c"),
                       "--out", str(tmp_path / "c.json")])
    assert not (tmp_path / "c").exists() and not (tmp_path / "c.json").exists()


def test_infer_rejects_class_count_mismatch_and_checkpoint_file(synthetic_root, trained, tmp_path):
    with pytest.raises(InputError, match="not a model file|model file format"):
        infer.main(["--checkpoint", str(trained / "checkpoint.pt"), "--dataset", "synthetic", "--root",
                    str(synthetic_root), "--pred", str(tmp_path / "x")])
    with pytest.raises(InputError, match="not found"):
        infer.main(["--checkpoint", str(tmp_path / "none.pt"), "--dataset", "synthetic", "--root",
                    str(synthetic_root), "--pred", str(tmp_path / "x")])
    assert not (tmp_path / "x").exists()


def test_train_cli_rejects_unknown_variant_and_backbone(synthetic_root, tmp_path):
    with pytest.raises(InputError, match="no variant named"):
        train.main(["--variant", "nope", "--backbone", "mit_b0", "--dataset", "synthetic", "--root",
                    str(synthetic_root), "--out", str(tmp_path)])
    with pytest.raises(InputError, match="--backbone resnet18"):
        train.main(["--variant", "segformer", "--backbone", "resnet18", "--dataset", "synthetic", "--root",
                    str(synthetic_root), "--out", str(tmp_path)])


def test_train_cli_rejects_bad_model_and_clip_options_before_training(synthetic_root, tmp_path):
    with pytest.raises(InputError, match="model_options.*unknown option"):
        train.main(train_args(synthetic_root, tmp_path, "--model-options", "{no_such_option: 1}"))
    with pytest.raises(InputError, match="clip_options"):
        train.main(train_args(synthetic_root, tmp_path, "--clip-options", "{no_such_option: 1}"))
    assert not (tmp_path / "checkpoint.pt").exists()


def test_train_cli_nan_exits_1_with_message(synthetic_root, tmp_path, monkeypatch, capsys):
    import models.registry

    real_build = models.registry.build_model

    def nan_model(*a, **k):
        m = real_build(*a, **k)
        real_loss = m.loss
        m.loss = lambda out, tgt: {key: v * float("nan") for key, v in real_loss(out, tgt).items()}
        return m

    monkeypatch.setattr(models.registry, "build_model", nan_model)
    assert train.main(train_args(synthetic_root, tmp_path, "--iters", "2")) == 1
    assert "loss is not finite at iteration 1" in capsys.readouterr().err


def test_fps_json(tmp_path):
    out = tmp_path / "fps.json"
    assert fps.main(["--variant", "segformer", "--backbone", "mit_b0", "--dataset", "synthetic", "--height",
                     "32", "--width", "32", "--warmup", "1", "--iters", "2", "--threads", "1", "--out",
                     str(out)]) == 0
    r = json.loads(out.read_text())
    assert r["fps"] > 0 and r["resolution"] == [32, 32] and r["iters"] == 2 and r["batch"] == 1
    assert r["input_size"] == [32, 32] and r["repeats"] == 2 and r["iters_per_repeat"] == 1    # synthetic: native
    assert r["fps_q1"] <= r["fps"] <= r["fps_q3"] and len(r["load_average"]) == 2
    assert r["threads"] == 1 and r["dtype"] == "float32" and r["device"] == "cpu" and r["device_name"]
    assert r["variant"] == "segformer" and r["provenance"]["seed"] == 0
    if torch.cuda.is_available():
        return
    with pytest.raises(InputError, match="only measured on CUDA"):
        fps.main(["--variant", "segformer", "--backbone", "mit_b0", "--dataset", "synthetic", "--dtype",
                  "float16", "--out", str(out)])


def test_fps_times_several_variants_in_one_call(tmp_path):
    """The pipeline's per-backbone FPS job: one JSON per variant, in order; a count mismatch is one line."""
    outs = [tmp_path / "a.json", tmp_path / "b.json"]
    common = ["--backbone", "mit_b0", "--dataset", "synthetic", "--height", "32", "--width", "32", "--warmup", "0",
              "--iters", "1", "--threads", "1"]
    assert fps.main(["--variant", "segformer", "segformer_os8", *common, "--out", *map(str, outs)]) == 0
    assert [json.loads(o.read_text())["variant"] for o in outs] == ["segformer", "segformer_os8"]
    with pytest.raises(InputError, match="1 file\\(s\\) for 2 variant"):
        fps.main(["--variant", "segformer", "segformer_os8", *common, "--out", str(tmp_path / "c.json")])
    assert not (tmp_path / "c.json").exists()


def test_own_registry_file_reaches_train_and_model_file(synthetic_root, tmp_path, monkeypatch):
    """A variant only a user's registry knows (--registry or $VSS_VARIANTS) trains, and its model file
    carries the definition, so inference rebuilds it without that registry."""
    reg = tmp_path / "variants.yaml"
    reg.write_text("narrow_segformer:\n  family: segformer\n  label: narrow\n  ref_offsets: []\n"
                   "  options: {head_width: 32}\n")
    out = tmp_path / "run"
    monkeypatch.setenv("VSS_VARIANTS", str(reg))
    args = [a if a != "segformer" else "narrow_segformer" for a in train_args(synthetic_root, out, "--iters", "1")]
    assert train.main(args) == 0
    monkeypatch.delenv("VSS_VARIANTS")
    meta = ckpt_io.load_model_file(out / "model.pt")
    assert meta["variant"] == "narrow_segformer" and meta["variant_spec"]["options"] == {"head_width": 32}
    model, _ = ckpt_io.build_from_model_file(out / "model.pt")
    assert model.decode_head is not None and model.variant.name == "narrow_segformer"
    infer.infer(out / "model.pt", "synthetic", synthetic_root, "val", tmp_path / "pred", device="cpu", threads=1)
    assert len(list((tmp_path / "pred").rglob("*.png"))) == 10


def test_infer_streams_frames_and_writes_what_the_clip_forward_predicts(synthetic_root, tmp_path, monkeypatch):
    """engine.infer puts each frame of an SD-CPC model through its backbone once (models.outputs.
    StreamingPredictor) and writes the PNGs the whole-clip forward writes, batches spanning videos."""
    import models.outputs

    out = tmp_path / "run"
    args = [a if a != "segformer" else "sdcpc" for a in train_args(synthetic_root, out, "--iters", "1")]
    assert train.main(args) == 0
    from models.sdcpc import SDCPC

    extracted = []
    real_extract = SDCPC.extract
    monkeypatch.setattr(SDCPC, "extract", lambda self, frames: extracted.append(len(frames)) or real_extract(self, frames))
    infer.infer(out / "model.pt", "synthetic", synthetic_root, "val", tmp_path / "stream", device="cpu", threads=1,
                batch=3)
    monkeypatch.setattr(models.outputs, "supports_streaming", lambda m: False)   # clip forwards instead
    infer.infer(out / "model.pt", "synthetic", synthetic_root, "val", tmp_path / "clip", device="cpu", threads=1,
                batch=3)
    names = sorted(str(p.relative_to(tmp_path / "clip")) for p in (tmp_path / "clip").rglob("*.png"))
    assert len(names) == 10 and sum(extracted) == 10   # 2 videos x 5 frames, each once (a clip forward: 30)
    for name in names:
        assert np.array_equal(np.array(Image.open(tmp_path / "stream" / name)), np.array(Image.open(tmp_path / "clip" / name))), name


def test_streaming_step_equals_the_clip_forward():
    """The streaming FPS step (backbone on the new frame, cached reference features) predicts exactly what
    the whole-clip forward predicts: the meter times the same computation, minus the repeated passes."""
    import torch

    from models import build_model
    from models.outputs import predict, supports_streaming

    torch.manual_seed(0)
    model = build_model("msaf", "resnet18", num_classes=5).eval()
    clip = torch.randn(1, 3, 3, 64, 64)
    assert supports_streaming(model)
    with torch.inference_mode():
        assert torch.equal(fps.stream_step(model, clip, (64, 64))(), predict(model, clip, (64, 64)))


def test_fps_json_records_stream_timing_only_where_supported(tmp_path):
    import json

    for variant, backbone, streams in (("msaf", "resnet18", True), ("segformer", "mit_b0", False)):
        out = tmp_path / f"{variant}.json"
        fps.main(["--variant", variant, "--backbone", backbone, "--dataset", "synthetic", "--height", "32",
                  "--width", "32", "--warmup", "0", "--iters", "1", "--threads", "1", "--out", str(out)])
        r = json.loads(out.read_text())
        assert (r["fps_stream"] is not None) == streams


# ---------------------------------------------------------------- protocol: test resize, TC frames (stand-in model)
class StandIn(torch.nn.Module):
    """A 1x1 conv at 1/4 stride on the target frame, reading one reference: what infer needs of a model,
    and a record of the clip sizes it was fed."""

    def __init__(self, num_classes: int):
        super().__init__()
        from types import SimpleNamespace

        torch.manual_seed(0)
        self.conv = torch.nn.Conv2d(3, num_classes, 1)
        self.variant = SimpleNamespace(clip_offsets=(-1, 0))
        self.fed: list[tuple[int, ...]] = []

    def forward(self, clip):
        self.fed.append(tuple(clip.shape))
        return torch.nn.functional.avg_pool2d(self.conv(clip[:, -1]), 4)


def use_stand_in(monkeypatch, num_classes: int, dataset: str) -> StandIn:
    model = StandIn(num_classes).eval()
    meta = {"num_classes": num_classes, "variant": "stand_in", "backbone": "none", "dataset": dataset,
            "config": {}, "provenance": None}
    monkeypatch.setattr(infer, "build_from_model_file", lambda *a, **k: (model, meta))
    return model


def test_infer_keeps_each_frames_aspect_and_maps_back_to_its_size(tmp_path, monkeypatch):
    """VSPW frames of three aspects: fed as CFFM feeds them (keep ratio into 480x853, sides up to a multiple
    of 32), predicted at each frame's own size; info.json records every (frame -> input) size."""
    from tests.fixtures import write_vspw_tree

    root = tmp_path / "vspw"
    for name, size in (("wide", (480, 853)), ("four_three", (480, 640)), ("hd", (720, 1280))):
        write_vspw_tree(root, {name: 1}, size=size, splits={"val": []})
    (root / "val.txt").write_text("wide\nfour_three\nhd\n")
    model = use_stand_in(monkeypatch, 124, "vspw")
    info = infer.infer("stand_in.pt", "vspw", root, "val", tmp_path / "pred", device="cpu", threads=1)
    assert info["test_scale"] == [480, 853] and info["size_divisor"] == 32
    assert {(tuple(r["frame"]), tuple(r["input"])) for r in info["input_sizes"]} == {
        ((480, 853), (480, 864)), ((480, 640), (480, 640)), ((720, 1280), (480, 864))}
    assert sorted(s[-2:] for s in model.fed) == [(480, 640), (480, 864), (480, 864)]
    for name, size in (("wide", (480, 853)), ("four_three", (480, 640)), ("hd", (720, 1280))):
        assert np.array(Image.open(tmp_path / "pred" / name / "00000000.png")).shape == size


def test_validate_predicts_and_scores_every_snippet_frame_for_tc(tmp_path, monkeypatch):
    """A Cityscapes-layout tree scored with estimated flow: engine.validate predicts the 30 frames of each
    snippet (not only frame 19), and TC comes out a number over 29 pairs per snippet."""
    from engine import validate
    from tests.fixtures import write_cityscapes_tree

    root = write_cityscapes_tree(tmp_path / "cs", cities={"frankfurt": 2}, split="val", size=(16, 32))
    use_stand_in(monkeypatch, 19, "cityscapes")
    where = ["--dataset", "cityscapes", "--root", str(root), "--split", "val", "--threads", "1"]
    out = tmp_path / "m.json"
    assert validate.main(["--checkpoint", "stand_in.pt", *where, "--pred", str(tmp_path / "p"), "--out", str(out),
                          "--tc-flow", "farneback", "--test-scale", "32x64"]) == 0
    r = json.loads(out.read_text())
    assert isinstance(r["tc"], float) and r["tc_flow"] == "opencv-farneback"
    assert (r["tc_pairs"], r["tc_frames"], r["tc_videos"], r["num_frames"]) == (58, 60, 2, 2)
    info = json.loads((tmp_path / "p" / "info.json").read_text())
    assert (info["frames"], info["tc_frames"]) == (2, 58) and len(list((tmp_path / "p").rglob("*.png"))) == 60
    assert info["input_sizes"] == [{"frame": [16, 32], "input": [32, 64], "frames": 60}]
    # without TC only the annotated frames are predicted; --tc-videos 1 predicts one snippet's frames
    assert validate.main(["--checkpoint", "stand_in.pt", *where, "--pred", str(tmp_path / "q"), "--out",
                          str(tmp_path / "q.json"), "--tc-flow", "none"]) == 0
    assert len(list((tmp_path / "q").rglob("*.png"))) == 2
    assert validate.main(["--checkpoint", "stand_in.pt", *where, "--pred", str(tmp_path / "s"), "--out",
                          str(tmp_path / "s.json"), "--tc-flow", "dis", "--tc-videos", "1"]) == 0
    r = json.loads((tmp_path / "s.json").read_text())
    assert len(list((tmp_path / "s").rglob("*.png"))) == 31 and (r["tc_pairs"], r["tc_videos"]) == (29, 1)


class StreamingStandIn(torch.nn.Module):
    """The streaming hooks in another shape than MSAF's: extract returns a dict holding a tuple, decode
    averages the frames. engine.fps must stream it through the hooks alone."""

    def __init__(self):
        super().__init__()
        torch.manual_seed(0)
        self.conv = torch.nn.Conv2d(3, 4, 3, stride=4, padding=1)

    def extract(self, frames):
        f = self.conv(frames)
        return {"feats": (f, f.relu())}

    def decode(self, feats):
        a, b = feats["feats"]
        return (a.mean(1) + b[:, -1]).relu()

    def forward(self, clip):
        b, t = clip.shape[:2]
        feats = self.extract(clip.flatten(0, 1))
        return self.decode({"feats": tuple(x.unflatten(0, (b, t)) for x in feats["feats"])})


def test_stream_step_is_generic_over_the_hooks():
    from models.outputs import predict, supports_streaming

    model = StreamingStandIn().eval()
    clip = torch.randn(1, 3, 3, 32, 48)
    assert supports_streaming(model)
    with torch.inference_mode():
        assert torch.equal(fps.stream_step(model, clip, (32, 48))(), predict(model, clip, (32, 48)))
    timing = fps.time_model(model, clip, (32, 48), torch.device("cpu"), warmup=1, iters=6, repeats=3)
    assert timing["fps_stream"] > 0 and timing["fps_stream_q1"] <= timing["fps_stream"] <= timing["fps_stream_q3"]
    single = fps.time_model(model, clip[:, -1:], (32, 48), torch.device("cpu"), warmup=0, iters=1)
    assert single["fps_stream"] is None and single["repeats"] == 1     # no references: nothing to stream


def test_fps_statistics_median_and_quartiles_survive_one_hiccup():
    """Nine blocks of 4 clips at 0.1 s and one 40x slower: the median and quartiles do not move, the mean does."""
    stats = fps.fps_statistics([0.1] * 9 + [4.0], per_block=4)
    assert stats["fps"] == pytest.approx(40.0) and stats["fps_q1"] == pytest.approx(40.0)
    assert stats["fps_q3"] == pytest.approx(40.0) and stats["fps_rel_iqr"] == pytest.approx(0.0)
    assert stats["fps_mean"] == pytest.approx(40 / 4.9)                # one mean of all blocks: 8.2
    assert (stats["repeats"], stats["iters_per_repeat"], stats["ms_per_frame"]) == (10, 4, pytest.approx(25.0))
    # numpy's linear quartiles, as torch.utils.benchmark.Measurement computes them
    stats = fps.fps_statistics([1.0, 0.5, 0.25, 0.2], per_block=1)          # rates 1, 2, 4, 5
    assert (stats["fps_q1"], stats["fps"], stats["fps_q3"]) == (1.75, 3.0, 4.25)


def test_interleaved_blocks_rotate_so_every_step_shares_the_load():
    calls = []
    steps = {name: (lambda name=name: calls.append(name)) for name in "abc"}
    got = fps.measure_interleaved(steps, torch.device("cpu"), warmup=1, iters=6, repeats=3)
    assert calls[:3] == ["a", "b", "c"]                                    # one warm-up call each
    blocks = [calls[3 + 2 * i] for i in range(9)]                          # 3 rounds of 3 blocks of 2 calls
    assert blocks == ["a", "b", "c", "b", "c", "a", "c", "a", "b"]
    assert all(g["repeats"] == 3 and g["iters_per_repeat"] == 2 for g in got.values())
