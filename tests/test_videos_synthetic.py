"""The synthetic generator: determinism, flow correctness, annotation modes, content, CLI."""
from __future__ import annotations

import json

import numpy as np
import pytest

from common.cli import InputError
from tests.fixtures import write_synthetic_tree
from videos import synthetic
from videos.datasets import open_dataset


def _tree_bytes(root):
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def test_same_seed_same_bytes(tmp_path):
    a = write_synthetic_tree(tmp_path / "a", train_videos=2, val_videos=1, frames=5, size=(24, 32), seed=3)
    b = write_synthetic_tree(tmp_path / "b", train_videos=2, val_videos=1, frames=5, size=(24, 32), seed=3)
    ta, tb = _tree_bytes(a), _tree_bytes(b)
    assert ta.keys() == tb.keys() and ta == tb
    assert "data/val_000/flow/00003.npy" in ta and "data/val_000/flow/00004.npy" not in ta
    c = write_synthetic_tree(tmp_path / "c", train_videos=2, val_videos=1, frames=5, size=(24, 32), seed=4)
    assert _tree_bytes(c)["data/train_000/origin/00000.png"] != ta["data/train_000/origin/00000.png"]


def test_val_videos_independent_of_train_count(tmp_path):
    a = write_synthetic_tree(tmp_path / "a", train_videos=1, val_videos=1, frames=3, size=(16, 16))
    b = write_synthetic_tree(tmp_path / "b", train_videos=3, val_videos=1, frames=3, size=(16, 16))
    assert (a / "data/val_000/mask/00002.png").read_bytes() == (b / "data/val_000/mask/00002.png").read_bytes()


def _warp_check(ds):
    """Backward-warp labels of t+1 by the flow t->t+1 (nearest) and compare with labels of t."""
    n_valid = n_invalid = n_moving = 0
    for v in ds.videos:
        for t in range(len(v.frames) - 1):
            lab_t = ds.read_raw_label(v, v.frames[t])
            lab_t1 = ds.read_raw_label(v, v.frames[t + 1])
            flow, valid = ds.read_flow(v, v.frames[t])
            h, w = lab_t.shape
            yy, xx = np.mgrid[0:h, 0:w]
            ty = np.rint(yy + flow[..., 1]).astype(int)
            tx = np.rint(xx + flow[..., 0]).astype(int)
            assert ((ty[valid] >= 0) & (ty[valid] < h) & (tx[valid] >= 0) & (tx[valid] < w)).all()
            warped = lab_t1[ty[valid], tx[valid]]
            np.testing.assert_array_equal(warped, lab_t[valid], err_msg=f"{v.name} frame {t}")
            n_valid += valid.sum()
            n_invalid += (~valid).sum()
            n_moving += (np.abs(flow[valid]).sum(axis=1) > 0).sum()
    return n_valid, n_invalid, n_moving


def test_flow_reproduces_labels_on_valid_pixels(tmp_path):
    root = write_synthetic_tree(tmp_path, train_videos=3, val_videos=2, frames=12, size=(48, 64), classes=8)
    for split in ("train", "val"):
        n_valid, n_invalid, n_moving = _warp_check(open_dataset("synthetic", root, split))
        assert n_invalid > 0 and n_moving > 0.1 * n_valid      # occlusion/leaving happen; things move
        assert n_valid > 0.8 * (n_valid + n_invalid)


def test_flow_by_hand_on_a_two_layer_scene():
    # layer 1 (an object) moves right by 2 px, the background by -1 px in x (camera pan)
    layers = np.zeros((2, 3, 6), np.int16)
    layers[0, :, 1:3] = 1
    layers[1, :, 3:5] = 1
    offsets = np.array([[[0, 0], [0, 1]], [[0, -1], [0, 3]]])
    flow = synthetic.forward_flow(layers, offsets, 0)
    assert np.array_equal(flow[0, 1:3], [[2, 0], [2, 0]])                 # object pixels: +2 in x, valid
    assert np.array_equal(flow[0, 3], [-1, 0])                             # background x=3 -> x=2, visible
    assert np.isnan(flow[0, 0]).all()      # background at x=0 moves to x=-1: leaves the frame
    assert np.isnan(flow[0, 4]).all() and np.isnan(flow[0, 5]).all()   # land on x=3, 4: the object is there now
    assert np.isnan(flow[:, 4]).all() and not np.isnan(flow[:, 3]).any()


