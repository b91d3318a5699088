"""Videos: the synthetic generator, dataset readers, clip sampling, augmentation, integrity check.

datasets.py (open_dataset, Video, the shared reader base), vspw.py (VSPW + synthetic), cityscapes.py,
camvid.py, clips.py (clip_frame_ids, ClipDataset), augment.py, synthetic.py, check.py, info.py.
Expected trees and the design of the synthetic set: docs/datasets.md.
"""
