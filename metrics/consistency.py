"""Video consistency mVC_K, streamed: one pass over a video, O(1) frames of state, O(N) work.

Definition (docs/protocol.md, "mVC_K"; the CFFM/MRCFA copy of the VSPW script): for a video of N frames
and a window length K, windows i = 0 .. N-K-1 -- N-K windows, one fewer than the N-K+1 that fit, because the
official loop is ``for i in range(N - K)``. In window i,
    G_i  = pixels whose ground truth is identical in frames i..i+K-1,
    GP_i = those of G_i whose prediction is also identical in frames i..i+K-1,
    VC_i = |GP_i| / |G_i|            (NaN when |G_i| = 0: dropped by the final nan-mean).
mVC_K = nan-mean of VC_i over all windows of all eligible videos, pooled (not a mean of per-video means).
Ignore pixels are not excluded (255 == 255 is "unchanged"). Eligible: N >= min_frames; the CFFM scripts skip
videos with N <= 16 for both K, hence the default min_frames = 17. The official VSPW_code script differs in
two ways (VC_CONVENTIONS, selected with ``convention="official"``): it compares the raw masks and pools a video
into K when N > K.

How it streams. Instead of re-comparing K frames per window (O(N K)), keep per pixel how many consecutive
frame-to-frame equalities end at the current frame:
    gt_run[t]   = gt_run[t-1] + 1   if gt[t] == gt[t-1]                       else 0
    both_run[t] = both_run[t-1] + 1 if gt[t] == gt[t-1] and pred[t] == pred[t-1] else 0
The window of K frames ending at frame e is constant at a pixel iff its run is >= K-1, so
|G| = count(gt_run >= K-1) and |GP| = count(both_run >= K-1) -- every K from the same two arrays.
The window ending at the last frame (e = N-1, i.e. i = N-K) is the one the official loop leaves out; as N is
not known while streaming, a window is committed only when the next frame arrives, and the one still
pending at the end of the video is dropped.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from metrics.segmentation import _as_uint8

DEFAULT_WINDOW_LENGTHS = (8, 16)
DEFAULT_MIN_FRAMES = 17  # CFFM/MRCFA: `if len(images) <= 16: continue`


@dataclass
class WindowTally:
    """Per window length: sum of the defined VC_i, how many were defined, how many were NaN (|G_i| = 0)."""
    vc_sum: float = 0.0
    windows: int = 0
    empty_windows: int = 0

    def add(self, other: "WindowTally") -> None:
        self.vc_sum += other.vc_sum
        self.windows += other.windows
        self.empty_windows += other.empty_windows

    @property
    def mean(self) -> float:
        return self.vc_sum / self.windows if self.windows else float("nan")


@dataclass
class VideoWindows:
    num_frames: int
    tallies: dict = field(default_factory=dict)   # K -> WindowTally


class VideoConsistencyStream:
    """The windows of one video for several K at once. ``update(gt, pred)`` once per frame, then ``finish()``."""

    def __init__(self, window_lengths=DEFAULT_WINDOW_LENGTHS):
        lengths = tuple(sorted(set(int(k) for k in window_lengths)))
        if not lengths or lengths[0] < 2 or lengths[-1] > 256:
            raise ValueError(f"window lengths must be in 2..256, got {window_lengths}")
        self.window_lengths = lengths
        # runs are capped at the longest K-1 so they fit uint8 and never wrap
        self._cap = lengths[-1] - 1
        self._tallies = {k: WindowTally() for k in lengths}
        self._num_frames = 0
        self._prev_gt = self._prev_pred = self._gt_run = self._both_run = None
        self._eq = self._scratch = None

    def update(self, gt, pred) -> None:
        gt = _as_uint8(gt, "ground truth")
        pred = _as_uint8(pred, "prediction")
        if not isinstance(gt, np.ndarray):  # a CUDA tensor: this path is CPU-only by design (cheap uint8 ops)
            gt = gt.cpu().numpy()
        if not isinstance(pred, np.ndarray):
            pred = pred.cpu().numpy()
        if gt.shape != pred.shape:
            raise ValueError(f"ground truth {gt.shape} and prediction {pred.shape} differ in size")
        t = self._num_frames
        if t == 0:
            self._prev_gt = gt.copy()
            self._prev_pred = pred.copy()
            self._gt_run = np.zeros(gt.shape, np.uint8)
            self._both_run = np.zeros(gt.shape, np.uint8)
            self._eq = np.empty(gt.shape, bool)
            self._scratch = np.empty(gt.shape, bool)
            self._num_frames = 1
            return
        if gt.shape != self._prev_gt.shape:
            raise ValueError(f"frame {t} is {gt.shape}, earlier frames of this video are {self._prev_gt.shape}")
        # commit the windows ending at frame t-1: a next frame exists, so they are inside range(N - K)
        self._commit(last_frame=t - 1)
        eq, scratch = self._eq, self._scratch
        np.equal(gt, self._prev_gt, out=eq)
        _advance(self._gt_run, eq, self._cap)
        np.equal(pred, self._prev_pred, out=scratch)
        np.logical_and(eq, scratch, out=eq)
        _advance(self._both_run, eq, self._cap)
        np.copyto(self._prev_gt, gt)
        np.copyto(self._prev_pred, pred)
        self._num_frames = t + 1

    def _commit(self, last_frame: int) -> None:
        for k in self.window_lengths:
            if last_frame < k - 1:   # no complete window ends here yet (K sorted: neither for longer K)
                break
            stable_gt = np.count_nonzero(np.greater_equal(self._gt_run, k - 1, out=self._scratch))
            tally = self._tallies[k]
            if stable_gt == 0:
                tally.empty_windows += 1
                continue
            stable_both = np.count_nonzero(np.greater_equal(self._both_run, k - 1, out=self._scratch))
            tally.vc_sum += stable_both / stable_gt
            tally.windows += 1

    def finish(self) -> VideoWindows:
        """The video's tallies; the window ending at the last frame (still pending) is dropped on purpose."""
        return VideoWindows(self._num_frames, self._tallies)


