"""videos.check finds each kind of broken file, one line per problem naming the file; exit 0 when clean."""
from __future__ import annotations

import cv2
import numpy as np
import pytest

from common.cli import InputError
from tests.fixtures import write_camvid_tree, write_cityscapes_tree, write_synthetic_tree, write_vspw_tree
from videos.check import check_dataset, main


def _run(capsys, *argv):
    rc = main(list(argv))
    return rc, capsys.readouterr().out.strip().splitlines()


def test_clean_trees_exit_zero(tmp_path, capsys):
    trees = {
        "vspw": write_vspw_tree(tmp_path / "v", {"a": 3, "b": 2}, size=(6, 8)),
        "synthetic": write_synthetic_tree(tmp_path / "s", train_videos=1, val_videos=1, frames=3, size=(16, 16)),
        "cityscapes": write_cityscapes_tree(tmp_path / "c", {"frankfurt": 1}, size=(6, 8)),
        "camvid": write_camvid_tree(tmp_path / "k", {"0001TP": 35}, size=(6, 8)),
    }
    for name, root in trees.items():
        rc, out = _run(capsys, "--dataset", name, "--root", str(root))
        assert rc == 0 and len(out) == 1 and out[0].startswith(f"clean: {name}"), (name, out)


def test_vspw_each_kind_of_broken_file(tmp_path, capsys):
    root = write_vspw_tree(tmp_path, {"a": 4, "b": 2}, size=(6, 8), splits={"train": ["a", "ghost"], "val": ["b"]})
    d = root / "data"
    (d / "a/origin/00000000.jpg").write_bytes(b"")                                        # zero-byte frame
    (d / "a/origin/00000001.jpg").write_bytes(b"garbage")                                 # unreadable frame
    cv2.imwrite(str(d / "a/mask/00000002.png"), np.zeros((7, 8), np.uint8))               # wrong size
    cv2.imwrite(str(d / "a/mask/00000003.png"), np.full((6, 8), 200, np.uint8))           # out of range
    (d / "b/origin/00000001.jpg").unlink()                                                # missing frame
    (d / "b/mask/00000000.png").unlink()                                                  # frame without mask
    rc, out = _run(capsys, "--dataset", "vspw", "--root", str(root))
    assert rc == 1
    expected = [
        ("train.txt", "names video 'ghost'"),
        ("a/origin/00000000.jpg", "zero-byte"),
        ("a/origin/00000001.jpg", "unreadable"),
        ("a/mask/00000002.png", "mask is 8x7 but its frame is 8x6"),
        ("a/mask/00000003.png", "label values [200]"),
        ("b/mask/00000001.png", "mask without a frame"),
        ("b/origin/00000000.jpg", "frame without a mask"),
    ]
    assert len(out) == len(expected), out
    for path, what in expected:
        assert any(path in line and what in line for line in out), (path, what, out)


def test_vspw_missing_split_file_and_root(tmp_path, capsys):
    root = write_vspw_tree(tmp_path, {"a": 1}, splits={"val": ["a"]})
    rc, out = _run(capsys, "--dataset", "vspw", "--root", str(root), "--split", "train")
    assert rc == 1 and out == [f"{root}/train.txt: split file not found"]
    with pytest.raises(InputError, match="dataset root not found"):
        main(["--dataset", "vspw", "--root", str(tmp_path / "nope")])


def test_synthetic_flow_problems(tmp_path, capsys):
    root = write_synthetic_tree(tmp_path, train_videos=1, val_videos=1, frames=4, size=(16, 16))
    (root / "data/val_000/flow/00001.npy").unlink()
    np.save(root / "data/val_000/flow/00002.npy", np.zeros((16, 15, 2), np.float32))
    rc, out = _run(capsys, "--dataset", "synthetic", "--root", str(root))
    assert rc == 1 and len(out) == 2
    assert "val_000/flow/00001.npy: file not found" in out[0]
    assert "val_000/flow/00002.npy: flow is float32[16, 15, 2]" in out[1]


def test_cityscapes_broken_files(tmp_path, capsys):
    root = write_cityscapes_tree(tmp_path, {"frankfurt": 2}, size=(6, 8), label_types=("labelIds",))
    seq = root / "leftImg8bit_sequence/val/frankfurt"
    (seq / "frankfurt_000000_000005_leftImg8bit.png").unlink()                            # missing reference
    (seq / "frankfurt_000001_000003_leftImg8bit.png").write_bytes(b"")                    # zero-byte
    cv2.imwrite(str(root / "gtFine/val/frankfurt/frankfurt_000001_000019_gtFine_labelIds.png"),
                np.full((6, 8), 34, np.uint8))                                            # id 34 does not exist
    rc, out = _run(capsys, "--dataset", "cityscapes", "--root", str(root))
    assert rc == 1 and len(out) == 3, out
    assert "frankfurt_000000_000005_leftImg8bit.png: missing frame of snippet frankfurt_000000_000019" in out[0]
    assert "frankfurt_000001_000003_leftImg8bit.png: zero-byte" in out[1]
    assert "frankfurt_000001_000019_gtFine_labelIds.png: label values [34]" in out[2]


def test_camvid_broken_files(tmp_path, capsys):
    root = write_camvid_tree(tmp_path, {"0001TP": 40}, {"val": ["0001TP_000019", "0001TP_000035"]}, size=(6, 8))
    (root / "sequences/0001TP/0001TP_000010.png").unlink()
    cv2.imwrite(str(root / "valannot/0001TP_000035.png"), np.zeros((6, 9), np.uint8))
    problems, summary = check_dataset("camvid", root)
    assert len(problems) == 2, problems
    assert "0001TP_000010.png: missing frame of snippet 0001TP_000019" in problems[0]
    assert "0001TP_000035.png: mask is 9x6 but its frame is 8x6" in problems[1]
    assert summary["splits"] == ["val"]


def test_parallel_check_reports_the_same_lines(tmp_path):
    root = write_camvid_tree(tmp_path, {"0001TP": 60}, {"val": ["0001TP_000019", "0001TP_000029", "0001TP_000049"]},
                             size=(6, 8))
    (root / "sequences/0001TP/0001TP_000025.png").write_bytes(b"")      # shared by two snippets: one line
    serial, s1 = check_dataset("camvid", root)
    parallel, s2 = check_dataset("camvid", root, jobs=2)
    assert serial == parallel and len(serial) == 1 and "0001TP_000025.png: zero-byte" in serial[0]
    assert s1 == s2 and s1["frames"] == 60 and s1["labels"] == 3


def test_stamp_is_written_only_for_a_clean_tree(tmp_path, capsys):
    """--stamp (what the pipeline's training jobs compare): dataset, root, counts and the hash of a generated
    set's meta.json; a tree with problems gets none."""
    import json

    root = write_synthetic_tree(tmp_path / "s", train_videos=1, val_videos=1, frames=3, size=(16, 16))
    rc, _ = _run(capsys, "--dataset", "synthetic", "--root", str(root), "--stamp", str(tmp_path / "ok.json"))
    stamp = json.loads((tmp_path / "ok.json").read_text())
    assert rc == 0 and stamp["dataset"] == "synthetic" and stamp["videos"] == 2 and len(stamp["meta_sha256"]) == 64
    (root / "val.txt").write_text("ghost\n")
    rc, _ = _run(capsys, "--dataset", "synthetic", "--root", str(root), "--stamp", str(tmp_path / "bad.json"))
    assert rc == 1 and not (tmp_path / "bad.json").exists()
