"""The rule that says whether a run has converged, from its validation curve.

    last_quarter([(60, 40.1), (120, 44.0), (180, 44.6), (240, 44.9)], iters=240)
    # {"from": 180, "points": 2, "change": 0.3, "range": 0.3, "converged": True}

The curve is the val-split mIoU engine.train logs every ``validate_every`` iterations (engine/validation.py).
Convergence (the default experiment's criterion, docs/pipeline.md): over the last quarter of the schedule
the validation mIoU moves by less than ``TOLERANCE`` points. How far it moves is the least-squares line
through the mIoU at the validated iterations >= 3/4 of the schedule (the final model included), its slope
times the quarter's length (``trend``; with two points, their difference): the curve's movement, not the
checkpoint-to-checkpoint jitter of a small validation set, which is reported beside it (``range``, max -
min of those points). At least two points are needed. This module imports nothing beyond the standard
library: the report CLIs read the rule, and their jobs rerun when it changes (common/codeversion.py).
"""
from __future__ import annotations

from typing import Sequence

LAST_PART = 0.25        # the last quarter of the schedule
TOLERANCE = 1.0         # mIoU points


def last_quarter(curve: Sequence[tuple[int, float]], iters: int, tolerance: float = TOLERANCE) -> dict:
    """``curve``: (iteration, mIoU in %) points, the final model's included. Returns where the last part
    starts, how many points lie in it, how far the mIoU moves over it (``change``: the least-squares trend
    over the part's length, signed), the points' ``range`` and whether |change| is below ``tolerance``.
    Fewer than two points: ``change``, ``range`` and ``converged`` are None (not measured)."""
    start = iters * (1 - LAST_PART)
    tail = [(it, m) for it, m in sorted(curve) if it >= start - 1e-9]
    if len(tail) < 2:
        return {"from": int(round(start)), "points": len(tail), "change": None, "range": None, "converged": None}
    xs, ys = [it for it, _ in tail], [m for _, m in tail]
    mx, my = sum(xs) / len(xs), sum(ys) / len(ys)
    slope = sum((x - mx) * (y - my) for x, y in zip(xs, ys)) / sum((x - mx) ** 2 for x in xs)
    change = slope * iters * LAST_PART
    return {"from": int(round(start)), "points": len(tail), "change": change, "range": max(ys) - min(ys),
            "converged": abs(change) < tolerance}