def test_sparse_annotation_like_cityscapes(tmp_path):
    assert synthetic.annotated_frames(30, "sparse") == [19]
    assert synthetic.annotated_frames(65, "sparse") == [19, 49]
    assert synthetic.annotated_frames(10, "sparse") == [9]
    root = write_synthetic_tree(tmp_path, train_videos=1, val_videos=1, frames=22, size=(16, 16), annotate="sparse")
    ds = open_dataset("synthetic", root, "val")
    v = ds.videos[0]
    assert len(v.frames) == 22 and v.labelled == ["00019"]
    assert ds.read_flow(v, "00003") is not None                          # flow for every pair anyway
    assert open_dataset("synthetic", root, "val", strict=False).problems == []


def test_content_classes_and_corruptions(tmp_path):
    root = synthetic.generate(tmp_path / "s", train_videos=6, val_videos=0, frames=10, height=64, width=64,
                              classes=8, seed=0)
    ds = open_dataset("synthetic", root, "train")
    seen = set()
    for v in ds.videos:
        for f in v.frames:
            seen |= set(np.unique(ds.read_label(v, f)).tolist())
    assert seen >= set(range(8))                                          # every class appears
    meta = json.loads((root / "meta.json").read_text())
    assert meta["num_classes"] == 8 and meta["class_names"][:3] == ["sky", "ground", "foliage"]
    n_corrupted = sum(len(x) for x in meta["corrupted_frames"].values())
    assert 0.25 * 60 < n_corrupted < 0.75 * 60


def test_corruption_destroys_cutout_regions():
    rng = np.random.default_rng(0)
    img = np.full((64, 64, 3), 100, np.float32)
    spec = dict(synthetic.CORRUPTION, p_corrupt=1.0, sensor_sigma=0.0,
                cutout=dict(synthetic.CORRUPTION["cutout"], p=1.0),
                noise=dict(synthetic.CORRUPTION["noise"], p=0.0), blur=dict(p=0.0, kernel=(5, 9)),
                flicker=dict(synthetic.CORRUPTION["flicker"], p=0.0))
    out, kinds = synthetic.corrupt(rng, img, 1.0, spec)
    assert kinds == ["cutout"]
    changed = np.abs(out - img).max(axis=2) > 0
    assert 0.05 < changed.mean() < 0.9


def test_cli_and_bad_arguments(tmp_path, capsys):
    assert synthetic.main(["--out", str(tmp_path / "x"), "--train-videos", "1", "--val-videos", "1",
                           "--frames", "3", "--height", "16", "--width", "16", "--classes", "3"]) == 0
    assert "wrote" in capsys.readouterr().out
    assert open_dataset("synthetic", tmp_path / "x", "train").num_classes == 3
    # writing again over a synthetic set replaces it
    synthetic.main(["--out", str(tmp_path / "x"), "--train-videos", "2", "--frames", "3", "--height", "16",
                    "--width", "16"])
    assert len(open_dataset("synthetic", tmp_path / "x", "train").videos) == 2
    (tmp_path / "other").mkdir()
    (tmp_path / "other" / "keep.txt").write_text("mine")
    with pytest.raises(InputError, match="refusing to replace"):
        synthetic.main(["--out", str(tmp_path / "other")])
    with pytest.raises(InputError, match="--classes"):
        synthetic.main(["--out", str(tmp_path / "y"), "--classes", "1"])
    with pytest.raises(InputError, match="--frames"):
        synthetic.main(["--out", str(tmp_path / "y"), "--frames", "1"])


def test_object_scale_scales_objects():
    """--object-scale s draws objects s times as large, clipped to the frame. The first object is drawn from the
    same random state in both runs (later ones differ: textures draw as many numbers as they have pixels)."""
    looks, n_bg = synthetic.class_looks(8)
    cams = np.zeros((6, 2), np.int64)

    def objects(scale):
        rng = np.random.default_rng(7)
        return synthetic._objects(rng, looks, n_bg, 6, (64, 64), cams, 1.0, np.zeros((8, 3), np.float32), scale)

    plain, big = objects(1.0), objects(1.6)
    assert [o.raw_id for o in plain] == [o.raw_id for o in big] and len(plain) >= 3
    assert np.array_equal(plain[0].velocity, big[0].velocity)
    for side, side_big in zip(plain[0].mask.shape, big[0].mask.shape):
        assert abs(side_big - 1.6 * side) <= 1.6, (plain[0].mask.shape, big[0].mask.shape)
    assert all(3 <= side <= 64 for o in objects(4.0) for side in o.mask.shape)
    with pytest.raises(InputError, match="--object-scale"):
        synthetic.generate("/nonexistent/never", object_scale=10)
