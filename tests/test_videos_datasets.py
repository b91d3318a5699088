"""Readers on tiny trees in each exact layout: listing, remaps on hand-made masks, clear errors."""
from __future__ import annotations

import numpy as np
import pytest

from common.cli import InputError
from tests.fixtures import (CITYSCAPES_FIXTURE_TRAIN_IDS, raw_pattern, write_camvid_tree, write_cityscapes_tree,
                            write_synthetic_tree, write_vspw_tree)
from videos.datasets import open_dataset
from videos.info import DATASETS


# ------------------------------------------------------------------------------------------------ VSPW
def test_vspw_listing_and_interface(tmp_path):
    root = write_vspw_tree(tmp_path, {"v1": 4, "v2": 3}, size=(8, 12), splits={"train": ["v2", "v1"], "val": ["v1"]})
    ds = open_dataset("vspw", root, "train")
    assert (ds.name, ds.split, ds.num_classes, ds.ignore_index) == ("vspw", "train", 124, 255)
    assert [v.name for v in ds.videos] == ["v2", "v1"]               # split-file order
    v1 = ds.videos[1]
    assert v1.frames == ["00000000", "00000001", "00000002", "00000003"] and v1.labelled == v1.frames
    img = ds.read_image(v1, "00000002")
    assert img.dtype == np.uint8 and img.shape == (8, 12, 3)
    assert ds.image_path(v1, "00000002").name == "00000002.jpg"
    assert ds.label_path(v1, "00000002").name == "00000002.png"
    assert ds.read_flow(v1, "00000000") is None


def test_vspw_remap_hand_made(tmp_path):
    root = write_vspw_tree(tmp_path, {"v": 1}, size=(4, 6))
    mask = np.array([[0, 1, 2, 124, 255, 50]] * 4, dtype=np.uint8)
    import cv2
    cv2.imwrite(str(root / "data/v/mask/00000000.png"), mask)
    ds = open_dataset("vspw", root, "val")
    lab = ds.read_label(ds.videos[0], "00000000")
    assert lab.dtype == np.uint8
    assert lab[0].tolist() == [255, 0, 1, 123, 255, 49]


def test_vspw_palette_mask_gives_indices(tmp_path):
    from PIL import Image
    root = write_vspw_tree(tmp_path, {"v": 1}, size=(2, 3))
    im = Image.fromarray(np.array([[0, 3, 124], [255, 1, 2]], dtype=np.uint8), mode="P")
    im.putpalette([i % 256 for i in range(768)])
    im.save(root / "data/v/mask/00000000.png")
    ds = open_dataset("vspw", root, "val")
    assert ds.read_label(ds.videos[0], "00000000").tolist() == [[255, 2, 123], [255, 0, 1]]


def test_vspw_errors_name_the_file(tmp_path):
    root = write_vspw_tree(tmp_path, {"v": 3}, size=(4, 6))
    ds = open_dataset("vspw", root, "val")
    v = ds.videos[0]
    import cv2
    cv2.imwrite(str(root / "data/v/mask/00000001.png"), np.full((4, 6), 125, np.uint8))      # out of range
    with pytest.raises(InputError, match=r"00000001\.png: label values \[125\]"):
        ds.read_label(v, "00000001")
    cv2.imwrite(str(root / "data/v/mask/00000002.png"), np.zeros((5, 6), np.uint8))          # wrong size
    with pytest.raises(InputError, match=r"00000002\.png: mask is 6x5 but its frame is 6x4"):
        ds.read_label(v, "00000002")
    (root / "data/v/origin/00000000.jpg").write_bytes(b"")
    with pytest.raises(InputError, match=r"00000000\.jpg: zero-byte"):
        ds.read_image(v, "00000000")
    (root / "data/v/origin/00000000.jpg").write_bytes(b"not a jpeg at all")
    with pytest.raises(InputError, match=r"00000000\.jpg: unreadable"):
        ds.read_image(v, "00000000")
    (root / "data/v/origin/00000000.jpg").unlink()
    with pytest.raises(InputError, match=r"00000000\.jpg: file not found"):
        ds.read_image(v, "00000000")


