"""The embedded default benchmark: a small synthetic video segmentation set in the VSPW on-disk layout.

    python -m videos.synthetic --out DIR [--train-videos 20 --val-videos 6 --frames 24 --height 64
        --width 64 --classes 8 --seed 0 --annotate dense|sparse --object-scale 1.0]

writes DIR/train.txt, val.txt, meta.json, data/<video>/origin/<frame>.png, data/<video>/mask/<frame>.png
(raw ids: class c is stored as c + 1; 0 = "others", ignored like VSPW's 0), and data/<video>/flow/<frame>.npy
(float32 (H, W, 2) forward flow frame t -> t+1 in pixels (dx, dy), NaN where invalid: the point leaves
the frame or is hidden in t+1). The VSPW reader reads it unchanged (videos.vspw.SyntheticDataset).

What a video holds (docs/datasets.md, "Design of the synthetic set", says why):
- background classes fixed in world coordinates (sky above a wavy horizon, ground below, foliage blobs
  on the horizon), each with its own colour and texture; the camera pans across the world;
- objects of the object classes, each class with its own shape, size range, texture and motion
  statistics, moving rigidly with their own velocity, entering and leaving the frame and occluding each
  other (fixed depth order); sometimes an unlabelled "others" object (raw 0);
- per-frame corruptions of the image only (labels and flow describe the clean scene): cut-out
  occluders, noise bursts, blur, brightness flicker, each hitting random frames and regions.
Motion is rendered at whole-pixel positions (a smooth sub-pixel trajectory, rounded), so the flow is
exact: nearest backward warping of the labels of t+1 reproduces the labels of t on every valid pixel.

Deterministic: the same arguments give the same bytes (each video has its own generator, seeded by
(seed, split, index), so changing the number of train videos leaves the val videos as they were).
"""
from __future__ import annotations

import argparse
import json
import math
import sys
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from common.cli import InputError, run_cli
from common.io import atomic_dir

GENERATOR_VERSION = 1
DEFAULTS = dict(train_videos=20, val_videos=6, frames=24, height=64, width=64, classes=8, seed=0,
                annotate="dense", object_scale=1.0)
SPARSE_PERIOD, SPARSE_INDEX = 30, 19     # Cityscapes: frame 19 of each 30-frame snippet is annotated

# Per-frame corruption schedule (image only). A frame is corrupted with probability P_CORRUPT; each kind
# is then drawn independently with its probability (at least one kind). Strengths are fractions of the
# frame or absolute 0..255 values.
CORRUPTION = dict(
    p_corrupt=0.6,
    cutout=dict(p=0.7, count=(1, 3), size=(0.3, 0.55)),      # occluder rectangles, flat colour or noise
    noise=dict(p=0.35, sigma=(45.0, 90.0), region=0.5),       # gaussian burst; region = P(only a half frame)
    blur=dict(p=0.3, kernel=(5, 9)),                         # box blur kernel at 64 px, odd, scaled
    flicker=dict(p=0.35, gain=((0.3, 0.55), (1.7, 2.3)), offset=30.0),
    sensor_sigma=3.0,                                        # mild noise on every frame
)


@dataclass(frozen=True)
class ClassLook:
    name: str
    colour: tuple[int, int, int]
    texture: str            # smooth | stripes | checker | dots | noise
    period: float           # texture period in pixels at 64 px
    amplitude: float        # texture contrast (0..255 units)
    shape: str = ""         # object classes: ellipse | rect | disc | triangle | diamond | ring | cross
    size: tuple[float, float, float, float] = (0, 0, 0, 0)  # (h_min, h_max, w_min, w_max) fraction of frame
    speed: tuple[float, float] = (0, 0)                      # px/frame at 64 px
    direction: str = "any"  # any | horizontal | none


