"""metrics.evaluate end to end on tiny trees: values, the VSPW remap trap, refusals, warnings, JSON shape."""
import json

import numpy as np
import pytest
from PIL import Image

from common.cli import InputError, run_cli
from metrics.evaluate import main
from tests.fixtures import write_cityscapes_tree, write_synthetic_tree
from videos.datasets import open_dataset

FRAMES = 20


def write_perfect_predictions(ds, pred):
    """Predictions equal to the ground truth; ignore pixels get class 0 (a network predicts everywhere)."""
    for video in ds.videos:
        (pred / video.name).mkdir(parents=True)
        for frame in video.labelled:
            gt = ds.read_label(video, frame)
            Image.fromarray(np.where(gt == 255, 0, gt).astype(np.uint8)).save(pred / video.name / f"{frame}.png")
    return pred


@pytest.fixture(scope="module")
def synthetic(tmp_path_factory):
    """A generated synthetic tree (2 val videos x 20 frames, 24x32, 5 classes) and perfect predictions."""
    root = write_synthetic_tree(tmp_path_factory.mktemp("syn") / "data", train_videos=1, val_videos=2,
                                frames=FRAMES, size=(24, 32), classes=5, seed=3)
    ds = open_dataset("synthetic", root, "val")
    return root, write_perfect_predictions(ds, root.parent / "pred"), ds


def copy_pred(src, dst):
    import shutil
    shutil.copytree(src, dst)
    return dst


def run(tmp_path, *argv):
    out = tmp_path / "out.json"
    assert main([*argv, "--out", str(out)]) == 0
    return json.loads(out.read_text())


def test_perfect_predictions_score_one_everywhere(synthetic, tmp_path):
    root, pred, ds = synthetic
    r = run(tmp_path, "--dataset", "synthetic", "--root", str(root), "--split", "val", "--pred", str(pred))
    for key in ("miou", "miou_mmseg", "wiou", "mvc8", "mvc16", "tc"):
        assert r[key] == 1.0, key
    assert r["tc_flow"] == "gt"               # auto: the synthetic set's own flow
    assert r["num_videos"] == 2 and r["num_frames"] == 2 * FRAMES
    assert r["tc_pairs"] == 2 * (FRAMES - 1)
    # the N - K windows per video: 20 - 8 = 12 and 20 - 16 = 4
    assert r["mvc"]["windows"] == {"8": 24, "16": 8} and r["mvc"]["min_frames"] == 17
    assert len(r["iou_per_class"]) == 5
    assert set(r["provenance"]) >= {"git_commit", "packages", "config_hash"}
    assert [p.name for p in tmp_path.iterdir()] == ["out.json"]   # atomic write: no temporaries left


def test_flipped_predictions_hand_checked_against_library(synthetic, tmp_path):
    """Corrupt one frame; the CLI must equal the library fed the same arrays."""
    from metrics.consistency import VideoConsistency
    from metrics.segmentation import ConfusionMatrix

    root, pred, ds = synthetic
    bad = copy_pred(pred, tmp_path / "pred")
    video = ds.videos[0]
    frame = video.labelled[5]
    arr = np.array(Image.open(bad / video.name / f"{frame}.png"))
    arr[:, :10] = (arr[:, :10] + 1) % 5
    Image.fromarray(arr).save(bad / video.name / f"{frame}.png")

    r = run(tmp_path, "--dataset", "synthetic", "--root", str(root), "--pred", str(bad), "--tc-flow", "none")
    cm, vc = ConfusionMatrix(5), VideoConsistency()
    for v in ds.videos:
        stream = vc.start_video()
        for f in v.labelled:
            gt, p = ds.read_label(v, f), np.array(Image.open(bad / v.name / f"{f}.png"))
            cm.update(gt, p)
            stream.update(gt, p)
        vc.add_video(stream.finish())
    s = cm.scores()
    assert (r["miou"], r["miou_mmseg"], r["wiou"]) == (s.miou, s.miou_mmseg, s.wiou)
    assert (r["mvc8"], r["mvc16"]) == (vc.scores()[8], vc.scores()[16])
    assert r["miou"] < 1 and r["mvc8"] < 1
    assert r["tc"] is None and r["tc_flow"] is None and r["tc_pairs"] == 0