def test_vspw_split_naming_absent_video(tmp_path):
    root = write_vspw_tree(tmp_path, {"v": 2}, splits={"val": ["v", "ghost"]})
    with pytest.raises(InputError, match=r"val\.txt: names video 'ghost'"):
        open_dataset("vspw", root, "val")
    with pytest.raises(InputError, match=r"train\.txt: split file not found"):
        open_dataset("vspw", root, "train")
    ds = open_dataset("vspw", root, "val", strict=False)
    assert [v.name for v in ds.videos] == ["v"] and len(ds.problems) == 1


def test_unknown_dataset_and_split(tmp_path):
    with pytest.raises(InputError, match="unknown dataset"):
        open_dataset("kitti", tmp_path, "val")
    with pytest.raises(InputError, match="unknown split"):
        open_dataset("vspw", tmp_path, "dev")
    with pytest.raises(InputError, match="dataset root not found"):
        open_dataset("vspw", tmp_path / "nothing", "val")


# ------------------------------------------------------------------------------------------------ synthetic
def test_synthetic_reader_uses_meta(tmp_path):
    root = write_synthetic_tree(tmp_path / "s", train_videos=1, val_videos=1, frames=4, size=(16, 20), classes=5)
    ds = open_dataset("synthetic", root, "val")
    assert ds.num_classes == 5 and len(ds.class_names) == 5
    v = ds.videos[0]
    assert len(v.frames) == 4 and v.labelled == v.frames
    lab = ds.read_label(v, v.frames[0])
    assert lab.shape == (16, 20) and set(np.unique(lab)) <= set(range(5)) | {255}
    flow, valid = ds.read_flow(v, v.frames[0])
    assert flow.shape == (16, 20, 2) and flow.dtype == np.float32 and valid.dtype == bool
    assert ds.read_flow(v, v.frames[-1]) is None


def test_synthetic_default_class_count_matches_info():
    from videos.synthetic import DEFAULTS, class_looks
    assert DEFAULTS["classes"] == DATASETS["synthetic"].num_classes
    assert len(class_looks(DEFAULTS["classes"])[0]) == DEFAULTS["classes"]


def test_synthetic_missing_meta(tmp_path):
    root = write_vspw_tree(tmp_path, {"v": 1})
    with pytest.raises(InputError, match=r"meta\.json: not found"):
        open_dataset("synthetic", root, "val")


# ------------------------------------------------------------------------------------------------ Cityscapes
def test_cityscapes_snippets(tmp_path):
    root = write_cityscapes_tree(tmp_path, {"frankfurt": 2, "lindau": 1}, split="val", size=(8, 16))
    ds = open_dataset("cityscapes", root, "val")
    assert ds.num_classes == 19
    assert [v.name for v in ds.videos] == ["frankfurt_000000_000019", "frankfurt_000001_000019",
                                           "lindau_000000_000019"]
    v = ds.videos[0]
    assert v.frames == [f"{i:06d}" for i in range(30)] and v.labelled == ["000019"]
    assert v.frames.index("000019") == 19
    assert ds.image_path(v, "000003").name == "frankfurt_000000_000003_leftImg8bit.png"
    assert ds.read_image(v, "000003").shape == (8, 16, 3)


def test_cityscapes_label_ids_equal_train_ids(tmp_path):
    root = write_cityscapes_tree(tmp_path, {"frankfurt": 1}, size=(8, 20))
    by_train = open_dataset("cityscapes", root, "val")                         # auto: trainIds preferred
    by_ids = open_dataset("cityscapes", root, "val", label_type="labelIds")
    v = by_train.videos[0]
    assert by_train.label_kind(v) == "trainIds" and by_ids.label_kind(by_ids.videos[0]) == "labelIds"
    a, b = by_train.read_label(v, "000019"), by_ids.read_label(by_ids.videos[0], "000019")
    np.testing.assert_array_equal(a, b)
    np.testing.assert_array_equal(a, raw_pattern((8, 20), 0, CITYSCAPES_FIXTURE_TRAIN_IDS))