BACKGROUND_LOOKS = [
    ClassLook("sky", (130, 170, 215), "smooth", 24, 18),
    ClassLook("ground", (125, 110, 90), "noise", 1, 22),
    ClassLook("foliage", (70, 125, 55), "dots", 5, 40),
]
OBJECT_LOOKS = [
    ClassLook("car", (185, 55, 50), "stripes", 6, 30, "rect", (0.14, 0.22, 0.30, 0.45), (0.6, 1.4), "horizontal"),
    ClassLook("person", (175, 75, 60), "noise", 1, 25, "ellipse", (0.30, 0.45, 0.11, 0.17), (0.2, 0.6)),
    ClassLook("ball", (225, 200, 60), "smooth", 8, 20, "disc", (0.14, 0.24, 0, 0), (0.5, 1.2)),
    ClassLook("box", (70, 80, 165), "checker", 4, 35, "rect", (0.17, 0.28, 0.17, 0.28), (0.1, 0.4)),
    ClassLook("sign", (205, 205, 195), "stripes", 3, 45, "triangle", (0.15, 0.25, 0.15, 0.25), (0.0, 0.0), "none"),
]
EXTRA_SHAPES = ("diamond", "ring", "cross", "ellipse", "rect", "disc", "triangle")
TEXTURES = ("smooth", "stripes", "checker", "dots", "noise")
OTHERS_LOOK = ClassLook("others", (128, 128, 128), "checker", 3, 50, "diamond", (0.12, 0.2, 0.12, 0.2), (0.3, 1.0))


def class_looks(num_classes: int) -> tuple[list[ClassLook], int]:
    """Appearance table for K classes (independent of the seed) and the number of background classes."""
    if num_classes < 2:
        raise InputError(f"--classes must be at least 2 (one background, one object class), got {num_classes}")
    n_bg = 3 if num_classes >= 6 else (2 if num_classes >= 4 else 1)
    looks = list(BACKGROUND_LOOKS[:n_bg])
    rng = np.random.default_rng(20240601)   # extra classes: fixed table, same for every --seed
    for i in range(num_classes - n_bg):
        if i < len(OBJECT_LOOKS):
            looks.append(OBJECT_LOOKS[i])
            continue
        h0 = float(rng.uniform(0.12, 0.3))
        looks.append(ClassLook(
            f"object{i + 1}", tuple(int(c) for c in rng.integers(30, 226, 3)), TEXTURES[i % len(TEXTURES)],
            float(rng.uniform(3, 8)), float(rng.uniform(20, 45)), EXTRA_SHAPES[i % len(EXTRA_SHAPES)],
            (h0, h0 * 1.5, h0 * float(rng.uniform(0.6, 1.6)), h0 * 1.5 * float(rng.uniform(0.6, 1.6))),
            (float(rng.uniform(0, 0.4)), float(rng.uniform(0.5, 1.2)))))
    return looks, n_bg


