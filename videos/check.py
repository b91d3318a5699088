"""Integrity check of a dataset tree, to run before hours of training.

    python -m videos.check --dataset D --root DIR [--split S ...] [--headers-only] [--jobs N] [--stamp FILE]

Finds: a missing val split (every experiment scores it; other splits are checked where present), empty, non-UTF-8
or repeated lines in split files, split files naming absent videos, missing / zero-byte / unreadable frames
and masks, a frame path that is a directory, a frame saved under two suffixes, file contents that are not
what the suffix says (JPEG bytes in a .png), frames of one video that differ in size, masks whose size
differs from their frame, label values outside the dataset's range, frames without a mask in a densely
annotated split, missing or malformed ground-truth flow and gaps in frame numbering (synthetic). Exit 0 and
one summary line when clean; otherwise one line per problem, each naming the file, and exit 1. Gaps in the
numbering of a real dataset's frames may be genuine: they are printed as ``warning:`` lines and counted in
the summary, and do not fail the check. D is a row of the dataset table (videos/info.py), which also
says how a layout marks its splits.

``--stamp FILE`` writes, when the tree is clean, what identifies the data checked (dataset, root, counts, a
hash of the set's own description where the reader has one, e.g. a generated set's meta.json): the pipeline
hands it to engine.train (``--data-stamp``), so a checkpoint of a run on other data is never resumed.

It opens each split with the same reader the pipeline uses (videos.datasets.open_dataset, strict=False,
so listing problems are collected instead of raised) and reads every file through it: the messages are
the ones a run would stop with. ``--headers-only`` reads image headers instead of decoding every frame
(much faster on VSPW; still finds missing, zero-byte and foreign files, not truncated JPEG bodies).
"""
from __future__ import annotations

import argparse
import hashlib
import json
from pathlib import Path

from common.cli import InputError, run_cli
from common.io import write_json
from videos.datasets import SPLITS, image_size, open_dataset, read_index_png
from videos.info import DATASET_NAMES, DATASETS


REQUIRED_SPLITS = ("val",)   # every experiment scores val: checked (and reported missing) by default


def present_splits(name: str, root: Path) -> list[str]:
    """The splits a tree provides, by the layout's own marker (videos/info.py, ``split_marker``)."""
    return DATASETS[name].present_splits(root, SPLITS)


def default_splits(name: str, root: Path) -> list[str]:
    """val always (a missing one is a problem), the other splits where the tree has them."""
    return [s for s in SPLITS if s in REQUIRED_SPLITS or s in present_splits(name, root)]


_MAGIC = {".png": (b"\x89PNG\r\n\x1a\n", "PNG"), ".jpg": (b"\xff\xd8\xff", "JPEG"), ".jpeg": (b"\xff\xd8\xff", "JPEG")}


def content_problem(path: Path) -> str | None:
    """A file whose bytes are not the format its suffix names (decoders sniff and read it anyway)."""
    want = _MAGIC.get(path.suffix.lower())
    if want is None:
        return None
    try:
        with open(path, "rb") as f:
            head = f.read(8)
    except OSError:
        return None
    if head.startswith(want[0]):
        return None
    found = next((fmt for magic, fmt in _MAGIC.values() if head.startswith(magic)), "other")
    return f"{path}: holds {found} data but the name says {want[1]}"


def check_video(ds, v, headers_only: bool = False) -> tuple[list[str], list[Path], list[Path]]:
    """Read every file of one video through its reader: (problems, frame files, label files) checked."""
    problems: list[str] = []
    broken: set[Path] = set()

    def attempt(fn, *args, path: Path | None = None):
        try:
            return fn(*args)
        except InputError as e:
            problems.append(str(e))
            if path is not None:
                broken.add(path)
            return None

    sizes: dict[str, tuple[int, int]] = {}
    for f in v.frames:
        path = v.image_files[f]
        got = attempt(image_size if headers_only else (lambda p: ds.read_image(v, f)), path, path=path)
        if got is not None:
            sizes[f] = tuple(got) if headers_only else (got.shape[1], got.shape[0])
            wrong = content_problem(path)
            if wrong:
                problems.append(wrong)
    if len(set(sizes.values())) > 1:   # clips stack a video's frames: one size per video
        first = next(iter(sizes))
        for f, size in sizes.items():
            if size != sizes[first]:
                problems.append(f"{v.image_files[f]}: frame is {size[0]}x{size[1]} but frame {first} of the same "
                                f"video is {sizes[first][0]}x{sizes[first][1]}")
    for f in v.labelled:
        path = v.label_files[f]
        if v.image_files[f] in broken:      # its frame is reported already: check the mask alone
            attempt(lambda p: ds.remap_video(v, read_index_png(p), p), path)
        else:
            attempt(ds.read_label, v, f)
    if DATASETS[ds.name].gt_flow:
        for f in v.frames[:-1]:
            if v.image_files[f] not in broken:
                attempt(ds.read_flow, v, f)
    return problems, [v.image_files[f] for f in v.frames], [v.label_files[f] for f in v.labelled]


