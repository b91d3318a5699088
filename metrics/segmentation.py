"""Streaming confusion matrix over a whole split: mIoU, mmseg's mIoU, WIoU (frequency weighted) and per-class IoU.

Definitions (docs/protocol.md, "mIoU and WIoU"): one matrix, rows = ground truth, columns = prediction,
accumulated over every evaluated frame of the split; ignore pixels (255) are dropped.
  IoU_c      = CM[c,c] / (row_c + col_c - CM[c,c])
  miou       = mean IoU_c over classes present in the ground truth (row_c > 0)      (VSPW/CFFM evaluator)
  miou_mmseg = mean IoU_c over classes with a non-empty union (a class only predicted counts 0)
  wiou       = sum_c row_c / sum(row) * IoU_c

Speed: one frame is a single bincount of ``gt * 256 + pred`` over all 256 x 256 uint8 pairs (no masking pass,
no per-class loop). The 256 x 256 joint histogram also tells, for free, whether a ground-truth label or a
prediction lies outside [0, num_classes) -- the class-range check costs nothing extra.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

IGNORE_INDEX = 255
_LEVELS = 256

# Which classes the mean runs over, by the benchmark that uses each rule (videos.info names one per dataset):
# convention -> (SegmentationScores field, definition as written into metrics.json and table captions)
MIOU_CONVENTIONS = {
    "present": ("miou", "mean IoU over the classes present in the ground truth (VSPW/CFFM evaluator)"),
    "union": ("miou_mmseg", "mean IoU over the classes with a non-empty union, a class only predicted counting 0 "
                            "(cityscapesscripts, mmsegmentation)"),
}  # labels are compared as uint8 values; anything else is range-checked first


class LabelRangeError(ValueError):
    """A ground-truth label or a prediction outside [0, num_classes) (ignore index allowed in ground truth)."""


def _as_uint8(labels, what: str) -> np.ndarray | torch.Tensor:
    """Labels as uint8 (numpy, or a CUDA tensor kept on its device); values outside 0..255 are an error."""
    if isinstance(labels, torch.Tensor):
        if labels.is_cuda:
            if labels.dtype != torch.uint8:
                if labels.numel() and (int(labels.min()) < 0 or int(labels.max()) > 255):
                    raise LabelRangeError(f"{what} holds values outside 0..255")
                labels = labels.to(torch.uint8)
            return labels
        labels = labels.detach().numpy()
    labels = np.asarray(labels)
    if labels.dtype != np.uint8:
        if labels.dtype.kind not in "iub":
            raise LabelRangeError(f"{what} must hold integer labels, got dtype {labels.dtype}")
        if labels.size and (labels.min() < 0 or labels.max() > 255):
            raise LabelRangeError(f"{what} holds values outside 0..255")
        labels = labels.astype(np.uint8)
    return labels


def joint_histogram(gt, pred) -> np.ndarray:
    """(256, 256) int64 counts of (gt value, pred value) pairs over all pixels of one frame (or a batch)."""
    gt = _as_uint8(gt, "ground truth")
    pred = _as_uint8(pred, "prediction")
    if tuple(gt.shape) != tuple(pred.shape):
        raise ValueError(f"ground truth {tuple(gt.shape)} and prediction {tuple(pred.shape)} differ in size")
    if isinstance(gt, torch.Tensor) or isinstance(pred, torch.Tensor):
        gt_t = torch.as_tensor(gt)
        pred_t = torch.as_tensor(pred, device=gt_t.device)
        index = gt_t.reshape(-1).to(torch.int64) * _LEVELS + pred_t.reshape(-1).to(torch.int64)
        return torch.bincount(index, minlength=_LEVELS * _LEVELS).cpu().numpy().reshape(_LEVELS, _LEVELS)
    # intp is what bincount works in anyway; the shift-or avoids a multiply and a temporary
    index = gt.reshape(-1).astype(np.intp)
    index <<= 8
    index |= pred.reshape(-1)
    return np.bincount(index, minlength=_LEVELS * _LEVELS).reshape(_LEVELS, _LEVELS)


@dataclass(frozen=True)
class SegmentationScores:
    miou: float
    miou_mmseg: float
    wiou: float
    iou_per_class: list            # IoU_c, NaN where the union is empty
    gt_pixels_per_class: list      # row sums
    num_pixels: int                # non-ignore ground-truth pixels scored


class ConfusionMatrix:
    """Streaming confusion matrix. ``update(gt, pred)`` per frame; scores at any time.

    Ground-truth values must be train ids in [0, num_classes) or ``ignore_index``; predictions must be in
    [0, num_classes) everywhere (also on ignore pixels: a prediction of 255 is a broken prediction, not
    "no opinion"). Anything else raises LabelRangeError before the matrix is touched.
    """

    def __init__(self, num_classes: int, ignore_index: int = IGNORE_INDEX):
        if not 1 <= num_classes <= 255:
            raise ValueError(f"num_classes must be in 1..255, got {num_classes}")
        if not (num_classes <= ignore_index <= 255):
            raise ValueError(f"ignore_index must be in {num_classes}..255, got {ignore_index}")
        self.num_classes = num_classes
        self.ignore_index = ignore_index
        self.matrix = np.zeros((num_classes, num_classes), dtype=np.int64)
        self.num_frames = 0

    def check(self, hist: np.ndarray) -> None:
        """Raise LabelRangeError if a joint histogram holds a label outside the class range."""
        k, ign = self.num_classes, self.ignore_index
        bad_gt = hist[k:].sum(axis=1)
        bad_gt[ign - k] = 0
        if bad_gt.any():
            values = [int(v) + k for v in np.flatnonzero(bad_gt)]
            raise LabelRangeError(f"ground-truth label(s) {values[:5]} outside 0..{k - 1} (ignore {ign})")
        bad_pred = hist[:, k:].sum(axis=0)
        if bad_pred.any():
            values = [int(v) + k for v in np.flatnonzero(bad_pred)]
            raise LabelRangeError(f"predicted label(s) {values[:5]} outside 0..{k - 1}")

    def update(self, gt, pred) -> None:
        hist = joint_histogram(gt, pred)
        self.check(hist)
        self.matrix += hist[: self.num_classes, : self.num_classes]
        self.num_frames += 1

    def merge(self, other: "ConfusionMatrix") -> None:
        if other.num_classes != self.num_classes:
            raise ValueError("cannot merge confusion matrices with different class counts")
        self.matrix += other.matrix
        self.num_frames += other.num_frames

    # --- scores -----------------------------------------------------------------------------------
    def iou_per_class(self) -> np.ndarray:
        return iou_per_class(self.matrix)

    def scores(self) -> SegmentationScores:
        return scores_from_matrix(self.matrix)


def iou_per_class(matrix: np.ndarray) -> np.ndarray:
    """IoU_c for every class; NaN where row_c + col_c = 0 (class neither in ground truth nor predicted)."""
    matrix = np.asarray(matrix, dtype=np.float64)
    inter = np.diag(matrix)
    union = matrix.sum(axis=1) + matrix.sum(axis=0) - inter
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(union > 0, inter / np.where(union > 0, union, 1.0), np.nan)


def scores_from_matrix(matrix: np.ndarray) -> SegmentationScores:
    matrix = np.asarray(matrix, dtype=np.int64)
    iou = iou_per_class(matrix)
    rows = matrix.sum(axis=1)
    total = int(rows.sum())
    present = rows > 0
    miou = float(iou[present].mean()) if present.any() else float("nan")
    with_union = ~np.isnan(iou)
    miou_mmseg = float(iou[with_union].mean()) if with_union.any() else float("nan")
    # rows > 0 implies a non-empty union, so the product never touches a NaN where the weight is non-zero
    # divide once at the end: sum(row_c * IoU_c) / total is exactly 1.0 for a perfect prediction, while
    # summing the pre-divided frequencies can land one ulp below it
    wiou = float((rows[present] * iou[present]).sum() / total) if total else float("nan")
    return SegmentationScores(miou, miou_mmseg, wiou, iou.tolist(), rows.tolist(), total)
