"""The metrics table: every accuracy metric the suite reports, one row each.

``metrics.evaluate`` writes each row's ``key`` into metrics.json (a fraction in [0, 1], null where not
computed); the report CLIs read the same keys and print them as percent: the cross table's columns, the paper
tables' accuracy columns (reports/paper.py maps the papers' column names onto these rows) and the plots'
axes. A new metric is its accumulator (metrics/*.py), the line of metrics.evaluate that stores its score,
and one row here (docs/extending.md). Torch-free and cheap to import.
"""
from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Metric:
    name: str               # the column name as the papers and our tables print it
    key: str                # its key in metrics.json (a fraction in [0, 1], or null)
    higher_is_better: bool
    decimals: int           # printed decimals of the percent value, where the paper gives none
    description: str
    fallback_key: str | None = None   # read instead where a metrics.json predates ``key``

    def percent(self, fraction: float) -> float:
        """metrics.json holds fractions; the tables and plots print percent."""
        return 100.0 * fraction


METRICS: dict[str, Metric] = {m.name: m for m in (
    # the dataset's own benchmark's mean (videos/info.py miou_convention); metrics.json also keeps both
    # conventions, "miou" (classes present in the ground truth) and "miou_mmseg" (non-empty union)
    Metric("mIoU", "miou_benchmark", True, 1, "mean IoU as the dataset's benchmark averages it: over the classes "
           "present in the ground truth (VSPW/CFFM) or with a non-empty union (Cityscapes, CamVid)", "miou"),
    Metric("WIoU", "wiou", True, 1, "IoU weighted by each class's ground-truth pixel share"),
    Metric("mVC8", "mvc8", True, 1, "video consistency over windows of 8 labelled frames"),
    Metric("mVC16", "mvc16", True, 1, "video consistency over windows of 16 labelled frames"),
    Metric("TC", "tc", True, 1, "temporal consistency: agreement of consecutive predictions warped by flow"),
)}
METRIC_KEYS: tuple[str, ...] = tuple(m.key for m in METRICS.values())
