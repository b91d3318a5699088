"""mVC_K: hand-computed windows, the N-K window-count trap, eligibility, pooling, and a plain restatement."""
import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from metrics.consistency import VideoConsistency, VideoConsistencyStream, video_consistency


def a(rows):
    return np.array(rows, dtype=np.uint8)


# ---------------------------------------------------------------- plain restatement (CFFM get_common, in words)
def reference_windows(gts, preds, k):
    """VC_i for i in range(N - K): all K frames of the window compared pixel by pixel, NaN for empty G_i."""
    values = []
    for i in range(len(gts) - k):
        g = np.ones(gts[0].shape, bool)
        p = np.ones(gts[0].shape, bool)
        for j in range(1, k):
            g &= gts[i] == gts[i + j]
            p &= preds[i] == preds[i + j]
        values.append((g & p).sum() / g.sum() if g.sum() else math.nan)
    return values


def reference_mvc(videos, k, min_frames=17):
    pooled = []
    for gts, preds in videos:
        if len(gts) < min_frames:
            continue
        pooled.extend(reference_windows(gts, preds, k))
    defined = [v for v in pooled if not math.isnan(v)]
    return sum(defined) / len(defined) if defined else math.nan


def pooled(videos, ks=(8, 16), min_frames=17):
    vc = VideoConsistency(ks, min_frames=min_frames)
    for gts, preds in videos:
        stream = vc.start_video()
        for g, p in zip(gts, preds):
            stream.update(g, p)
        vc.add_video(stream.finish())
    return vc


def same(x, y, tol=1e-12):
    return (math.isnan(x) and math.isnan(y)) or abs(x - y) <= tol


# ---------------------------------------------------------------- hand-computed cases
def test_hand_computed_partial_agreement():
    # 1 x 4 pixels, K = 3, N = 5 -> windows i = 0, 1 (frames 0-2 and 1-3)
    # GT: pixels 0-2 constant; pixel 3 changes at frame 1 and then stays.
    # pred: pixel 0 constant, pixel 1 changes at frame 2, pixel 2 at frame 3, pixel 3 constant.
    gts = [a([[1, 1, 1, 0]])] + [a([[1, 1, 1, 2]])] * 4
    preds = [a([[0, 0, 0, 0]]), a([[0, 0, 0, 0]]), a([[0, 1, 0, 0]]), a([[0, 1, 1, 0]]), a([[0, 1, 1, 0]])]
    # window 0: G = {0,1,2}, agree {0,2} -> 2/3; window 1: G = {0,1,2,3}, agree {0,3} -> 2/4
    stream = VideoConsistencyStream((3,))
    for g, p in zip(gts, preds):
        stream.update(g, p)
    tally = stream.finish().tallies[3]
    assert tally.windows == 2 and tally.empty_windows == 0
    assert tally.mean == pytest.approx((2 / 3 + 1 / 2) / 2, abs=1e-15)


def test_window_count_trap_is_n_minus_k():
    # The official loop is range(N - K): the window that ends on the last frame is NOT scored.
    # Prediction flickers only on the last frame, so including that window would lower mVC below 1.
    k = 2
    gts = [a([[0, 0]])] * 3
    preds = [a([[0, 0]]), a([[0, 0]]), a([[1, 1]])]
    stream = VideoConsistencyStream((k,))
    for g, p in zip(gts, preds):
        stream.update(g, p)
    tally = stream.finish().tallies[k]
    assert tally.windows == 1                       # N - K = 1, not N - K + 1 = 2
    assert tally.mean == 1.0                        # 0.5 if the last window were counted
    for n in range(0, 25):
        for k in (2, 8, 16):
            s = VideoConsistencyStream((k,))
            for _ in range(n):
                s.update(a([[3]]), a([[3]]))
            assert s.finish().tallies[k].windows == max(n - k, 0), (n, k)


