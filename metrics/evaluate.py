"""Score a folder of predictions against a dataset split: mIoU, mmseg mIoU, WIoU, mVC_K, TC -> one JSON.

    python -m metrics.evaluate --dataset D --root ROOT --split val \
        --pred PRED --out OUT.json [--tc-flow {auto,gt,farneback,dis,learned,none}] [--tc-videos N]
        [--vc-min-frames N] [--vc-convention cffm|official]

PRED holds PRED/<video>/<frame>.png in train ids (greyscale or palette PNG), one per labelled frame, as the
CFFM/VSPW scripts and engine.infer write them, plus one per unlabelled frame TC reads. Definitions:
docs/protocol.md (metrics/segmentation.py, consistency.py, temporal.py restate them). All values are
fractions in [0, 1]; null where not computed.

- mIoU/WIoU: one confusion matrix over every labelled frame of the split. ``miou`` averages over the classes
  present in the ground truth (VSPW/CFFM), ``miou_mmseg`` over those with a non-empty union
  (cityscapesscripts, mmseg); ``miou_benchmark`` is the one the dataset's own benchmark uses (videos.info),
  named in ``miou_convention``.
- mVC_K: over the labelled frames of videos whose every frame is labelled (a sparse video has no windows);
  --vc-convention cffm (default): remapped labels and at least --vc-min-frames frames (default 17: the
  CFFM/MRCFA scripts skip N <= 16); official: the VSPW_code script, raw masks and N > K.
- TC: over every pair of frames adjacent on disk of the first --tc-videos videos (all by default): on a
  sparsely labelled set (Cityscapes, CamVid) every frame of each snippet, the unlabelled ones included
  (engine.infer --tc-frames auto|all predicts them), on a dense one its labelled frames;
  flow from --tc-flow; ``auto`` is the dataset's ground-truth flow where it has one (videos/info.py
  ``gt_flow``: the synthetic set) and none otherwise. The flow source and the pair and frame counts are
  written next to it. Every metric of the metrics table (metrics/info.py) is a key of the result.

A missing prediction for a frame that is scored, an unreadable one, one whose size differs from its frame,
or a label outside 0..K-1 stops the run with one line naming the file (exit 1). With --warn-on-bad-input
each is counted under "warnings" instead, the frame is left out of every metric, and (a labelled one) its
video out of mVC.

What may legitimately be so is scored as it is and counted under "warnings", with one ``warning:`` line each
on stderr: frames of a densely annotated split that have no mask (``unlabelled_frames``: they are not
scored), the dataset reader's notes (``dataset_notes``: gaps in frame numbering, a repeated split line, a
frame saved twice; videos.check reports them too) and predictions for frames that are neither labelled
frames of the split nor frames TC reads (``extra_predictions``: ignored).
"""
from __future__ import annotations

import argparse
import math
import os
import sys
from collections import Counter
from pathlib import Path

import numpy as np

from common.cli import InputError, run_cli
from common.io import check_output_file, write_json
from common.provenance import provenance
from metrics.consistency import DEFAULT_MIN_FRAMES, DEFAULT_WINDOW_LENGTHS, VC_CONVENTIONS, VideoConsistency
from metrics.flow import FLOW_CHOICES, make_flow_source
from metrics.info import METRIC_KEYS
from metrics.segmentation import MIOU_CONVENTIONS, ConfusionMatrix
from metrics.temporal import TemporalConsistency, reads_unlabelled_frames
from videos.info import DATASET_NAMES, DATASETS

MAX_WARNING_EXAMPLES = 20


class BadInput(InputError):
    """A problem with one frame's files; ``kind`` is the counter it goes to under --warn-on-bad-input."""

    def __init__(self, kind: str, message: str):
        super().__init__(message)
        self.kind = kind


