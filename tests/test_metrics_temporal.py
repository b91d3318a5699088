"""TC: nearest backward warp, out-of-frame and invalid pixels ignored, pred t as reference; plain restatement."""
import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from metrics.temporal import TemporalConsistency, warp_nearest


def a(rows):
    return np.array(rows, dtype=np.uint8)


def flow_of(dx, dy=None):
    dx = np.asarray(dx, np.float32)
    dy = np.zeros_like(dx) if dy is None else np.asarray(dy, np.float32)
    return np.stack([dx, dy], axis=-1)


# ---------------------------------------------------------------- plain restatement
def reference_tc(pairs, num_classes):
    """Pixel loops: sample pred[t+1] at round(x+dx), round(y+dy) (Python round = half to even), skip pixels
    outside the frame or invalid, confusion matrix with pred[t] as ground truth, mIoU over its present rows."""
    cm = np.zeros((num_classes, num_classes), int)
    for pred_t, pred_next, flow, valid in pairs:
        h, w = pred_t.shape
        for y in range(h):
            for x in range(w):
                if valid is not None and not valid[y, x]:
                    continue
                sx, sy = round(x + float(flow[y, x, 0])), round(y + float(flow[y, x, 1]))
                if not (0 <= sx < w and 0 <= sy < h):
                    continue
                cm[pred_t[y, x], pred_next[sy, sx]] += 1
    ious = []
    for c in range(num_classes):
        if cm[c].sum() > 0:
            ious.append(cm[c, c] / (cm[c].sum() + cm[:, c].sum() - cm[c, c]))
    return sum(ious) / len(ious) if ious else math.nan


# ---------------------------------------------------------------- hand-computed cases
def test_hand_computed_pair_with_invalid_and_out_of_frame():
    # pixel 0: dx 0 -> next[0] = 0 ; pixel 1: dx 1 -> next[2] = 1 ; pixel 2: invalid ; pixel 3: dx 5 -> out
    tc = TemporalConsistency(3)
    tc.update(a([[0, 0, 1, 1]]), a([[0, 1, 1, 1]]), flow_of([[0, 1, 0, 5]]), valid=np.array([[1, 1, 0, 1]], bool))
    assert tc.confusion.matrix.tolist() == [[1, 1, 0], [0, 0, 0], [0, 0, 0]]
    s = tc.scores()
    assert s["tc"] == 0.5          # only class 0 is in the reference: IoU0 = 1 / (2 + 1 - 1)
    assert s["tc_mmseg"] == 0.25   # class 1 (only in the warped prediction) counts 0 there
    assert s["pairs"] == 1 and s["pixels"] == 2


def test_exact_motion_gives_full_consistency():
    rng = np.random.default_rng(0)
    pred_t = rng.integers(0, 4, size=(6, 9), dtype=np.uint8)
    pred_next = np.roll(pred_t, shift=(1, 2), axis=(0, 1))   # content moves down 1, right 2
    tc = TemporalConsistency(4)
    tc.update(pred_t, pred_next, flow_of(np.full((6, 9), 2.0), np.full((6, 9), 1.0)))
    assert tc.scores()["tc"] == 1.0
    # the last 2 columns and last row sample outside the frame: ignored, never class 0
    assert tc.scores()["pixels"] == 5 * 7


def test_out_of_frame_samples_are_ignored_not_class_zero():
    # everything moves out of the frame: nothing scored (the reference script would count class 0 here)
    tc = TemporalConsistency(2)
    tc.update(a([[1, 1]]), a([[1, 1]]), flow_of([[10, 10]]))
    assert tc.scores()["pixels"] == 0 and math.isnan(tc.scores()["tc"])


def test_nearest_rounds_half_to_even_like_grid_sample():
    labels = a([[10, 11, 12, 13]])
    warped, inside = warp_nearest(labels, flow_of([[0.5, 0.5, 0.49, -0.5]]))
    # x+dx = 0.5 -> 0, 1.5 -> 2, 2.49 -> 2, 2.5 -> 2
    assert warped.tolist() == [[10, 12, 12, 12]] and inside.all()
    _, inside = warp_nearest(labels, flow_of([[-0.6, 0, 0, 0.6]]))
    assert inside.tolist() == [[False, True, True, False]]
    _, inside = warp_nearest(labels, flow_of([[np.nan, 0, 0, 0]]))
    assert inside.tolist() == [[False, True, True, True]]


def test_errors():
    tc = TemporalConsistency(2)
    with pytest.raises(ValueError, match="flow"):
        tc.update(a([[0, 1]]), a([[0, 1]]), flow_of([[0, 0, 0]]))
    with pytest.raises(ValueError, match="differ in size"):
        tc.update(a([[0, 1]]), a([[0]]), flow_of([[0, 0]]))
    with pytest.raises(ValueError, match="outside"):
        tc.update(a([[0, 2]]), a([[0, 1]]), flow_of([[0, 0]]))


# ---------------------------------------------------------------- property test
half_steps = st.integers(-8, 8).map(lambda v: v / 2)   # half-pixel flows hit every rounding tie


@settings(max_examples=120, deadline=None)
@given(st.integers(1, 4), st.integers(1, 4), st.integers(1, 3), st.integers(1, 3), st.data())
def test_matches_plain_definition(h, w, num_classes, num_pairs, data):
    pairs = []
    for _ in range(num_pairs):
        labels = st.lists(st.integers(0, num_classes - 1), min_size=h * w, max_size=h * w)
        pred_t = a(data.draw(labels)).reshape(h, w)
        pred_next = a(data.draw(labels)).reshape(h, w)
        flow = np.array(data.draw(st.lists(half_steps, min_size=2 * h * w, max_size=2 * h * w)),
                        np.float32).reshape(h, w, 2)
        valid = data.draw(st.one_of(st.none(), st.lists(st.booleans(), min_size=h * w, max_size=h * w)))
        valid = None if valid is None else np.array(valid).reshape(h, w)
        pairs.append((pred_t, pred_next, flow, valid))
    tc = TemporalConsistency(num_classes)
    for p in pairs:
        tc.update(*p)
    got, want = tc.scores()["tc"], reference_tc(pairs, num_classes)
    assert (math.isnan(got) and math.isnan(want)) or abs(got - want) <= 1e-12