def test_cityscapes_label_id_table():
    from videos.cityscapes import CLASS_NAMES, LABEL_IDS_TABLE
    # the 19 evaluated ids of the official table, in train-id order
    kept = [7, 8, 11, 12, 13, 17, 19, 20, 21, 22, 23, 24, 25, 26, 27, 28, 31, 32, 33]
    assert LABEL_IDS_TABLE[kept].tolist() == list(range(19))
    assert all(LABEL_IDS_TABLE[i] == 255 for i in range(34) if i not in kept)
    assert CLASS_NAMES[0] == "road" and CLASS_NAMES[18] == "bicycle" and len(CLASS_NAMES) == 19


def test_cityscapes_only_label_ids_and_errors(tmp_path):
    root = write_cityscapes_tree(tmp_path, {"frankfurt": 1}, size=(8, 16), label_types=("labelIds",))
    ds = open_dataset("cityscapes", root, "val")
    assert ds.label_kind(ds.videos[0]) == "labelIds"
    with pytest.raises(InputError, match=r"no \*_gtFine_labelTrainIds\.png files"):
        open_dataset("cityscapes", root, "val", label_type="trainIds")
    import cv2
    cv2.imwrite(str(root / "gtFine/val/frankfurt/frankfurt_000000_000019_gtFine_labelIds.png"),
                np.full((8, 16), 40, np.uint8))
    with pytest.raises(InputError, match=r"labelIds\.png: label values \[40\]"):
        ds.read_label(ds.videos[0], "000019")
    (root / "leftImg8bit_sequence/val/frankfurt/frankfurt_000000_000004_leftImg8bit.png").unlink()
    with pytest.raises(InputError, match=r"000004_leftImg8bit\.png: missing frame of snippet"):
        open_dataset("cityscapes", root, "val")


# ------------------------------------------------------------------------------------------------ CamVid
def test_camvid_snippets_and_remap(tmp_path):
    root = write_camvid_tree(tmp_path, {"0001TP": 40, "Seq05VD": 30},
                             {"val": ["Seq05VD_f00005", "Seq05VD_f00020"], "train": ["0001TP_000019"]},
                             size=(6, 48))
    ds = open_dataset("camvid", root, "val")
    assert ds.num_classes == 11
    a, b = ds.videos
    assert a.name == "Seq05VD_f00005" and a.frames[0] == "f00000" and a.frames[-1] == "f00015"
    assert b.frames == [f"f{k:05d}" for k in range(1, 30)] and b.labelled == ["f00020"]   # clipped at the end
    assert ds.image_path(b, "f00003").name == "Seq05VD_f00003.png"
    lab = ds.read_label(b, "f00020")
    # masks cycle 0..11 in 4-px bands: 11 (void) becomes 255
    assert lab[0, ::4].tolist() == [0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 255]
    tr = open_dataset("camvid", root, "train")
    assert tr.videos[0].frames == [f"{k:06d}" for k in range(0, 30)]


def test_camvid_out_of_range_and_missing(tmp_path):
    import cv2
    root = write_camvid_tree(tmp_path, {"0001TP": 40}, {"val": ["0001TP_000019"]}, size=(6, 8))
    ds = open_dataset("camvid", root, "val")
    cv2.imwrite(str(root / "valannot/0001TP_000019.png"), np.full((6, 8), 12, np.uint8))
    with pytest.raises(InputError, match=r"0001TP_000019\.png: label values \[12\]"):
        ds.read_label(ds.videos[0], "000019")
    (root / "sequences/0001TP/0001TP_000010.png").unlink()
    with pytest.raises(InputError, match=r"0001TP_000010\.png: missing frame"):
        open_dataset("camvid", root, "val")


def test_class_names(tmp_path):
    import json
    root = write_vspw_tree(tmp_path / "v", {"a": 1})
    assert open_dataset("vspw", root, "val").class_names[:2] == ["class0", "class1"]
    (root / "label_num_dic_final.json").write_text(json.dumps({"others": 0, "wall": 1, "ceiling": 2}))
    names = open_dataset("vspw", root, "val").class_names
    assert len(names) == 124 and names[:3] == ["wall", "ceiling", "class2"]
    cs = open_dataset("cityscapes", write_cityscapes_tree(tmp_path / "c", size=(4, 8)), "val")
    assert cs.class_names[13] == "car"
    cv = open_dataset("camvid", write_camvid_tree(tmp_path / "k", size=(4, 8)), "val")
    assert cv.class_names[0] == "sky" and len(cv.class_names) == 11