def read_prediction(path: Path, shape: tuple[int, int], num_classes: int, labelled: bool = True) -> np.ndarray:
    """A prediction PNG as uint8 train ids, checked against its frame's size and the class range.
    ``labelled`` False: a frame only TC reads (an unlabelled frame of a snippet)."""
    from videos.datasets import read_index_png

    if not path.is_file():
        if labelled:
            raise BadInput("missing_prediction", f"{path}: missing prediction for a labelled frame")
        raise BadInput("missing_prediction", f"{path}: missing prediction of an unlabelled frame TC reads "
                                             "(engine.infer --tc-frames all writes them; or --tc-flow none)")
    try:
        pred = read_index_png(path)
    except InputError as e:
        raise BadInput("unreadable_prediction", str(e)) from None
    if pred.shape != tuple(shape):
        raise BadInput("size_mismatch", f"{path}: prediction is {pred.shape[1]}x{pred.shape[0]} but its "
                                        f"{'mask' if labelled else 'frame'} is {shape[1]}x{shape[0]}")
    top = int(pred.max()) if pred.size else 0
    if top >= num_classes:
        bad = sorted(int(v) for v in np.unique(pred[pred >= num_classes]))
        raise BadInput("label_out_of_range", f"{path}: predicted label(s) {bad[:8]} outside 0..{num_classes - 1}")
    return pred


def read_ground_truth(ds, video, frame: str, raw: bool = False) -> tuple[np.ndarray, np.ndarray]:
    """(train ids, the labels mVC compares): the same array, or the raw mask under the official VSPW VC
    convention (raw 0 and 255 stay apart). One decode either way."""
    try:
        stored = ds.read_raw_label(video, frame)
        gt = ds.remap_video(video, stored, ds.label_path(video, frame))
    except InputError as e:   # the reader names the mask; counted apart from prediction problems
        raise BadInput("bad_ground_truth", str(e)) from None
    return gt, (stored if raw else gt)


def frame_shape(ds, video, frame: str) -> tuple[int, int]:
    """(H, W) of an unlabelled frame, from its image header."""
    from videos.datasets import image_size

    try:
        w, h = image_size(ds.image_path(video, frame))
    except InputError as e:
        raise BadInput("bad_frame", str(e)) from None
    return h, w


def resolve_flow_name(name: str, dataset: str) -> str:
    """``auto`` -> the dataset's ground-truth flow where it has one (videos/info.py ``gt_flow``), else none."""
    if name != "auto":
        return name
    return "gt" if DATASETS[dataset].gt_flow else "none"


INPUT_WARNINGS = ("unlabelled_frames", "dataset_notes", "extra_predictions")


def note_input_warnings(ds, pred_root: Path, read: dict[str, set[str]], warnings: Counter, examples: list[str]) -> None:
    """Count what the module docstring lists under INPUT_WARNINGS; one stderr line per kind. ``read``: the
    frames of each video whose predictions were read (labelled ones, and the ones TC reads)."""
    found: dict[str, list[str]] = {k: [] for k in INPUT_WARNINGS}
    unlabelled = set()
    if getattr(ds, "dense", False) and ds.split != "test":
        for v in ds.videos:
            for f in v.frames:
                if f not in v.label_files:
                    unlabelled.add(str(v.image_files[f]))
                    found["unlabelled_frames"].append(f"{v.image_files[f]}: frame without a mask, not scored")
    found["dataset_notes"] = [m for m in ds.problems + ds.warnings if m.split(": ", 1)[0] not in unlabelled]
    with os.scandir(pred_root) as videos:
        for entry in sorted(videos, key=lambda e: e.name):
            if entry.is_dir():
                with os.scandir(entry.path) as frames:
                    extra = sorted(e.name for e in frames if e.name.endswith(".png")
                                   and e.name[:-4] not in read.get(entry.name, ()))
                found["extra_predictions"] += [f"{Path(entry.path) / name}: no labelled frame of {ds.name} "
                                               f"{ds.split} and no frame TC reads has this prediction; ignored"
                                               for name in extra]
    for kind, messages in found.items():
        if messages:
            warnings[kind] += len(messages)
            examples.extend(messages[:max(0, MAX_WARNING_EXAMPLES - len(examples))])
            more = f" (and {len(messages) - 1} more like it)" if len(messages) > 1 else ""
            print(f"warning: {messages[0]}{more}", file=sys.stderr)


