"""engine.schedule: poly LR with linear warm-up (hand-computed values), parameter groups."""
from __future__ import annotations

import warnings

import pytest
import torch
import torch.nn as nn

from engine.schedule import PolyWarmup, backbone_parameter_names, make_scheduler, param_groups


def test_poly_without_warmup_hand_values():
    f = PolyWarmup(iters=10, warmup_iters=0, power=1.0)
    assert [f(i) for i in (0, 1, 5, 9, 10)] == pytest.approx([1.0, 0.9, 0.5, 0.1, 0.0])
    g = PolyWarmup(iters=10, warmup_iters=0, power=0.9)
    assert g(5) == pytest.approx(0.5 ** 0.9)
    h = PolyWarmup(iters=10, power=1.0, min_lr_ratio=0.1)
    assert h(5) == pytest.approx(0.5 * 0.9 + 0.1) and h(10) == pytest.approx(0.1)


def test_linear_warmup_hand_values():
    # mmseg: factor = poly * (1 - (1 - it / warmup) * (1 - ratio))
    f = PolyWarmup(iters=100, warmup_iters=10, warmup_ratio=1e-6, power=1.0)
    assert f(0) == pytest.approx(1e-6)
    assert f(5) == pytest.approx(0.95 * (1 - 0.5 * (1 - 1e-6)))
    assert f(10) == pytest.approx(0.9)          # warm-up over: plain poly
    assert f(50) == pytest.approx(0.5)
    # warm-up longer than the run is clamped to the run
    assert PolyWarmup(iters=4, warmup_iters=1500, warmup_ratio=0.0).warmup_iters == 4


class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.backbone = nn.Sequential(nn.Conv2d(3, 4, 3), nn.BatchNorm2d(4))
        self.decode_head = nn.Conv2d(4, 2, 1)


def test_param_groups_split_backbone_head_and_decay():
    net = Net()
    groups = {g["name"]: g for g in param_groups(net, lr=0.01, head_lr_mult=10.0, weight_decay=0.05)}
    assert set(groups) == {"backbone", "backbone_no_decay", "head", "head_no_decay"}
    assert [p.shape for p in groups["backbone"]["params"]] == [torch.Size([4, 3, 3, 3])]
    assert len(groups["backbone_no_decay"]["params"]) == 3      # conv bias, BN weight, BN bias
    assert groups["head"]["lr"] == pytest.approx(0.1) and groups["backbone"]["lr"] == pytest.approx(0.01)
    assert groups["head_no_decay"]["weight_decay"] == 0.0 and groups["head"]["weight_decay"] == 0.05
    n = sum(len(g["params"]) for g in groups.values())
    assert n == len(list(net.parameters()))
    assert backbone_parameter_names(net) == {"backbone.0.weight", "backbone.0.bias", "backbone.1.weight",
                                             "backbone.1.bias"}


def test_no_backbone_one_lr_with_warning():
    net = nn.Sequential(nn.Conv2d(3, 2, 1))
    with warnings.catch_warnings(record=True) as w:
        warnings.simplefilter("always")
        groups = param_groups(net, lr=0.01, head_lr_mult=10.0, weight_decay=0.0)
    assert any("no `backbone`" in str(x.message) for x in w)
    assert {g["lr"] for g in groups} == {0.01}


def test_scheduler_drives_every_group():
    net = Net()
    opt = torch.optim.AdamW(param_groups(net, lr=0.01, head_lr_mult=10.0, weight_decay=0.0), lr=0.01)
    sched = make_scheduler(opt, iters=4, warmup_iters=0, warmup_ratio=0.0, power=1.0, min_lr=0.0, lr=0.01)
    seen = []
    for _ in range(4):
        seen.append({g["name"]: g["lr"] for g in opt.param_groups})
        opt.step()
        sched.step()
    assert [s["backbone"] for s in seen] == pytest.approx([0.01, 0.0075, 0.005, 0.0025])
    assert [s["head"] for s in seen] == pytest.approx([0.1, 0.075, 0.05, 0.025])
    # the schedule state round-trips through a state dict
    state = sched.state_dict()
    opt2 = torch.optim.AdamW(param_groups(Net(), lr=0.01, head_lr_mult=10.0, weight_decay=0.0), lr=0.01)
    sched2 = make_scheduler(opt2, iters=4, warmup_iters=0, warmup_ratio=0.0, power=1.0, min_lr=0.0, lr=0.01)
    sched2.load_state_dict(state)
    assert sched2.last_epoch == 4