def test_opencv_flow_and_min_frames(synthetic, tmp_path):
    root, pred, _ = synthetic
    r = run(tmp_path, "--dataset", "synthetic", "--root", str(root), "--pred", str(pred), "--tc-flow", "farneback",
            "--tc-videos", "1", "--vc-min-frames", "21", "--vc-windows", "4", "8", "16")
    assert r["tc_flow"] == "opencv-farneback" and r["tc_videos"] == 1 and r["tc_pairs"] == FRAMES - 1
    assert 0.0 <= r["tc"] <= 1.0
    # every video has 20 frames < 21: no mVC at all -> null, not 0
    assert r["mvc8"] is None and r["mvc16"] is None and r["mvc4"] is None
    assert r["mvc"]["skipped_short"] == 2


# ---------------------------------------------------------------- refusals and warnings
def _break(pred, tmp_path, how):
    bad = copy_pred(pred, tmp_path / "pred")
    target = sorted((bad / "val_001").iterdir())[3]
    if how == "missing":
        target.unlink()
    elif how == "size":
        Image.fromarray(np.zeros((24, 31), np.uint8)).save(target)
    elif how == "range":
        arr = np.array(Image.open(target))
        arr[0, 0] = 5
        Image.fromarray(arr).save(target)
    return bad, target


@pytest.mark.parametrize("how,message", [("missing", "missing prediction"), ("size", "31x24 but its mask is 32x24"),
                                         ("range", r"label\(s\) \[5\] outside 0..4")])
def test_bad_prediction_is_an_error_naming_the_file(synthetic, tmp_path, capsys, how, message):
    root, pred, _ = synthetic
    bad, target = _break(pred, tmp_path, how)
    argv = ["--dataset", "synthetic", "--root", str(root), "--pred", str(bad), "--out", str(tmp_path / "o.json")]
    with pytest.raises(InputError, match=message) as e:
        main(argv)
    assert str(target) in str(e.value)
    with pytest.raises(SystemExit) as exit_info:
        run_cli(main, argv)
    assert exit_info.value.code == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error: ") and str(target) in err[0]
    assert not (tmp_path / "o.json").exists()


@pytest.mark.parametrize("how,kind", [("missing", "missing_prediction"), ("size", "size_mismatch"),
                                      ("range", "label_out_of_range")])
def test_bad_prediction_counted_as_warning_with_flag(synthetic, tmp_path, how, kind):
    root, pred, _ = synthetic
    bad, target = _break(pred, tmp_path, how)
    r = run(tmp_path, "--dataset", "synthetic", "--root", str(root), "--pred", str(bad), "--warn-on-bad-input")
    assert r["warnings"][kind] == 1 and sum(r["warnings"].values()) == 1
    assert str(target) in r["warning_examples"][0]
    assert r["num_frames"] == 2 * FRAMES - 1                 # the frame is left out of mIoU ...
    assert r["mvc"]["videos"] == 1 and r["mvc"]["skipped_bad_input"] == 1   # ... and its video out of mVC
    assert r["miou"] == 1.0 and r["mvc8"] == 1.0
    assert r["tc_pairs"] == 2 * (FRAMES - 1) - 2             # the two pairs touching the frame are gone


def test_missing_prediction_folder_and_unknown_flow(synthetic, tmp_path):
    root, pred, _ = synthetic
    with pytest.raises(InputError, match="prediction folder not found"):
        main(["--dataset", "synthetic", "--root", str(root), "--pred", str(tmp_path / "nope"), "--out",
              str(tmp_path / "o.json")])
    with pytest.raises(InputError, match="flow-model"):
        main(["--dataset", "synthetic", "--root", str(root), "--pred", str(pred), "--out", str(tmp_path / "o.json"),
              "--tc-flow", "learned"])