def _fraction(x) -> float | None:
    return None if x is None or (isinstance(x, float) and math.isnan(x)) else float(x)


TC_PAIRS = ("every pair (t, t+1) of frames adjacent on disk among the frames TC reads, in each of the first "
            "tc_videos videos: on a sparsely labelled set every frame of each snippet (a Cityscapes snippet's 30 "
            "frames give 29 pairs, as ETC's eval_tc.py; a CamVid window its length - 1), on a densely labelled "
            "one its labelled frames (a VSPW video's N frames give N-1, as TC_cal.py)")


def evaluate(ds, pred_root: Path, *, flow_source=None, tc_videos: int | None = None,
             window_lengths=DEFAULT_WINDOW_LENGTHS, vc_min_frames: int = DEFAULT_MIN_FRAMES,
             vc_convention: str = "cffm", warn_on_bad_input: bool = False, progress: bool | None = None) -> dict:
    """Stream over the split once; returns the result dict (without provenance)."""
    k = ds.num_classes
    confusion = ConfusionMatrix(k, ds.ignore_index)
    consistency = VideoConsistency(window_lengths, min_frames=vc_min_frames, convention=vc_convention)
    temporal = TemporalConsistency(k) if flow_source is not None else None
    warnings: Counter = Counter()
    examples: list[str] = []
    mvc_sparse = mvc_bad = 0
    videos_scored = tc_frames = 0
    read: dict[str, set[str]] = {}   # video -> the frames whose predictions this run reads
    every_frame = reads_unlabelled_frames(ds)

    def problem(e: BadInput) -> None:
        if not warn_on_bad_input:
            raise e
        warnings[e.kind] += 1
        if len(examples) < MAX_WARNING_EXAMPLES:
            examples.append(str(e))
        print(f"warning: {e}", file=sys.stderr)

    videos = ds.videos
    if progress is None:
        progress = sys.stderr.isatty()
    if progress:
        from tqdm import tqdm
        videos = tqdm(videos, desc="videos", unit="video", file=sys.stderr)

    for index, video in enumerate(videos):
        # mVC needs every frame: a video with unlabelled frames between its labelled ones has no windows
        dense = len(video.labelled) == len(video.frames)
        stream = consistency.start_video() if dense else None
        do_tc = temporal is not None and (tc_videos is None or index < tc_videos)
        labelled = set(video.labelled)
        position = {f: i for i, f in enumerate(video.frames)}
        clean, scored = True, 0
        previous = None      # (frame, prediction) of the last frame read, for TC
        in_pairs: set[str] = set()
        # TC on a sparse set reads every frame of the snippet, the unlabelled ones too; the rest labelled ones
        frames = video.frames if do_tc and every_frame else video.labelled
        read[video.name] = set(frames)
        for frame in frames:
            has_gt = frame in labelled
            try:
                if has_gt:
                    gt, vc_gt = read_ground_truth(ds, video, frame, raw=vc_convention == "official")
                shape = gt.shape if has_gt else frame_shape(ds, video, frame)
                pred = read_prediction(pred_root / video.name / f"{frame}.png", shape, k, labelled=has_gt)
            except BadInput as e:
                problem(e)
                clean = clean and not has_gt
                previous = None
                continue
            if has_gt:
                confusion.update(gt, pred)
                scored += 1
                if stream is not None:
                    stream.update(vc_gt, pred)
            if do_tc:
                if previous is not None and position[frame] == position[previous[0]] + 1:
                    flow, valid = flow_source(ds, video, previous[0], frame)
                    if flow.shape[:2] != pred.shape:
                        raise InputError(f"{ds.name} video {video.name}: flow {previous[0]} -> {frame} is "
                                         f"{flow.shape[1]}x{flow.shape[0]} but predictions are "
                                         f"{pred.shape[1]}x{pred.shape[0]}")
                    temporal.update(previous[1], pred, flow, valid)
                    in_pairs.update((previous[0], frame))
                previous = (frame, pred)
        videos_scored += scored > 0
        tc_frames += len(in_pairs)
        if stream is None:
            mvc_sparse += 1
        elif not clean:
            mvc_bad += 1
        else:
            consistency.add_video(stream.finish())

    note_input_warnings(ds, pred_root, read, warnings, examples)
    if confusion.num_frames == 0 and not warnings:
        raise InputError(f"{ds.root}: split '{ds.split}' has no labelled frames to evaluate")

    seg = confusion.scores()
    vc = consistency.scores()
    info = DATASETS.get(ds.name)
    convention = info.miou_convention if info is not None else "present"
    field, definition = MIOU_CONVENTIONS[convention]
    result = {
        "dataset": ds.name,
        "split": ds.split,
        "num_classes": k,
        "num_videos": videos_scored,
        "num_frames": confusion.num_frames,
        "num_pixels": seg.num_pixels,
        "miou": _fraction(seg.miou),
        "miou_mmseg": _fraction(seg.miou_mmseg),
        "wiou": _fraction(seg.wiou),
        "miou_definition": "miou: " + MIOU_CONVENTIONS["present"][1] + "; miou_mmseg: " + MIOU_CONVENTIONS["union"][1],
        # the dataset's own benchmark's mean (videos.info), what its tables print
        "miou_benchmark": _fraction(getattr(seg, field)),
        "miou_convention": convention,
        "miou_benchmark_definition": definition,
    }
    result["mvc8"] = result["mvc16"] = None   # always present, null unless computed
    for length in consistency.window_lengths:
        result[f"mvc{length}"] = _fraction(vc[length])
    tc = temporal.scores() if temporal is not None else None
    result.update({
        "tc": _fraction(tc["tc"]) if tc else None,
        "tc_mmseg": _fraction(tc["tc_mmseg"]) if tc else None,
        "tc_flow": flow_source.name if flow_source is not None else None,
        "tc_pairs": tc["pairs"] if tc else 0,
        "tc_frames": tc_frames,
        "tc_videos": (min(tc_videos, len(ds.videos)) if tc_videos is not None else len(ds.videos)) if tc else 0,
        "tc_pair_rule": TC_PAIRS,
        "iou_per_class": [_fraction(v) for v in seg.iou_per_class],
        "gt_pixels_per_class": seg.gt_pixels_per_class,
        "mvc": {
            "convention": consistency.convention,
            "definition": VC_CONVENTIONS[consistency.convention],
            "window_lengths": list(consistency.window_lengths),
            "min_frames": consistency.min_frames if consistency.convention == "cffm" else None,
            "min_frames_per_window": {str(n): consistency.min_frames_for(n) for n in consistency.window_lengths},
            "windows": {str(n): consistency.tallies[n].windows for n in consistency.window_lengths},
            "empty_windows": {str(n): consistency.tallies[n].empty_windows for n in consistency.window_lengths},
            "videos": consistency.videos,
            "videos_per_window": {str(n): consistency.videos_per_window[n] for n in consistency.window_lengths},
            "skipped_short": consistency.skipped_videos,
            "skipped_sparse": mvc_sparse,
            "skipped_bad_input": mvc_bad,
        },
        "warnings": {kind: warnings.get(kind, 0) for kind in
                     ("missing_prediction", "unreadable_prediction", "size_mismatch", "label_out_of_range",
                      "bad_ground_truth", "bad_frame") + INPUT_WARNINGS},
        "warning_examples": examples,
    })
    for key in METRIC_KEYS:   # every metric of the table is in every result file, null unless computed
        result.setdefault(key, None)
    return result


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m metrics.evaluate", description=__doc__.splitlines()[0])
    p.add_argument("--dataset", required=True, choices=DATASET_NAMES)
    p.add_argument("--root", required=True, type=Path)
    p.add_argument("--split", default="val")
    p.add_argument("--pred", required=True, type=Path, help="folder of <video>/<frame>.png predictions (train ids)")
    p.add_argument("--out", required=True, type=Path)
    p.add_argument("--tc-flow", default="auto", choices=("auto",) + FLOW_CHOICES,
                   help="flow for TC: auto = dataset ground truth where present (videos/info.py), else none")
    p.add_argument("--flow-model", help="--tc-flow learned: 'package.module:factory' building the flow network")
    p.add_argument("--flow-checkpoint", type=Path, help="--tc-flow learned: local state-dict file")
    p.add_argument("--tc-videos", type=int, default=None,
                   help="TC on the first N videos only (the papers: first 100 VSPW val videos); default all")
    p.add_argument("--vc-min-frames", type=int, default=DEFAULT_MIN_FRAMES,
                   help="videos with fewer labelled frames are left out of mVC (default 17: CFFM skips N <= 16; "
                        "not used by --vc-convention official)")
    p.add_argument("--vc-convention", default="cffm", choices=tuple(VC_CONVENTIONS),
                   help="cffm: remapped ground truth, N >= --vc-min-frames for every K (the papers' CFFM "
                        "scripts); official: the VSPW_code rule, raw ground truth and N > K")
    p.add_argument("--vc-windows", type=int, nargs="+", default=list(DEFAULT_WINDOW_LENGTHS),
                   help="window lengths K for mVC_K (default 8 16)")
    p.add_argument("--warn-on-bad-input", action="store_true",
                   help="count missing/mis-sized/out-of-range files as warnings instead of stopping")
    p.add_argument("--progress", action=argparse.BooleanOptionalAction, default=None,
                   help="progress bar over videos (default: only on a terminal)")
    return p


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    from videos.datasets import VideoDataset, open_dataset

    if not args.pred.is_dir():
        raise InputError(f"{args.pred}: prediction folder not found")
    check_output_file(args.out, "metrics file")   # a directory, or under a file: one line before any frame is read
    if args.tc_videos is not None and args.tc_videos < 0:
        raise InputError(f"--tc-videos must be >= 0, got {args.tc_videos}")
    if any(n < 2 or n > 256 for n in args.vc_windows):
        raise InputError(f"--vc-windows must be in 2..256, got {args.vc_windows}")
    ds = open_dataset(args.dataset, args.root, args.split)
    flow_name = resolve_flow_name(args.tc_flow, args.dataset)
    if flow_name == "gt" and type(ds).read_flow is VideoDataset.read_flow:
        # say so before reading a single frame, not at the first pair
        raise InputError(f"--tc-flow gt: {args.dataset} has no ground-truth flow (use farneback, dis or none)")
    flow_source = make_flow_source(flow_name, model=args.flow_model, checkpoint=args.flow_checkpoint)
    result = evaluate(ds, args.pred, flow_source=flow_source, tc_videos=args.tc_videos,
                      window_lengths=args.vc_windows, vc_min_frames=args.vc_min_frames,
                      vc_convention=args.vc_convention, warn_on_bad_input=args.warn_on_bad_input, progress=args.progress)
    result = {**result, "root": str(args.root), "pred": str(args.pred),
              "provenance": provenance(config={k: str(v) for k, v in vars(args).items()}, device="cpu")}
    write_json(args.out, result)
    print(f"{args.out}: mIoU {_pct(result['miou'])}  WIoU {_pct(result['wiou'])}  "
          + "  ".join(f"mVC{n} {_pct(result[f'mvc{n}'])}" for n in sorted(set(args.vc_windows)))
          + f"  TC {_pct(result['tc'])} ({result['tc_flow']}, {result['tc_pairs']} pairs of "
            f"{result['tc_frames']} frames)  frames {result['num_frames']}"
          + (f"  warnings {sum(result['warnings'].values())}" if any(result["warnings"].values()) else ""))
    return 0


def _pct(x) -> str:
    return "n/a" if x is None else f"{100 * x:.2f}"


if __name__ == "__main__":
    run_cli(main)
