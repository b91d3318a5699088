"""Clip sampling at video start and end, ClipDataset train/test behaviour, augmentation consistency."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from tests.fixtures import write_cityscapes_tree, write_vspw_tree
from videos import augment
from videos.clips import ClipDataset, clip_frame_ids
from videos.datasets import Video, open_dataset


def _video(n: int) -> Video:
    ids = [f"{i:03d}" for i in range(n)]
    return Video("v", ids, ids)


def test_clip_ids_at_video_start_repeat_frame_zero():
    v = _video(10)
    assert clip_frame_ids(v, "000", (-6, -3)) == ["000", "000", "000"]
    assert clip_frame_ids(v, "001", (-6, -3)) == ["000", "000", "001"]
    assert clip_frame_ids(v, "004", (-6, -3)) == ["000", "001", "004"]
    assert clip_frame_ids(v, "001", (-2, -1)) == ["000", "000", "001"]
    assert clip_frame_ids(v, "002", (-9, -6, -3)) == ["000", "000", "000", "002"]


def test_clip_ids_mid_and_end_of_video():
    v = _video(10)
    assert clip_frame_ids(v, "009", (-6, -3)) == ["003", "006", "009"]          # last frame: past only
    assert clip_frame_ids(v, "009", (-2, -1, 0)) == ["007", "008", "009"]       # clip_offsets form
    assert clip_frame_ids(v, "009", (-9, -6, -3)) == ["000", "003", "006", "009"]
    assert clip_frame_ids(v, "005", ()) == ["005"]


def test_clip_offsets_validated():
    v = _video(5)
    with pytest.raises(ValueError, match="past frames only"):
        clip_frame_ids(v, "002", (-1, 1))
    with pytest.raises(ValueError, match="time order"):
        clip_frame_ids(v, "002", (-1, -2))
    with pytest.raises(KeyError):
        clip_frame_ids(v, "999", (-1,))


def test_cityscapes_clip_reads_sequence_frames(tmp_path):
    root = write_cityscapes_tree(tmp_path, {"frankfurt": 1}, size=(8, 16))
    ds = open_dataset("cityscapes", root, "val")
    v = ds.videos[0]
    assert clip_frame_ids(v, "000019", (-9, -6, -3)) == ["000010", "000013", "000016", "000019"]


def test_clip_dataset_test_mode_order_and_values(tmp_path):
    root = write_vspw_tree(tmp_path, {"a": 4, "b": 3}, size=(6, 8), splits={"val": ["b", "a"]},
                           labelled={"a": [1, 3], "b": [0, 1, 2]}, ext=".png")
    ds = open_dataset("vspw", root, "val")
    cd = ClipDataset(ds, (-2, -1), train=False)
    assert len(cd) == 5
    assert [(v.name, f) for v, f in (cd.item(i) for i in range(5))] == [
        ("b", "00000000"), ("b", "00000001"), ("b", "00000002"), ("a", "00000001"), ("a", "00000003")]
    clip, label = cd[3]
    assert clip.shape == (3, 3, 6, 8) and clip.dtype == torch.float32 and label.dtype == torch.int64
    a = ds.video("a")
    expected = [ds.read_image(a, f) for f in ("00000000", "00000000", "00000001")]
    want = (np.stack(expected).astype(np.float32) - augment.IMAGENET_MEAN) / augment.IMAGENET_STD
    np.testing.assert_allclose(clip.numpy(), want.transpose(0, 3, 1, 2), rtol=1e-6, atol=1e-5)
    np.testing.assert_array_equal(label.numpy(), ds.read_label(a, "00000001"))
    resized = ClipDataset(ds, (-2, -1), train=False, test_scale=(12, 16))
    c2, l2 = resized[3]
    assert c2.shape == (3, 3, 12, 16) and l2.shape == (6, 8)       # label stays at native size
    # every frame of the first video ("b" is fully labelled), the unlabelled ones of "a" only when asked
    everything = ClipDataset(ds, (-2, -1), train=False, all_frames_videos=None)
    assert [(v.name, f) for v, f in everything.items][3:] == [("a", f"{t:08d}") for t in range(4)]
    assert [everything.is_labelled(i) for i in range(7)] == [True] * 3 + [False, True, False, True]
    assert everything.num_labelled == 5 and len(ClipDataset(ds, (-2, -1), train=False, all_frames_videos=1)) == 5
    clip, label = everything[3]                     # frame 0 of "a": no ground truth, every pixel ignore
    assert clip.shape == (3, 3, 6, 8) and label.shape == (6, 8) and (label == 255).all()


def test_test_resize_keeps_aspect_and_aligns_like_cffm():
    """VSPW (CFFM: Resize(img_scale=(853, 480), keep_ratio=True), sides up to a multiple of 32)."""
    box, divisor = (480, 853), 32
    assert augment.test_input_size((480, 853), box, divisor) == (480, 864)
    assert augment.test_input_size((480, 640), box, divisor) == (480, 640)      # 4:3 stays 4:3
    assert augment.test_input_size((720, 1280), box, divisor) == (480, 864)     # rescaled 480x853, then aligned
    assert augment.test_input_size((360, 480), box, divisor) == (480, 640)      # smaller frames are scaled up
    assert augment.test_input_size((1024, 2048), (1024, 2048), None) == (1024, 2048)
    assert augment.test_input_size((512, 1024), (1024, 2048), None) == (1024, 2048)
    assert augment.test_input_size((720, 960), (720, 960), None) == (720, 960)
    assert augment.test_input_size((50, 70), None, None) == (50, 70)            # native
    img = np.random.default_rng(0).integers(0, 256, (720, 1280, 3), dtype=np.uint8)
    out = augment.resize_test_frame(img, box, divisor)
    assert out.shape == (480, 864, 3)
    # two steps, as the reference: the keep-ratio rescale, then the alignment resize of that image
    step = augment.resize_frame(img, (480, 853))
    np.testing.assert_array_equal(out, augment.resize_frame(step, (480, 864)))


@pytest.mark.parametrize("dataset,frame,fed", [
    ("vspw", (480, 853), (480, 864)), ("vspw", (480, 640), (480, 640)), ("vspw", (720, 1280), (480, 864)),
    ("cityscapes", (256, 512), (1024, 2048)), ("camvid", (720, 960), (720, 960)), ("camvid", (360, 480), (720, 960))])
def test_clip_dataset_feeds_each_aspect_at_its_test_size(tmp_path, dataset, frame, fed):
    """The dataset's test resize (videos.info) applied to one real-size frame; the label keeps the frame's size."""
    from engine.infer import test_resize_for
    from tests.fixtures import write_camvid_tree

    if dataset == "vspw":
        root = write_vspw_tree(tmp_path, {"v": 1}, size=frame, ext=".png")
    elif dataset == "cityscapes":
        root = write_cityscapes_tree(tmp_path, {"frankfurt": 1}, size=frame, label_types=("trainIds",))
    else:
        root = write_camvid_tree(tmp_path, {"0001TP": 1}, {"val": ["0001TP_000000"]}, size=frame)
    ds = open_dataset(dataset, root, "val")
    scale, divisor = test_resize_for(dataset)
    clip, label = ClipDataset(ds, (), train=False, test_scale=scale, size_divisor=divisor)[0]
    assert tuple(clip.shape[-2:]) == fed and tuple(label.shape) == frame


def test_clip_dataset_train_crop_pad_and_reproducible(tmp_path):
    root = write_vspw_tree(tmp_path, {"a": 5}, size=(10, 12), ext=".png")
    ds = open_dataset("vspw", root, "train")
    cd = ClipDataset(ds, (-6, -3), train=True, crop=(16, 16), ratio_range=(1.0, 1.0))
    torch.manual_seed(0)
    c1, l1 = cd[0]
    assert c1.shape == (3, 3, 16, 16) and l1.shape == (16, 16)
    # frame is 10x12: the bottom and right are padding (image 0, label 255)
    assert (l1[10:] == 255).all() and (l1[:, 12:] == 255).all()
    assert (c1[:, :, 10:] == 0).all() and (c1[:, :, :, 12:] == 0).all()
    torch.manual_seed(0)
    c2, l2 = cd[0]
    assert torch.equal(c1, c2) and torch.equal(l1, l2)
    assert len(cd) == 5 and len(ClipDataset(ds, (-1,), length=100)) == 100


def test_augmentation_identical_across_clip():
    rng = np.random.default_rng(0)
    a = rng.integers(0, 256, (20, 30, 3), dtype=np.uint8)
    b = rng.integers(0, 256, (20, 30, 3), dtype=np.uint8)
    label = (np.arange(30)[None, :] // 5 * np.ones((20, 1), int)).astype(np.uint8)
    for seed in range(5):
        same = augment.augment_clip(np.random.default_rng(seed), [a, a, a], label, None, (16, 16))[0]
        assert torch.equal(same[0], same[1]) and torch.equal(same[1], same[2])
        ab = augment.augment_clip(np.random.default_rng(seed), [a, b], label, None, (16, 16))[0]
        ba = augment.augment_clip(np.random.default_rng(seed), [b, a], label, None, (16, 16))[0]
        assert torch.equal(ab[0], ba[1]) and torch.equal(ab[1], ba[0])


def test_augmentation_keeps_label_aligned_with_frames():
    # each pixel's grey value encodes its label: after crop + flip they must still agree
    label = (np.arange(24)[None, :] // 3 * np.ones((12, 1), int) + np.arange(12)[:, None] // 6 * 8).astype(np.uint8)
    img = np.repeat(label[..., None] * 10, 3, axis=2).astype(np.uint8)
    for seed in range(8):
        clip, lab = augment.augment_clip(np.random.default_rng(seed), [img, img], label, None, (10, 10),
                                         photometric=False, ratio_range=(1.0, 1.0))
        grey = clip[0, 0] * augment.IMAGENET_STD[0] + augment.IMAGENET_MEAN[0]
        np.testing.assert_allclose(grey.numpy(), lab.numpy() * 10.0, atol=1e-3)


def test_photometric_is_the_identity_when_nothing_drawn():
    img = np.random.default_rng(1).integers(0, 256, (4, 5, 3), dtype=np.uint8)
    p = augment.Photometric(None, None, True, None, None)
    np.testing.assert_array_equal(augment.apply_photometric(img, p), img)
    p = augment.Photometric(10.0, None, True, None, None)
    np.testing.assert_array_equal(augment.apply_photometric(img, p), np.clip(img.astype(int) + 10, 0, 255))


def test_rescale_size_keeps_aspect():
    assert augment.rescale_size((480, 853), (480, 853), 1.0) == (480, 853)
    assert augment.rescale_size((480, 853), (480, 853), 0.5) == (240, 427)
    assert augment.rescale_size((64, 64), (64, 64), 2.0) == (128, 128)


from hypothesis import given, settings
from hypothesis import strategies as st


@settings(max_examples=200, deadline=None)
@given(n=st.integers(1, 40), data=st.data())
def test_clip_ids_property(n, data):
    v = _video(n)
    i = data.draw(st.integers(0, n - 1))
    offs = sorted(data.draw(st.sets(st.integers(-12, -1), max_size=4)))
    ids = clip_frame_ids(v, v.frames[i], offs)
    assert len(ids) == len(offs) + 1 and ids[-1] == v.frames[i]
    assert [v.frames.index(f) for f in ids[:-1]] == [max(0, i + o) for o in offs]
    assert [v.frames.index(f) for f in ids] == sorted(v.frames.index(f) for f in ids)   # time order