# ---------------------------------------------------------------- VSPW layout, written by hand
def write_vspw(root, videos):
    """videos: {name: [(raw mask uint8 (H, W), prediction uint8 (H, W)), ...]} -> (root, pred folder)."""
    pred = root / "pred"
    root.mkdir(parents=True)
    (root / "val.txt").write_text("".join(f"{n}\n" for n in videos))
    (root / "train.txt").write_text("")
    for name, frames in videos.items():
        for sub in ("origin", "mask"):
            (root / "data" / name / sub).mkdir(parents=True)
        (pred / name).mkdir(parents=True)
        for i, (raw, p) in enumerate(frames):
            fid = f"{i:08d}"
            Image.fromarray(np.zeros(raw.shape + (3,), np.uint8)).save(root / "data" / name / "origin" / f"{fid}.jpg")
            Image.fromarray(raw).save(root / "data" / name / "mask" / f"{fid}.png")
            Image.fromarray(p).save(pred / name / f"{fid}.png")
    return root, pred


def test_vspw_remap_trap_end_to_end(tmp_path):
    # raw 0 ("others") and 255 (void) are ignore; raw c -> train id c-1. The official evaluator forgets this.
    raw = np.array([[0, 1, 2], [255, 2, 2]], np.uint8)        # train ids [[ign, 0, 1], [ign, 1, 1]]
    pred = np.array([[5, 0, 1], [7, 1, 0]], np.uint8)         # 5 and 7 fall on ignore pixels: not counted
    root, pred_dir = write_vspw(tmp_path / "vspw", {"v1": [(raw, pred), (raw, pred)]})
    r = run(tmp_path, "--dataset", "vspw", "--root", str(root), "--pred", str(pred_dir))
    # CM: (0,0) 1, (1,1) 2, (1,0) 1 per frame -> IoU0 = 1/2, IoU1 = 2/3
    assert r["num_classes"] == 124 and r["num_frames"] == 2 and r["num_pixels"] == 8
    assert r["miou"] == pytest.approx(7 / 12, abs=1e-15) and r["miou_mmseg"] == r["miou"]
    assert r["wiou"] == pytest.approx(1 / 4 * 1 / 2 + 3 / 4 * 2 / 3, abs=1e-15)
    assert r["iou_per_class"][:3] == [0.5, pytest.approx(2 / 3, abs=1e-15), None]
    # a 2-frame video: no mVC (too short) and no TC on real data unless a flow is asked for
    assert r["mvc8"] is None and r["mvc16"] is None and r["tc"] is None and r["tc_flow"] is None
    # the official evaluator's reading (raw ids as train ids, only 255 dropped) scores the same files differently
    from metrics.segmentation import ConfusionMatrix
    official = ConfusionMatrix(124)
    official.update(raw, pred)
    assert official.scores().miou != pytest.approx(r["miou"])


def test_vspw_raw_label_out_of_range_is_refused(tmp_path):
    raw = np.array([[0, 125]], np.uint8)                        # 125 is no VSPW class
    root, pred_dir = write_vspw(tmp_path / "vspw", {"v1": [(raw, np.zeros((1, 2), np.uint8))]})
    with pytest.raises(InputError, match="00000000.png"):
        main(["--dataset", "vspw", "--root", str(root), "--pred", str(pred_dir), "--out", str(tmp_path / "o.json")])
    r = run(tmp_path, "--dataset", "vspw", "--root", str(root), "--pred", str(pred_dir), "--warn-on-bad-input")
    assert r["warnings"]["bad_ground_truth"] == 1 and r["num_frames"] == 0 and r["miou"] is None


def write_snippet_predictions(ds, pred, value_of):
    """One prediction per frame of every snippet (what engine.infer --tc-frames all writes): a constant map
    of ``value_of(video index, frame position)``, at the frame's size."""
    for i, video in enumerate(ds.videos):
        (pred / video.name).mkdir(parents=True, exist_ok=True)
        h, w = ds.read_image(video, video.frames[0]).shape[:2]
        for t, frame in enumerate(video.frames):
            Image.fromarray(np.full((h, w), value_of(i, t), np.uint8)).save(pred / video.name / f"{frame}.png")
    return pred