def _check_video_job(args):
    return check_video(*args)


def check_dataset(name: str, root, splits: list[str] | None = None, headers_only: bool = False,
                  jobs: int = 1, **options) -> tuple[list[str], dict]:
    """(problems, summary). Problems are one-line messages naming a file, in a fixed order (split, video,
    file) whatever ``jobs`` is; a file shared by several snippets (CamVid) is reported once."""
    root = Path(root)
    if name not in DATASET_NAMES:
        raise InputError(f"unknown dataset '{name}' (known: {', '.join(DATASET_NAMES)})")
    if not root.is_dir():
        raise InputError(f"{root}: dataset root not found")
    if not splits and not present_splits(name, root):
        return [f"{root}: no split found for the {name} layout (see docs/datasets.md)"], \
            {"splits": [], "videos": 0, "frames": 0, "labels": 0, "warnings": []}
    splits = splits or default_splits(name, root)
    problems: list[str] = []
    warnings: list[str] = []
    summary = {"splits": splits, "videos": 0, "frames": 0, "labels": 0, "warnings": warnings}
    frames: set[Path] = set()
    labels: set[Path] = set()
    pool = None
    if jobs > 1:
        from concurrent.futures import ProcessPoolExecutor
        pool = ProcessPoolExecutor(jobs)
    try:
        for split in splits:
            try:
                ds = open_dataset(name, root, split, strict=False, **options)
            except InputError as e:
                problems.append(str(e))
                continue
            problems.extend(ds.problems)
            warnings.extend(w for w in ds.warnings if w not in warnings)
            summary["videos"] += len(ds.videos)
            if getattr(ds, "meta", None) is not None:   # a set that describes itself (meta.json)
                summary["meta_sha256"] = hashlib.sha256(json.dumps(ds.meta, sort_keys=True).encode()).hexdigest()
            work = [(ds, v, headers_only) for v in ds.videos]
            results = pool.map(_check_video_job, work, chunksize=8) if pool else map(_check_video_job, work)
            for found, frame_files, label_files in results:
                problems.extend(found)
                frames.update(frame_files)
                labels.update(label_files)
    finally:
        if pool is not None:
            pool.shutdown()
    summary["frames"], summary["labels"] = len(frames), len(labels)
    return list(dict.fromkeys(problems)), summary


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m videos.check", description=__doc__.split("\n\n")[0])
    p.add_argument("--dataset", required=True, choices=DATASET_NAMES)
    p.add_argument("--root", required=True, type=Path)
    p.add_argument("--split", action="append", choices=SPLITS,
                   help="split to check (repeatable); default: every split the tree provides")
    p.add_argument("--headers-only", action="store_true", help="read image headers, not whole frames")
    p.add_argument("--jobs", type=int, default=1, help="processes reading files (default 1)")
    p.add_argument("--stamp", type=Path, help="on a clean check, write what identifies the data to this file")
    a = p.parse_args(argv)
    if a.jobs < 1:
        raise InputError(f"--jobs must be at least 1, got {a.jobs}")
    problems, summary = check_dataset(a.dataset, a.root, a.split, a.headers_only, a.jobs)
    for line in problems:
        print(line)
    for line in summary["warnings"]:
        print(f"warning: {line}")
    if problems:
        return 1
    n = len(summary["warnings"])
    noted = f"; {n} warning{'s' if n > 1 else ''}" if n else ""
    if a.stamp:
        write_json(a.stamp, {"dataset": a.dataset, "root": str(a.root), **summary})
    print(f"clean: {a.dataset} at {a.root}: splits {', '.join(summary['splits'])}; {summary['videos']} videos, "
          f"{summary['frames']} frames, {summary['labels']} labelled frames{noted}")
    return 0


if __name__ == "__main__":
    run_cli(main)