def test_window_where_gt_changes_everywhere_is_dropped():
    # K = 2, N = 4: window 0 (frames 0,1) has every GT pixel changing -> |G| = 0 -> NaN, dropped
    gts = [a([[0, 1]]), a([[1, 0]]), a([[1, 0]]), a([[1, 0]])]
    preds = [a([[2, 2]])] * 4
    vc = pooled([(gts, preds)], ks=(2,), min_frames=0)
    assert vc.tallies[2].empty_windows == 1 and vc.tallies[2].windows == 1
    assert vc.scores()[2] == 1.0
    only_empty = pooled([(gts[:3], preds[:3])], ks=(2,), min_frames=0)   # one window, empty -> NaN
    assert math.isnan(only_empty.scores()[2])


def test_video_shorter_than_window_gives_no_window():
    gts = [a([[0]])] * 5
    preds = [a([[0]])] * 5
    assert math.isnan(video_consistency(gts, preds, (8,))[8])
    vc = pooled([(gts, preds)], ks=(8,), min_frames=0)
    assert vc.tallies[8].windows == 0 and vc.videos == 1 and math.isnan(vc.scores()[8])


def test_default_eligibility_skips_videos_of_16_frames_or_fewer():
    const = a([[1, 1]])
    flicker = [a([[0, 1]]), a([[1, 0]])]
    short = ([const] * 16, [flicker[t % 2] for t in range(16)])   # would score 0 for every window
    long = ([const] * 17, [const] * 17)                            # scores 1 everywhere
    vc = pooled([short, long])
    assert vc.min_frames == 17 and vc.videos == 1 and vc.skipped_videos == 1
    assert vc.scores() == {8: 1.0, 16: 1.0}
    assert vc.tallies[8].windows == 9 and vc.tallies[16].windows == 1
    everything = pooled([short, long], min_frames=0)
    assert everything.scores()[8] == pytest.approx(9 / (8 + 9), abs=1e-15)


def test_pooling_is_over_windows_not_per_video_means():
    # video A: 1 window, VC 0; video B: 3 windows, VC 1 -> pooled 3/4 (mean of means would be 1/2)
    a0, a1 = a([[0]]), a([[1]])
    video_a = ([a0] * 3, [a0, a1, a1])          # K=2: window 0 (frames 0,1): pred changes -> 0
    video_b = ([a0] * 5, [a0] * 5)              # 3 windows, all 1
    vc = pooled([video_a, video_b], ks=(2,), min_frames=0)
    assert vc.scores()[2] == 0.75


def test_ignore_pixels_are_not_excluded():
    gts = [a([[255, 255]])] * 3
    preds = [a([[0, 1]]), a([[0, 2]]), a([[0, 2]])]
    assert video_consistency(gts, preds, (2,))[2] == 0.5


def test_shape_errors():
    s = VideoConsistencyStream((2,))
    s.update(a([[0, 0]]), a([[0, 0]]))
    with pytest.raises(ValueError, match="earlier frames"):
        s.update(a([[0, 0, 0]]), a([[0, 0, 0]]))
    with pytest.raises(ValueError, match="differ in size"):
        s.update(a([[0, 0]]), a([[0]]))
    with pytest.raises(ValueError):
        VideoConsistencyStream((1,))


# ---------------------------------------------------------------- property test
videos_strategy = st.lists(
    st.integers(0, 12).flatmap(lambda n: st.lists(
        st.tuples(st.lists(st.sampled_from([0, 1, 255]), min_size=6, max_size=6),
                  st.lists(st.integers(0, 1), min_size=6, max_size=6)), min_size=n, max_size=n)),
    min_size=1, max_size=3)


@settings(max_examples=150, deadline=None)
@given(videos_strategy, st.sets(st.integers(2, 5), min_size=1, max_size=3), st.integers(0, 8))
def test_matches_plain_definition(raw_videos, ks, min_frames):
    videos = [([a(g).reshape(2, 3) for g, _ in v], [a(p).reshape(2, 3) for _, p in v]) for v in raw_videos]
    vc = pooled(videos, ks=tuple(ks), min_frames=min_frames)
    for k in ks:
        assert same(vc.scores()[k], reference_mvc(videos, k, min_frames)), k
        expected_windows = sum(max(len(g) - k, 0) for g, _ in videos if len(g) >= min_frames)
        assert vc.tallies[k].windows + vc.tallies[k].empty_windows == expected_windows