class ZeroFlow:
    name = "zero"

    def __call__(self, ds, video, frame, next_frame):
        h, w = ds.read_image(video, frame).shape[:2]
        return np.zeros((h, w, 2), np.float32), np.ones((h, w), bool)


def test_cityscapes_tc_over_every_snippet_pair_hand_checked(tmp_path):
    """TC on a sparse set reads the 30 frames of each snippet: 29 pairs each (ETC's eval_tc.py). With zero
    flow and constant predictions that switch class once per snippet, exactly one pair per snippet disagrees."""
    from metrics.evaluate import evaluate

    root = write_cityscapes_tree(tmp_path / "cs", cities={"frankfurt": 2}, split="val", size=(8, 16))
    ds = open_dataset("cityscapes", root, "val")
    # snippet 0: class 0 on frames 0..9, class 1 on 10..29; snippet 1: class 1 throughout
    pred = write_snippet_predictions(ds, tmp_path / "pred", lambda i, t: 1 if i or t >= 10 else 0)
    r = evaluate(ds, pred, flow_source=ZeroFlow())
    assert r["tc_pairs"] == 2 * 29 and r["tc_frames"] == 2 * 30 and r["tc_videos"] == 2
    # TC matrix (reference pred t, warped pred t+1), 128 px per pair: class 0 -> 0 on 9 pairs, 0 -> 1 on one,
    # 1 -> 1 on 19 + 29 = 48 pairs. IoU0 = 9/10, IoU1 = 48/49; both present in the reference
    assert r["tc"] == pytest.approx((9 / 10 + 48 / 49) / 2, abs=1e-12)
    assert r["tc_mmseg"] == r["tc"]
    # the labelled frame (000019, class 1 in both snippets) is all that mIoU reads: the unlabelled ones are not scored
    assert r["num_frames"] == 2 and r["mvc8"] is None and r["mvc"]["skipped_sparse"] == 2
    r1 = evaluate(ds, pred, flow_source=ZeroFlow(), tc_videos=1)
    assert r1["tc_pairs"] == 29 and r1["tc_frames"] == 30 and r1["tc_videos"] == 1


def test_cityscapes_tc_cli_with_estimated_flow_and_missing_frames(tmp_path):
    root = write_cityscapes_tree(tmp_path / "cs", cities={"frankfurt": 1}, split="val")
    ds = open_dataset("cityscapes", root, "val")
    pred = write_snippet_predictions(ds, tmp_path / "pred", lambda i, t: t % 3)
    r = run(tmp_path, "--dataset", "cityscapes", "--root", str(root), "--pred", str(pred), "--tc-flow", "farneback")
    assert r["tc_flow"] == "opencv-farneback" and r["tc_pairs"] == 29 and r["tc_frames"] == 30
    assert isinstance(r["tc"], float) and 0.0 <= r["tc"] <= 1.0
    # only the labelled frames: mIoU is computed, TC names the first missing snippet frame and the fix
    labelled_only = write_perfect_predictions(ds, tmp_path / "labelled")
    argv = ["--dataset", "cityscapes", "--root", str(root), "--pred", str(labelled_only), "--out",
            str(tmp_path / "o.json"), "--tc-flow", "farneback"]
    with pytest.raises(InputError, match="000000.png: missing prediction of an unlabelled frame TC reads.*--tc-frames all"):
        main(argv)
    r = run(tmp_path, *argv[:-4], "--tc-flow", "none")
    assert r["miou"] == 1.0 and r["tc"] is None and r["tc_pairs"] == 0 and r["tc_frames"] == 0
    with pytest.raises(InputError, match="no ground-truth flow"):
        main([*argv[:-1], "gt"])


