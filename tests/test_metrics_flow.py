"""Flow sources for TC: ground truth, OpenCV (Farneback, DIS), a learned module from a local checkpoint."""
import types

import cv2
import numpy as np
import pytest
import torch

from common.cli import InputError
from metrics.flow import GroundTruthFlow, make_flow_source, register_flow_source
from metrics.temporal import TemporalConsistency


class FakeDataset:
    """Two textured frames, the second the first moved right by 2 and down by 1."""
    name = "fake"

    def __init__(self, with_flow=True):
        rng = np.random.default_rng(0)
        texture = cv2.GaussianBlur(rng.integers(0, 256, (72, 96)).astype(np.float32), (0, 0), 2.0)
        texture = cv2.normalize(texture, None, 0, 255, cv2.NORM_MINMAX).astype(np.uint8)
        moved = np.roll(texture, shift=(1, 2), axis=(0, 1))
        self.images = {"0": np.repeat(texture[..., None], 3, -1), "1": np.repeat(moved[..., None], 3, -1)}
        self.with_flow = with_flow
        self.reads = 0

    def read_image(self, video, frame):
        self.reads += 1
        return self.images[frame]

    def read_flow(self, video, frame):
        if not self.with_flow:
            return None
        flow = np.zeros((72, 96, 2), np.float32)
        flow[..., 0], flow[..., 1] = 2.0, 1.0
        return flow, np.ones((72, 96), bool)


VIDEO = types.SimpleNamespace(name="v")


def test_ground_truth_flow_and_missing_flow():
    flow, valid = make_flow_source("gt")(FakeDataset(), VIDEO, "0", "1")
    assert flow.dtype == np.float32 and flow.shape == (72, 96, 2) and valid.all()
    with pytest.raises(InputError, match="no ground-truth flow"):
        GroundTruthFlow()(FakeDataset(with_flow=False), VIDEO, "0", "1")


@pytest.mark.parametrize("method", ["farneback", "dis"])
def test_opencv_flow_is_forward_t_to_t_plus_1(method):
    ds = FakeDataset()
    source = make_flow_source(method)
    assert source.name == f"opencv-{method}"
    flow, valid = source(ds, VIDEO, "0", "1")
    inner = flow[10:-10, 10:-10]
    assert valid.all()
    assert np.median(inner[..., 0]) == pytest.approx(2.0, abs=0.25)
    assert np.median(inner[..., 1]) == pytest.approx(1.0, abs=0.25)
    # frames are cached across overlapping pairs: the second call only reads the new frame
    reads = ds.reads
    source(ds, VIDEO, "1", "0")
    assert ds.reads == reads + 1


class ConstantFlow(torch.nn.Module):
    """A stand-in learned estimator: one learnable (dx, dy) everywhere."""

    def __init__(self):
        super().__init__()
        self.shift = torch.nn.Parameter(torch.zeros(2))

    def forward(self, first, second):
        n, _, h, w = first.shape
        flow = self.shift.view(1, 2, 1, 1).expand(n, 2, h, w)
        return [flow * 0, flow]   # RAFT-style: a list of iterations, the last is the answer


def test_learned_flow_from_local_checkpoint(tmp_path):
    model = ConstantFlow()
    with torch.no_grad():
        model.shift.copy_(torch.tensor([2.0, 1.0]))
    ckpt = tmp_path / "flow.pt"
    torch.save({"state_dict": {f"module.{k}": v for k, v in model.state_dict().items()}}, ckpt)
    source = make_flow_source("learned", model="tests.test_metrics_flow:ConstantFlow", checkpoint=ckpt,
                              device="cpu")
    assert source.name == "learned:tests.test_metrics_flow:ConstantFlow@flow.pt"
    ds = FakeDataset()
    flow, valid = source(ds, VIDEO, "0", "1")
    assert np.allclose(flow[..., 0], 2.0) and np.allclose(flow[..., 1], 1.0) and valid.all()
    # used for TC, a prediction moving with the content is fully consistent
    pred_t = (ds.images["0"][..., 0] // 64).astype(np.uint8)
    pred_next = (ds.images["1"][..., 0] // 64).astype(np.uint8)
    tc = TemporalConsistency(4)
    tc.update(pred_t, pred_next, flow, valid)
    assert tc.scores()["tc"] == 1.0


def test_flow_source_errors_and_registry(tmp_path):
    assert make_flow_source("none") is None
    with pytest.raises(InputError, match="unknown flow source"):
        make_flow_source("raft")
    with pytest.raises(InputError, match="--flow-model"):
        make_flow_source("learned")
    with pytest.raises(InputError, match="cannot import"):
        make_flow_source("learned", model="no_such_module:Net", checkpoint=None)
    with pytest.raises(InputError, match="not found"):
        make_flow_source("learned", model="tests.test_metrics_flow:ConstantFlow", checkpoint=tmp_path / "x.pt")

    class Zero:
        name = "zero"

        def __call__(self, ds, video, frame, next_frame):
            return np.zeros((72, 96, 2), np.float32), np.ones((72, 96), bool)

    register_flow_source("zero-test", lambda **kw: Zero())
    assert make_flow_source("zero-test").name == "zero"
