"""mIoU / mmseg mIoU / WIoU / per-class IoU: hand-computed cases and a plain re-statement (hypothesis)."""
import math

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from metrics.segmentation import ConfusionMatrix, LabelRangeError, joint_histogram, scores_from_matrix


def a(rows):
    return np.array(rows, dtype=np.uint8)


# ---------------------------------------------------------------- plain restatement of docs/protocol.md
def reference_scores(frames, num_classes, ignore=255):
    """Pixel-by-pixel confusion matrix, then the definitions word for word."""
    cm = [[0] * num_classes for _ in range(num_classes)]
    for gt, pred in frames:
        for g, p in zip(np.ravel(gt).tolist(), np.ravel(pred).tolist()):
            if g == ignore:
                continue
            cm[g][p] += 1
    row = [sum(cm[c]) for c in range(num_classes)]
    col = [sum(cm[r][c] for r in range(num_classes)) for c in range(num_classes)]
    iou = []
    for c in range(num_classes):
        union = row[c] + col[c] - cm[c][c]
        iou.append(cm[c][c] / union if union > 0 else math.nan)
    present = [iou[c] for c in range(num_classes) if row[c] > 0]
    nonempty = [v for v in iou if not math.isnan(v)]
    total = sum(row)
    miou = sum(present) / len(present) if present else math.nan
    miou_mmseg = sum(nonempty) / len(nonempty) if nonempty else math.nan
    wiou = sum(row[c] / total * iou[c] for c in range(num_classes) if row[c] > 0) if total else math.nan
    return cm, iou, miou, miou_mmseg, wiou


def same(x, y, tol=1e-12):
    return (math.isnan(x) and math.isnan(y)) or abs(x - y) <= tol


# ---------------------------------------------------------------- hand-computed cases
def test_hand_computed_two_classes():
    # CM = [[2, 1], [0, 1]]: IoU0 = 2/3, IoU1 = 1/2; mIoU = 7/12; WIoU = 3/4*2/3 + 1/4*1/2 = 5/8
    cm = ConfusionMatrix(2)
    cm.update(a([[0, 0], [0, 1]]), a([[0, 0], [1, 1]]))
    assert cm.matrix.tolist() == [[2, 1], [0, 1]]
    s = cm.scores()
    assert s.iou_per_class == [2 / 3, 1 / 2]
    assert s.miou == pytest.approx(7 / 12, abs=1e-15) and s.miou_mmseg == s.miou
    assert s.wiou == 5 / 8
    assert s.num_pixels == 4 and s.gt_pixels_per_class == [3, 1]


def test_class_present_only_in_predictions():
    # gt 0,0,1,1; pred 0,2,1,1 -> IoU0 = 1/2, IoU1 = 1, IoU2 = 0 (predicted, never in GT)
    cm = ConfusionMatrix(4)
    cm.update(a([0, 0, 1, 1]), a([0, 2, 1, 1]))
    s = cm.scores()
    assert s.iou_per_class[:3] == [0.5, 1.0, 0.0]
    assert math.isnan(s.iou_per_class[3])           # class 3: empty union, no IoU at all
    assert s.miou == 0.75                           # classes in GT only: (1/2 + 1) / 2
    assert s.miou_mmseg == 0.5                      # mmseg: (1/2 + 1 + 0) / 3
    assert s.wiou == 0.75                           # 1/2 * 1/2 + 1/2 * 1


def test_all_ignore_frame_changes_nothing():
    cm = ConfusionMatrix(3)
    cm.update(a([[255, 255], [255, 255]]), a([[0, 1], [2, 0]]))
    assert cm.matrix.sum() == 0 and cm.num_frames == 1
    s = cm.scores()
    assert math.isnan(s.miou) and math.isnan(s.miou_mmseg) and math.isnan(s.wiou)
    cm.update(a([[1, 255]]), a([[1, 2]]))
    assert cm.scores().miou == 1.0 and cm.scores().wiou == 1.0


def test_streaming_pools_frames_not_means():
    # frame 1 perfect on class 0 (4 px), frame 2 all wrong on class 1 (1 px): pooled, not per frame
    cm = ConfusionMatrix(2)
    cm.update(a([0, 0, 0, 0]), a([0, 0, 0, 0]))
    cm.update(a([1]), a([0]))
    # CM [[4, 0], [1, 0]]: IoU0 = 4/5, IoU1 = 0 -> mIoU 0.4 (a per-frame mean would give (1 + 0) / 2)
    assert cm.scores().miou == pytest.approx(0.4, abs=1e-15)
    assert cm.scores().wiou == pytest.approx(4 / 5 * 4 / 5, abs=1e-15)


