"""Validation during training: the val-split mIoU of a model, predicted as engine.infer predicts.

    validator = Validator("synthetic", root, clip_offsets=(-6, -3, 0), device=device)
    validator(model)                       # {"val_miou": 0.41, "val_s": 3.2}

engine.train calls the validator every ``validate_every`` iterations (engine/config.py) and logs its mIoU
in train_log.csv (column ``val_miou``, a fraction, on the validated iterations), so the curve survives a
resume like the losses do; engine/convergence.py judges that curve. The validator predicts exactly as
engine.infer does (the clip each variant reads, the dataset's test-time resize, logits resized to the label
and argmaxed) and scores the confusion matrix of metrics.segmentation in the dataset's mIoU convention, so
its point at the last iteration equals the mIoU engine.validate writes for the final model.
Models with the streaming hooks (``extract``/``decode``, models/outputs.py) are run frame by frame: each
frame of a video goes through the backbone once and every clip that reads it reuses its features
(the same logits as the clip forward, a third of the backbone work for a three-frame clip).
"""
from __future__ import annotations

import time
from typing import Sequence

CACHE_BYTES = 256 << 20  # a split whose test clips fit is decoded once per run, not once per validation


class Validator:
    """mIoU of a model on one split, predicting as engine.infer does (per-class IoU: engine.validate)."""

    def __init__(self, dataset: str, root, clip_offsets: Sequence[int], device, split: str = "val",
                 batch: int | None = None, test_scale: str | None = None):
        from engine.infer import test_resize_for
        from videos.clips import ClipDataset
        from videos.datasets import open_dataset
        from videos.info import dataset_info

        self.ds = open_dataset(dataset, root, split)
        scale, divisor = test_resize_for(dataset, test_scale)
        self.clips = ClipDataset(self.ds, clip_offsets, train=False, test_scale=scale, size_divisor=divisor)
        self.convention = dataset_info(dataset).miou_convention
        self.device, self.batch = device, batch
        self._cached: list | None = None

    def __call__(self, model) -> dict[str, float]:
        import torch

        from metrics.segmentation import MIOU_CONVENTIONS, ConfusionMatrix

        start = time.perf_counter()
        confusion = ConfusionMatrix(self.ds.num_classes, self.ds.ignore_index)
        was_training = model.training
        model.eval()
        try:
            with torch.no_grad():
                for ids, labels in self._predictions(model):
                    for pred, label in zip(ids, labels):
                        confusion.update(label.numpy(), pred.to("cpu", torch.uint8).numpy())
        finally:
            model.train(was_training)
        field, _ = MIOU_CONVENTIONS[self.convention]   # the dataset's mIoU, as metrics.evaluate writes it
        return {"val_miou": float(getattr(confusion.scores(), field)), "val_s": time.perf_counter() - start}

    def _items(self):
        """(index, clip, label) in test order; kept in memory after the first pass when they fit."""
        if self._cached is not None:
            yield from self._cached
            return
        keep: list | None = []
        for i in range(len(self.clips)):
            clip, label = self.clips[i]
            if keep is not None:
                keep.append((i, clip, label))
                if len(keep) == 1 and (clip.nbytes + label.nbytes) * len(self.clips) > CACHE_BYTES:
                    keep = None
            yield i, clip, label
        self._cached = keep

    def _batches(self):
        """Consecutive test items of one frame size, up to ``batch`` (engine.infer's automatic size)."""
        from engine.infer import auto_batch

        pending = []
        for i, clip, label in self._items():
            limit = self.batch or auto_batch(*clip.shape[-2:])
            if pending and (len(pending) >= limit or pending[0][1].shape != clip.shape
                            or pending[0][2].shape != label.shape):
                yield pending
                pending = []
            pending.append((i, clip, label))
        if pending:
            yield pending

    def _predictions(self, model):
        """(predicted ids (B, h, w), labels) per batch."""
        import torch

        from models.outputs import StreamingPredictor

        stream = StreamingPredictor(model, self.device, self.clips.num_frames)
        for batch in self._batches():
            labels = [label for _, _, label in batch]
            keys = [(self.clips.item(i)[0].name, list(self.clips.frame_ids(i))) for i, _, _ in batch]
            yield stream(torch.stack([clip for _, clip, _ in batch]), keys, tuple(labels[0].shape[-2:])), labels