# ---------------------------------------------------------------------------------------------- textures
def texture(look: ClassLook, h: int, w: int, rng: np.random.Generator, scale: float,
            colour: np.ndarray) -> np.ndarray:
    """float32 (h, w, 3): the class's colour modulated by its texture, in the patch's own coordinates."""
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    period = max(2.0, look.period * scale)
    a = look.amplitude
    if look.texture == "smooth":
        coarse = rng.normal(0, 1, (max(2, int(h / period) + 2), max(2, int(w / period) + 2))).astype(np.float32)
        pattern = cv2.resize(coarse, (w, h), interpolation=cv2.INTER_CUBIC) * a / 2
    elif look.texture == "stripes":
        theta = rng.uniform(0, math.pi)
        pattern = a * np.sign(np.sin(2 * math.pi * (xx * math.cos(theta) + yy * math.sin(theta)) / period))
    elif look.texture == "checker":
        pattern = a * (((xx // period) + (yy // period)) % 2 * 2 - 1)
    elif look.texture == "dots":
        oy, ox = rng.uniform(0, period, 2)
        d = np.hypot((yy + oy) % period - period / 2, (xx + ox) % period - period / 2)
        pattern = np.where(d < period / 3, a, -a / 3)
    else:  # noise: fine grain
        pattern = rng.normal(0, a, (h, w)).astype(np.float32)
    pattern = np.asarray(pattern, dtype=np.float32)
    # luminance pattern with a slight colour tint so textures stay class-specific under flicker
    return colour[None, None, :] + pattern[..., None] * np.array([1.0, 0.9, 0.8], dtype=np.float32)


def shape_mask(shape: str, h: int, w: int) -> np.ndarray:
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    cy, cx = (h - 1) / 2, (w - 1) / 2
    ny, nx = (yy - cy) / max(h / 2, 1), (xx - cx) / max(w / 2, 1)
    if shape in ("ellipse", "disc"):
        m = nx ** 2 + ny ** 2 <= 1
    elif shape == "rect":
        m = np.ones((h, w), dtype=bool)
        m[0, 0] = m[0, -1] = m[-1, 0] = m[-1, -1] = False       # rounded corners
    elif shape == "triangle":
        m = np.abs(nx) <= (ny + 1) / 2
    elif shape == "diamond":
        m = np.abs(nx) + np.abs(ny) <= 1
    elif shape == "ring":
        r = nx ** 2 + ny ** 2
        m = (r <= 1) & (r >= 0.3)
    elif shape == "cross":
        m = (np.abs(nx) <= 0.35) | (np.abs(ny) <= 0.35)
    else:
        raise ValueError(shape)
    return np.asarray(m, dtype=bool)


# ---------------------------------------------------------------------------------------------- a video
@dataclass
class SceneObject:
    raw_id: int                     # mask value (class + 1, or 0 for "others")
    mask: np.ndarray                # bool (h, w)
    patch: np.ndarray               # float32 (h, w, 3)
    start: np.ndarray               # world (y, x) of the patch's top-left at t = 0
    velocity: np.ndarray            # (vy, vx) px/frame

    def position(self, t: int) -> tuple[int, int]:
        p = np.rint(self.start + self.velocity * t).astype(int)
        return int(p[0]), int(p[1])


def _camera_positions(rng, frames: int, scale: float) -> np.ndarray:
    """Integer camera (y, x) per frame: a constant sub-pixel pan velocity, rounded."""
    v = np.array([rng.uniform(-0.2, 0.2), rng.uniform(-0.6, 0.6)]) * scale
    cams = np.rint(v[None, :] * np.arange(frames)[:, None]).astype(int)
    cams -= cams.min(axis=0)                                   # world origin at the top-left extreme
    return cams


def _world_background(rng, looks, n_bg, world_hw, scale, jitter):
    """Background labels (raw ids) and image over the whole world canvas."""
    wh, ww = world_hw
    lab = np.full((wh, ww), 2 if n_bg >= 2 else 1, dtype=np.uint8)    # ground (or the only class)
    img = np.zeros((wh, ww, 3), dtype=np.float32)
    if n_bg >= 2:
        xs = np.arange(ww)
        horizon = (wh * rng.uniform(0.3, 0.5) + scale * rng.uniform(2, 6)
                   * np.sin(2 * math.pi * xs / (scale * rng.uniform(30, 60)) + rng.uniform(0, 2 * math.pi)))
        lab[np.arange(wh)[:, None] < horizon[None, :]] = 1                     # sky
        if n_bg >= 3:
            yy, xx = np.mgrid[0:wh, 0:ww]
            for _ in range(int(rng.integers(2, 5))):
                cx = rng.uniform(0, ww)
                cy = float(np.interp(cx, xs, horizon)) + rng.uniform(-3, 2) * scale
                ry, rx = rng.uniform(5, 12) * scale, rng.uniform(6, 16) * scale
                lab[((yy - cy) / ry) ** 2 + ((xx - cx) / rx) ** 2 <= 1] = 3          # foliage
    for c in range(n_bg):
        tex = texture(looks[c], wh, ww, rng, scale, np.array(looks[c].colour, np.float32) + jitter[c])
        img[lab == c + 1] = tex[lab == c + 1]
    return lab, img


def _objects(rng, looks, n_bg, frames, hw, cams, scale, jitter, object_scale=1.0) -> list[SceneObject]:
    h, w = hw
    k = len(looks)
    n = int(rng.integers(3, 7))
    classes = list(rng.integers(n_bg, k, n))
    if rng.random() < 0.3:
        classes.append(-1)                                       # one unlabelled "others" object
    objs = []
    for c in classes:
        look = OTHERS_LOOK if c < 0 else looks[c]
        lo_h, hi_h, lo_w, hi_w = look.size
        oh = min(h, max(3, int(round(rng.uniform(lo_h, hi_h) * h * object_scale))))
        ow = oh if look.shape == "disc" or hi_w == 0 else \
            min(w, max(3, int(round(rng.uniform(lo_w, hi_w) * w * object_scale))))
        speed = rng.uniform(*look.speed) * scale
        if look.direction == "horizontal":
            ang = rng.choice([0.0, math.pi]) + rng.uniform(-0.15, 0.15)
        elif look.direction == "none":
            ang = 0.0
        else:
            ang = rng.uniform(0, 2 * math.pi)
        vel = np.array([math.sin(ang), math.cos(ang)]) * speed
        # place the object so it is in view around a random time; it may enter or leave at the ends
        t_mid = rng.uniform(0, frames - 1)
        cam_mid = cams[min(frames - 1, int(round(t_mid)))]
        in_view = np.array([rng.uniform(-0.3 * oh, h - 0.7 * oh), rng.uniform(-0.3 * ow, w - 0.7 * ow)])
        start = cam_mid + in_view - vel * t_mid
        colour = np.array(look.colour, np.float32) + (jitter[c] if c >= 0 else rng.uniform(-60, 60, 3))
        colour = colour + rng.uniform(-10, 10, 3).astype(np.float32)
        objs.append(SceneObject(0 if c < 0 else int(c) + 1, shape_mask(look.shape, oh, ow),
                                texture(look, oh, ow, rng, scale, colour), start, vel))
    return objs


def _paste(dst: np.ndarray, src: np.ndarray, mask: np.ndarray, y: int, x: int) -> None:
    """dst[y:y+h, x:x+w][mask] = src[mask], clipped to dst."""
    h, w = mask.shape
    H, W = dst.shape[:2]
    y0, x0, y1, x1 = max(y, 0), max(x, 0), min(y + h, H), min(x + w, W)
    if y0 >= y1 or x0 >= x1:
        return
    m = mask[y0 - y:y1 - y, x0 - x:x1 - x]
    region = dst[y0:y1, x0:x1]
    region[m] = src[y0 - y:y1 - y, x0 - x:x1 - x][m]


def render_video(rng: np.random.Generator, frames: int, hw: tuple[int, int], looks, n_bg: int,
                 object_scale: float = 1.0):
    """Clean frames (float32), raw labels (uint8), layer ids (int16; 0 = background, k = object k) and
    per-frame layer offsets in frame coordinates, all of shape (frames, H, W[, 3])."""
    h, w = hw
    scale = min(h, w) / 64.0
    cams = _camera_positions(rng, frames, scale)
    world_hw = (h + int(cams[:, 0].max()) + 1, w + int(cams[:, 1].max()) + 1)
    jitter = rng.uniform(-15, 15, (len(looks), 3)).astype(np.float32)     # this video's colour shift
    bg_lab, bg_img = _world_background(rng, looks, n_bg, world_hw, scale, jitter)
    objs = _objects(rng, looks, n_bg, frames, hw, cams, scale, jitter, object_scale)
    images = np.empty((frames, h, w, 3), np.float32)
    labels = np.empty((frames, h, w), np.uint8)
    layers = np.zeros((frames, h, w), np.int16)
    # offsets[t, k] = screen (y, x) of layer k's origin at t (layer 0 = world background)
    offsets = np.zeros((frames, len(objs) + 1, 2), np.int64)
    for t in range(frames):
        cy, cx = cams[t]
        images[t] = bg_img[cy:cy + h, cx:cx + w]
        labels[t] = bg_lab[cy:cy + h, cx:cx + w]
        offsets[t, 0] = (-cy, -cx)
        for k, ob in enumerate(objs, start=1):
            py, px = ob.position(t)
            sy, sx = py - cy, px - cx
            offsets[t, k] = (sy, sx)
            _paste(images[t], ob.patch, ob.mask, sy, sx)
            _paste(labels[t], np.full(ob.mask.shape, ob.raw_id, np.uint8), ob.mask, sy, sx)
            _paste(layers[t], np.full(ob.mask.shape, k, np.int16), ob.mask, sy, sx)
    return images, labels, layers, offsets


def forward_flow(layers: np.ndarray, offsets: np.ndarray, t: int) -> np.ndarray:
    """float32 (H, W, 2) flow t -> t+1 (dx, dy), NaN where the point leaves the frame or is hidden at t+1.

    Every layer moves rigidly by a whole-pixel shift, so a pixel of layer k moves by
    offsets[t+1, k] - offsets[t, k]; it is visible at t+1 iff the same layer is on top there."""
    lt, lt1 = layers[t], layers[t + 1]
    h, w = lt.shape
    shift = (offsets[t + 1] - offsets[t])[lt.astype(np.int64)]          # (H, W, 2) as (dy, dx)
    yy, xx = np.mgrid[0:h, 0:w]
    ty, tx = yy + shift[..., 0], xx + shift[..., 1]
    inside = (ty >= 0) & (ty < h) & (tx >= 0) & (tx < w)
    same = np.zeros_like(inside)
    same[inside] = lt1[ty[inside], tx[inside]] == lt[inside]
    flow = np.stack([shift[..., 1], shift[..., 0]], axis=-1).astype(np.float32)
    flow[~same] = np.nan
    return flow


def corrupt(rng: np.random.Generator, img: np.ndarray, scale: float, spec=CORRUPTION) -> tuple[np.ndarray, list[str]]:
    """Apply this frame's corruptions (float32 image in/out) and return which kinds were applied."""
    h, w = img.shape[:2]
    out = img + rng.normal(0, spec["sensor_sigma"], img.shape).astype(np.float32)
    applied: list[str] = []
    if rng.random() >= spec["p_corrupt"]:
        return out, applied
    kinds = [k for k in ("cutout", "noise", "blur", "flicker") if rng.random() < spec[k]["p"]]
    if not kinds:
        kinds = [("cutout", "noise", "blur", "flicker")[int(rng.integers(4))]]
    for kind in kinds:
        if kind == "blur":
            k = int(rng.integers(spec["blur"]["kernel"][0] // 2, spec["blur"]["kernel"][1] // 2 + 1))
            k = 2 * max(1, int(round(k * scale))) + 1
            out = cv2.blur(out, (k, k), borderType=cv2.BORDER_REFLECT)
        elif kind == "flicker":
            lo, hi = spec["flicker"]["gain"][int(rng.integers(2))]
            out = out * rng.uniform(lo, hi) + rng.uniform(-1, 1) * spec["flicker"]["offset"]
        elif kind == "noise":
            s = spec["noise"]
            noise = rng.normal(0, rng.uniform(*s["sigma"]), img.shape).astype(np.float32)
            if rng.random() < s["region"]:                  # only one half of the frame
                half = np.zeros((h, w), bool)
                if rng.random() < 0.5:
                    half[: h // 2] = True
                else:
                    half[:, : w // 2] = True
                if rng.random() < 0.5:
                    half = ~half
                noise[~half] = 0
            out = out + noise
        else:  # cutout: rectangles whose content is destroyed (flat colour or uniform noise)
            s = spec["cutout"]
            for _ in range(int(rng.integers(s["count"][0], s["count"][1] + 1))):
                rh, rw = int(rng.uniform(*s["size"]) * h), int(rng.uniform(*s["size"]) * w)
                y0, x0 = int(rng.integers(0, h - rh + 1)), int(rng.integers(0, w - rw + 1))
                if rng.random() < 0.5:
                    out[y0:y0 + rh, x0:x0 + rw] = rng.uniform(0, 255, 3).astype(np.float32)
                else:
                    out[y0:y0 + rh, x0:x0 + rw] = rng.uniform(0, 255, (rh, rw, 3)).astype(np.float32)
        applied.append(kind)
    return out, applied


def annotated_frames(frames: int, annotate: str) -> list[int]:
    if annotate == "dense":
        return list(range(frames))
    idx = [t for t in range(frames) if t % SPARSE_PERIOD == SPARSE_INDEX]
    return idx or [frames - 1]


# ---------------------------------------------------------------------------------------------- writer
def _png(path: Path, arr: np.ndarray) -> None:
    ok, buf = cv2.imencode(".png", arr)
    if not ok:
        raise OSError(f"{path}: PNG encoding failed")
    path.write_bytes(buf.tobytes())


def write_video(root: Path, name: str, rng: np.random.Generator, frames: int, hw, looks, n_bg, annotate,
                object_scale: float = 1.0) -> dict:
    images, labels, layers, offsets = render_video(rng, frames, hw, looks, n_bg, object_scale)
    scale = min(hw) / 64.0
    base = root / "data" / name
    for sub in ("origin", "mask", "flow"):
        (base / sub).mkdir(parents=True)
    labelled = set(annotated_frames(frames, annotate))
    corrupted = {}
    for t in range(frames):
        fid = f"{t:05d}"
        img, kinds = corrupt(rng, images[t], scale)
        if kinds:
            corrupted[fid] = kinds
        _png(base / "origin" / f"{fid}.png", cv2.cvtColor(np.clip(np.rint(img), 0, 255).astype(np.uint8),
                                                          cv2.COLOR_RGB2BGR))
        if t in labelled:
            _png(base / "mask" / f"{fid}.png", labels[t])
        if t + 1 < frames:
            np.save(base / "flow" / f"{fid}.npy", forward_flow(layers, offsets, t), allow_pickle=False)
    return corrupted


def generate(out: str | Path, train_videos: int = DEFAULTS["train_videos"], val_videos: int = DEFAULTS["val_videos"],
             frames: int = DEFAULTS["frames"], height: int = DEFAULTS["height"], width: int = DEFAULTS["width"],
             classes: int = DEFAULTS["classes"], seed: int = DEFAULTS["seed"],
             annotate: str = DEFAULTS["annotate"], object_scale: float = DEFAULTS["object_scale"]) -> Path:
    """Write the set to ``out`` (replaced whole, atomically). Returns the path."""
    if height < 16 or width < 16:
        raise InputError(f"--height/--width must be at least 16, got {height}x{width}")
    if frames < 2:
        raise InputError(f"--frames must be at least 2, got {frames}")
    if train_videos < 1 or val_videos < 0:
        raise InputError("--train-videos must be at least 1 and --val-videos at least 0")
    if not 2 <= classes <= 254:
        raise InputError(f"--classes must be in 2..254, got {classes}")
    if annotate not in ("dense", "sparse"):
        raise InputError(f"--annotate must be dense or sparse, got {annotate}")
    if not 0.25 <= object_scale <= 4:
        raise InputError(f"--object-scale must be in 0.25..4, got {object_scale}")
    out = Path(out)
    if out.exists() and (not out.is_dir() or (any(out.iterdir()) and not (out / "meta.json").is_file())):
        raise InputError(f"{out}: exists and is not a synthetic set; refusing to replace it")
    looks, n_bg = class_looks(classes)
    settings = dict(train_videos=train_videos, val_videos=val_videos, frames=frames, height=height, width=width,
                    classes=classes, seed=seed, annotate=annotate, object_scale=object_scale)
    with atomic_dir(out) as tmp:
        corrupted = {}
        for split_id, (split, n) in enumerate((("train", train_videos), ("val", val_videos))):
            names = [f"{split}_{i:03d}" for i in range(n)]
            for i, name in enumerate(names):
                rng = np.random.default_rng([seed, split_id, i])
                corrupted[name] = write_video(tmp, name, rng, frames, (height, width), looks, n_bg, annotate,
                                              object_scale)
            (tmp / f"{split}.txt").write_text("".join(f"{v}\n" for v in names))
        meta = {
            "format": "vss-bench synthetic video segmentation set (VSPW layout)",
            "generator_version": GENERATOR_VERSION,
            "num_classes": classes,
            "class_names": [lk.name for lk in looks],
            "background_classes": [lk.name for lk in looks[:n_bg]],
            "mask_values": "train id + 1; 0 = others (ignored), 255 = void (ignored)",
            "annotate": annotate,
            "flow": "data/<video>/flow/<frame>.npy: float32 (H, W, 2) forward flow frame -> next frame in "
                    "pixels (dx, dy); NaN where the point leaves the frame or is occluded in the next frame",
            "settings": settings,
            "corruption_schedule": CORRUPTION,
            "corrupted_frames": corrupted,
        }
        (tmp / "meta.json").write_text(json.dumps(meta, indent=1) + "\n")
    return out


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m videos.synthetic", description=__doc__.split("\n\n")[0])
    p.add_argument("--out", required=True, help="output folder (replaced whole)")
    p.add_argument("--train-videos", type=int, default=DEFAULTS["train_videos"])
    p.add_argument("--val-videos", type=int, default=DEFAULTS["val_videos"])
    p.add_argument("--frames", type=int, default=DEFAULTS["frames"], help="frames per video")
    p.add_argument("--height", type=int, default=DEFAULTS["height"])
    p.add_argument("--width", type=int, default=DEFAULTS["width"])
    p.add_argument("--classes", type=int, default=DEFAULTS["classes"])
    p.add_argument("--seed", type=int, default=DEFAULTS["seed"])
    p.add_argument("--annotate", choices=("dense", "sparse"), default=DEFAULTS["annotate"])
    p.add_argument("--object-scale", type=float, default=DEFAULTS["object_scale"],
                   help="multiplies every object's size (1.0: the class table's sizes, 9-29 px at 64 px, i.e. "
                        "1-4 cells of a 1/8-stride output)")
    a = p.parse_args(argv)
    out = generate(a.out, a.train_videos, a.val_videos, a.frames, a.height, a.width, a.classes, a.seed, a.annotate,
                   a.object_scale)
    if a.frames <= 16:
        print(f"note: mVC skips videos of 16 frames or fewer by default; these have {a.frames}", file=sys.stderr)
    print(f"wrote {out}: {a.train_videos} train + {a.val_videos} val videos of {a.frames} frames, "
          f"{a.height}x{a.width}, {a.classes} classes")
    return 0


if __name__ == "__main__":
    run_cli(main)