def test_vspw_remap_trap_raw_ids_are_refused():
    # The official evaluator forgets the 0/255 -> ignore, 1..124 -> 0..123 remap. Raw VSPW ids in the
    # matrix would silently shift every class; here a raw id 124 is out of range and is refused.
    raw = a([[0, 1, 124, 255]])
    with pytest.raises(LabelRangeError, match="124"):
        ConfusionMatrix(124).update(raw, a([[0, 0, 0, 0]]))
    remapped = np.where((raw == 0) | (raw == 255), 255, raw.astype(int) - 1).astype(np.uint8)
    cm = ConfusionMatrix(124)
    cm.update(remapped, a([[5, 0, 123, 7]]))
    s = cm.scores()
    assert s.num_pixels == 2 and s.miou == 1.0   # raw 0 and raw 255 both dropped


def test_out_of_range_labels_raise_and_leave_matrix_untouched():
    cm = ConfusionMatrix(3)
    with pytest.raises(LabelRangeError, match="predicted"):
        cm.update(a([0, 1]), a([0, 3]))
    with pytest.raises(LabelRangeError, match="predicted"):      # a 255 prediction is broken even on ignore
        cm.update(a([255, 1]), a([255, 1]))
    with pytest.raises(LabelRangeError, match="ground-truth"):
        cm.update(a([7, 1]), a([0, 1]))
    with pytest.raises(LabelRangeError):
        cm.update(np.array([0, 300]), np.array([0, 1]))
    with pytest.raises(LabelRangeError):
        cm.update(np.array([0, -1]), np.array([0, 1]))
    with pytest.raises(ValueError, match="differ in size"):
        cm.update(a([0, 1]), a([0, 1, 1]))
    assert cm.matrix.sum() == 0 and cm.num_frames == 0


def test_other_dtypes_and_torch_tensors():
    cm = ConfusionMatrix(3)
    cm.update(torch.tensor([[0, 1], [2, 255]]), torch.tensor([[0, 1], [1, 0]]))
    cm.update(np.array([2], np.int64), np.array([2], np.int32))
    assert cm.matrix.tolist() == [[1, 0, 0], [0, 1, 0], [0, 1, 1]]


def test_custom_ignore_index_and_merge():
    cm = ConfusionMatrix(3, ignore_index=3)
    cm.update(a([0, 3, 2]), a([0, 1, 2]))
    other = ConfusionMatrix(3, ignore_index=3)
    other.update(a([1]), a([1]))
    cm.merge(other)
    assert cm.matrix.tolist() == [[1, 0, 0], [0, 1, 0], [0, 0, 1]] and cm.num_frames == 2


def test_joint_histogram_counts_every_pair():
    h = joint_histogram(a([[0, 255], [3, 3]]), a([[1, 2], [3, 3]]))
    assert h.shape == (256, 256) and h.sum() == 4
    assert h[0, 1] == 1 and h[255, 2] == 1 and h[3, 3] == 2


# ---------------------------------------------------------------- property test
label_frames = st.integers(1, 6).flatmap(lambda k: st.tuples(
    st.just(k),
    st.lists(st.integers(1, 5).flatmap(lambda n: st.tuples(
        st.lists(st.one_of(st.integers(0, k - 1), st.just(255)), min_size=n, max_size=n),
        st.lists(st.integers(0, k - 1), min_size=n, max_size=n))), min_size=1, max_size=4)))


@settings(max_examples=150, deadline=None)
@given(label_frames)
def test_matches_plain_definition(case):
    k, frames = case
    frames = [(a(g), a(p)) for g, p in frames]
    cm = ConfusionMatrix(k)
    for g, p in frames:
        cm.update(g, p)
    ref_cm, ref_iou, ref_miou, ref_mmseg, ref_wiou = reference_scores(frames, k)
    assert cm.matrix.tolist() == ref_cm
    s = cm.scores()
    assert all(same(x, y) for x, y in zip(s.iou_per_class, ref_iou))
    assert same(s.miou, ref_miou) and same(s.miou_mmseg, ref_mmseg) and same(s.wiou, ref_wiou)
    again = scores_from_matrix(cm.matrix)
    assert same(again.miou, s.miou) and same(again.wiou, s.wiou) and again.num_pixels == s.num_pixels