def _advance(run: np.ndarray, unchanged: np.ndarray, cap: int) -> None:
    """run = min(run + 1, cap) where unchanged, else 0 -- in place, no temporaries."""
    np.minimum(run, cap - 1, out=run)
    np.add(run, 1, out=run)
    np.multiply(run, unchanged, out=run)


# The two reference scripts (docs/protocol.md, "mVC conventions"): what the ground truth is compared as, and
# which videos a window length pools. Both use the N - K windows of ``range(N - K)`` and the pooled nan-mean.
VC_CONVENTIONS = {
    "cffm": "CFFM/MRCFA VC_perclip.py: remapped ground truth (raw 0 'others' and 255 void are both ignore, so "
            "0 <-> 255 is no change); a video enters every K when N >= min_frames (default 17: skip N <= 16)",
    "official": "official VSPW_code VC_perclip.py: raw ground truth (0 and 255 differ, so 0 <-> 255 counts as a "
            "change); a video enters window length K when N > K",
}


class VideoConsistency:
    """Pooled mVC over a split. ``start_video()`` -> stream; ``add_video(stream.finish())``; ``scores()``.

    ``convention`` (VC_CONVENTIONS) sets eligibility: "cffm" pools a video into every K when it has at least
    ``min_frames`` frames, "official" into each K with N > K. What the ground truth is compared as (remapped or
    raw) is the caller's choice of labels."""

    def __init__(self, window_lengths=DEFAULT_WINDOW_LENGTHS, min_frames: int = DEFAULT_MIN_FRAMES,
                 convention: str = "cffm"):
        if convention not in VC_CONVENTIONS:
            raise ValueError(f"unknown mVC convention '{convention}' (known: {', '.join(VC_CONVENTIONS)})")
        self.window_lengths = tuple(sorted(set(int(k) for k in window_lengths)))
        self.min_frames = int(min_frames)
        self.convention = convention
        self.tallies = {k: WindowTally() for k in self.window_lengths}
        self.videos_per_window = {k: 0 for k in self.window_lengths}
        self.videos = 0
        self.skipped_videos = 0

    def start_video(self) -> VideoConsistencyStream:
        return VideoConsistencyStream(self.window_lengths)

    def min_frames_for(self, k: int) -> int:
        """Fewest frames a video needs to be pooled into window length K."""
        return k + 1 if self.convention == "official" else self.min_frames

    def eligible(self, num_frames: int, k: int | None = None) -> bool:
        """Pooled into window length K (any K when None)?"""
        lengths = self.window_lengths if k is None else (k,)
        return any(num_frames >= self.min_frames_for(n) for n in lengths)

    def add_video(self, windows: VideoWindows) -> bool:
        """Pool a finished video's windows into each eligible K; returns False (and counts it skipped) when
        it is too short for every K."""
        if not self.eligible(windows.num_frames):
            self.skipped_videos += 1
            return False
        for k in self.window_lengths:
            if self.eligible(windows.num_frames, k):
                self.tallies[k].add(windows.tallies[k])
                self.videos_per_window[k] += 1
        self.videos += 1
        return True

    def scores(self) -> dict:
        """{K: mVC_K as a fraction in [0, 1]} -- NaN when no window of any eligible video was defined."""
        return {k: self.tallies[k].mean for k in self.window_lengths}


def video_consistency(gt_frames, pred_frames, window_lengths=DEFAULT_WINDOW_LENGTHS) -> dict:
    """Convenience: mean VC_K of one video's windows (no eligibility rule), {K: value}."""
    stream = VideoConsistencyStream(window_lengths)
    for gt, pred in zip(gt_frames, pred_frames, strict=True):
        stream.update(gt, pred)
    return {k: t.mean for k, t in stream.finish().tallies.items()}
