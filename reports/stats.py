"""Intervals over seeds and the test behind every claim verdict (scipy.stats, one place).

    summary([41.2, 43.0, 42.1])        # Summary(mean=42.1, std=0.9, n=3, half=2.24): mean +- half is the 95% CI
    difference([45.1, 44.0, 46.2], [41.2, 43.0, 42.1])   # Welch: a - b, its 95% CI, p, df
    verdict(difference(...), paper=3.4)                   # "reproduced" / "contradicted" / "inconclusive"

A 95% interval of a mean is Student's t over the seeds (mean +- t(0.975, n - 1) s / sqrt(n)); with one seed
there is none (a single run is never shown as a mean with an interval). A difference of two methods is
Welch's unequal-variance t-test over their seeds (scipy.stats.ttest_ind(equal_var=False)), and its 95%
interval is the one that test inverts, so "the interval excludes 0" and "p < 0.05" are the same statement.
A verdict compares the sign of our difference with the sign of the paper's: reproduced when the interval
lies entirely on the paper's side of 0, contradicted when it lies entirely on the other side, inconclusive
otherwise (or when either method has fewer than two seeds).
"""
from __future__ import annotations

import math
import statistics
import warnings
from dataclasses import dataclass

LEVEL = 0.95
TEST = "Welch's two-sided t-test over seeds at the 5% level"
VERDICTS = ("reproduced", "contradicted", "inconclusive")


@dataclass(frozen=True)
class Summary:
    mean: float | None
    std: float | None
    n: int
    half: float | None              # half-width of the 95% interval; None for fewer than two values

    @property
    def low(self) -> float | None:
        return None if self.half is None else self.mean - self.half

    @property
    def high(self) -> float | None:
        return None if self.half is None else self.mean + self.half


@dataclass(frozen=True)
class Difference:
    diff: float | None              # mean(a) - mean(b)
    low: float | None
    high: float | None
    p: float | None
    df: float | None
    n_a: int
    n_b: int


def summary(values) -> Summary:
    vals = [float(v) for v in values if v is not None and math.isfinite(float(v))]
    if not vals:
        return Summary(None, None, 0, None)
    mean = statistics.fmean(vals)
    if len(vals) < 2:
        return Summary(mean, None, 1, None)
    from scipy import stats

    std = statistics.stdev(vals)
    return Summary(mean, std, len(vals), float(stats.t.ppf(0.5 + LEVEL / 2, len(vals) - 1)) * std / math.sqrt(len(vals)))


def difference(a, b) -> Difference:
    """Welch's t-test of mean(a) - mean(b) and its 95% interval (scipy)."""
    a = [float(v) for v in a if v is not None and math.isfinite(float(v))]
    b = [float(v) for v in b if v is not None and math.isfinite(float(v))]
    if not a or not b:
        return Difference(None, None, None, None, None, len(a), len(b))
    diff = statistics.fmean(a) - statistics.fmean(b)
    if len(a) < 2 or len(b) < 2:
        return Difference(diff, None, None, None, None, len(a), len(b))
    from scipy import stats

    if max(statistics.pvariance(a), statistics.pvariance(b)) < 1e-18:   # identical seeds: t is undefined
        return Difference(diff, diff, diff, 0.0 if diff else 1.0, None, len(a), len(b))
    with warnings.catch_warnings():   # one side's seeds all equal: scipy warns of cancellation, t is still right
        warnings.simplefilter("ignore", RuntimeWarning)
        res = stats.ttest_ind(a, b, equal_var=False)
    ci = res.confidence_interval(LEVEL)
    return Difference(diff, float(ci.low), float(ci.high), float(res.pvalue), float(res.df), len(a), len(b))


def verdict(d: Difference, paper: float | None) -> str:
    """Our difference against the sign of the paper's (see the module docstring)."""
    if paper is None or paper == 0 or d.low is None:
        return "inconclusive"
    if (d.low > 0 and paper > 0) or (d.high < 0 and paper < 0):
        return "reproduced"
    if (d.high < 0 and paper > 0) or (d.low > 0 and paper < 0):
        return "contradicted"
    return "inconclusive"