def test_miou_conventions_both_stored_benchmark_per_dataset(tmp_path):
    """A class predicted but absent from the ground truth: the VSPW mean ignores it, the Cityscapes mean
    counts it 0. Both are stored; miou_benchmark is the dataset's own."""
    root = write_cityscapes_tree(tmp_path / "cs", cities={"frankfurt": 1}, split="val")
    ds = open_dataset("cityscapes", root, "val")
    pred = write_perfect_predictions(ds, tmp_path / "pred")
    frame = pred / ds.videos[0].name / "000019.png"
    arr = np.array(Image.open(frame))
    gt = ds.read_label(ds.videos[0], "000019")
    arr[gt == 0] = 5                        # every road pixel predicted as pole, absent from the GT
    Image.fromarray(arr).save(frame)
    r = run(tmp_path, "--dataset", "cityscapes", "--root", str(root), "--pred", str(pred), "--tc-flow", "none")
    # GT classes 0, 1, 2, 13: IoU 0, 1, 1, 1; pole (5): IoU 0 with a non-empty union
    assert r["miou"] == pytest.approx(3 / 4) and r["miou_mmseg"] == pytest.approx(3 / 5)
    assert r["miou_convention"] == "union" and r["miou_benchmark"] == r["miou_mmseg"]
    assert "non-empty union" in r["miou_benchmark_definition"]


def test_vspw_vc_convention_raw_masks_and_per_k_eligibility(tmp_path):
    """Official VSPW_code VC: raw masks (0 'others' <-> 255 void is a change) and N > K; CFFM's: remapped
    masks (both ignore: no change) and N >= --vc-min-frames for every K."""
    n = 10
    # pixel A: raw 1 throughout, predicted 0 throughout; pixel B: raw 0/255 alternating, prediction 0/1 alternating
    frames = [(np.array([[1, 0 if t % 2 else 255]], np.uint8), np.array([[0, t % 2]], np.uint8)) for t in range(n)]
    root, pred_dir = write_vspw(tmp_path / "vspw", {"v1": frames})
    base = ("--dataset", "vspw", "--root", str(root), "--pred", str(pred_dir), "--vc-windows", "4", "8", "16")
    cffm = run(tmp_path, *base)
    assert cffm["mvc4"] is None and cffm["mvc"]["skipped_short"] == 1          # 10 frames < 17
    cffm = run(tmp_path, *base, "--vc-min-frames", "10")
    # remapped, B is 255 == 255: stable ground truth, unstable prediction -> VC = 1/2 in every window
    assert cffm["mvc"]["convention"] == "cffm" and cffm["mvc4"] == 0.5 and cffm["mvc8"] == 0.5
    assert cffm["mvc"]["min_frames_per_window"] == {"4": 10, "8": 10, "16": 10}
    vspw = run(tmp_path, *base, "--vc-convention", "official")
    # raw, B changes 0 <-> 255: only A is stable, and its prediction holds -> VC = 1
    assert vspw["mvc"]["convention"] == "official" and vspw["mvc4"] == 1.0 and vspw["mvc8"] == 1.0
    assert vspw["mvc"]["windows"] == {"4": n - 4, "8": n - 8, "16": 0} and vspw["mvc16"] is None
    assert vspw["mvc"]["min_frames_per_window"] == {"4": 5, "8": 9, "16": 17} and vspw["mvc"]["min_frames"] is None
    assert vspw["mvc"]["videos_per_window"] == {"4": 1, "8": 1, "16": 0}
    assert (vspw["miou"], vspw["wiou"]) == (cffm["miou"], cffm["wiou"])    # the convention touches mVC only


def test_tc_reads_every_snippet_frame_only_on_sparse_trees(tmp_path):
    from metrics.temporal import reads_unlabelled_frames

    sparse = open_dataset("synthetic", write_synthetic_tree(tmp_path / "s", train_videos=1, val_videos=1, frames=20,
                                                            size=(16, 16), classes=3, annotate="sparse"), "val")
    dense = open_dataset("synthetic", write_synthetic_tree(tmp_path / "d", train_videos=1, val_videos=1, frames=3,
                                                           size=(16, 16), classes=3), "val")
    city = open_dataset("cityscapes", write_cityscapes_tree(tmp_path / "c", size=(8, 16)), "val")
    assert [reads_unlabelled_frames(d) for d in (sparse, dense, city)] == [True, False, True]
    assert len(sparse.videos[0].labelled) == 1 and len(sparse.videos[0].frames) == 20
