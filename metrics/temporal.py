"""Temporal consistency (TC): how well the prediction of frame t+1, carried back along the flow, agrees with
the prediction of frame t.

Definition (docs/protocol.md, "TC"): for consecutive frames (t, t+1) with forward flow t -> t+1,
backward-warp the prediction of t+1 into frame t with nearest sampling,
    warped[y, x] = pred[t+1][round(y + dy[y, x]), round(x + dx[y, x])],
ignore pixels whose sample falls outside the frame or whose flow is marked invalid, and accumulate one
confusion matrix over all pairs with pred[t] in the role of ground truth; TC = mIoU of that matrix
(metrics.segmentation: classes present in pred[t]; the mmseg-style mean is kept too).

Deliberate differences from the reference TC script (docs/protocol.md lists each):
sampling happens at the exact pixel position x + dx (the script normalises as if align_corners were True but
passes False, a sub-pixel scale error), and out-of-frame samples are ignored instead of read as class 0.
Rounding is half-to-even (np.rint), the same rule as grid_sample's nearest mode; a sample is "in the frame"
when its rounded index is a valid pixel index.
"""
from __future__ import annotations

import numpy as np

from metrics.segmentation import IGNORE_INDEX, ConfusionMatrix, _as_uint8


def warp_nearest(labels_next, flow, valid=None) -> tuple[np.ndarray, np.ndarray]:
    """Backward-warp a label map of frame t+1 into frame t with forward flow t -> t+1 (H, W, 2 as dx, dy).

    Returns (warped labels, inside) where ``inside`` marks pixels whose sample is in the frame, whose flow is
    finite and (if given) valid. Warped values outside ``inside`` are 0 and must not be used.
    """
    labels_next = np.asarray(labels_next)
    flow = np.asarray(flow)
    h, w = labels_next.shape
    if flow.shape != (h, w, 2):
        raise ValueError(f"flow is {flow.shape}, expected {(h, w, 2)} to match the label map")
    ys, xs = np.mgrid[0:h, 0:w]
    # float64 so x + dx is exact for any float32 flow and the half-way cases round like the definition says
    sx = np.rint(xs + flow[..., 0].astype(np.float64))
    sy = np.rint(ys + flow[..., 1].astype(np.float64))
    inside = (sx >= 0) & (sx <= w - 1) & (sy >= 0) & (sy <= h - 1)   # NaN compares False: excluded
    if valid is not None:
        valid = np.asarray(valid, dtype=bool)
        if valid.shape != (h, w):
            raise ValueError(f"flow validity mask is {valid.shape}, expected {(h, w)}")
        inside &= valid
    ix = np.where(inside, sx, 0).astype(np.intp)
    iy = np.where(inside, sy, 0).astype(np.intp)
    warped = labels_next[iy, ix]
    warped[~inside] = 0
    return warped, inside


def reads_unlabelled_frames(ds) -> bool:
    """Which frames TC reads (docs/protocol.md, "TC: which pairs"): on a sparsely labelled set (Cityscapes,
    CamVid, a sparse synthetic tree) every frame of each snippet, unlabelled ones included (ETC's eval_tc.py);
    on a densely labelled one its labelled frames, which are every frame (VSPW's TC_cal.py; a frame whose
    mask is missing only drops the two pairs around it). The reader says whether its tree is dense."""
    from videos.info import DATASETS

    dense = getattr(ds, "dense", None)
    return not (DATASETS[ds.name].annotated == "dense" if dense is None else dense)


class TemporalConsistency:
    """Streaming TC over pairs. ``update(pred_t, pred_next, flow, valid)`` per consecutive pair."""

    def __init__(self, num_classes: int, ignore_index: int = IGNORE_INDEX):
        self.confusion = ConfusionMatrix(num_classes, ignore_index)
        self.ignore_index = ignore_index
        self.pairs = 0

    def update(self, pred_t, pred_next, flow, valid=None) -> None:
        pred_t = _as_uint8(pred_t, "prediction t")
        pred_next = _as_uint8(pred_next, "prediction t+1")
        if not isinstance(pred_t, np.ndarray):
            pred_t = pred_t.cpu().numpy()
        if not isinstance(pred_next, np.ndarray):
            pred_next = pred_next.cpu().numpy()
        if pred_t.shape != pred_next.shape:
            raise ValueError(f"predictions of a pair differ in size: {pred_t.shape} vs {pred_next.shape}")
        warped, inside = warp_nearest(pred_next, flow, valid)
        # pred[t] is the reference: it must be a real class everywhere, so mark ignored pixels only after
        # the range check has seen it
        if pred_t.size and pred_t.max() >= self.confusion.num_classes:
            raise ValueError(f"prediction t holds labels outside 0..{self.confusion.num_classes - 1}")
        reference = np.where(inside, pred_t, np.uint8(self.ignore_index))
        self.confusion.update(reference, warped)
        self.pairs += 1

    def scores(self) -> dict:
        s = self.confusion.scores()
        return {"tc": s.miou, "tc_mmseg": s.miou_mmseg, "pairs": self.pairs, "pixels": s.num_pixels}
