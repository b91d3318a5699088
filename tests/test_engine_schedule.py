"""engine.schedule: poly LR with linear warm-up (hand-computed values), parameter groups."""
from __future__ import annotations

import warnings

import pytest
import torch
import torch.nn as nn

from engine.schedule import (PolyWarmup, backbone_parameter_names, make_scheduler, param_groups,
                             parameter_groups_by_name)


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
    assert any("declares no lr_groups() and has no `backbone`" in str(x.message) for x in w)
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


class Declared(nn.Module):
    """A model declaring its groups: an encoder with an offset layer inside, a head with another."""

    def __init__(self):
        super().__init__()
        self.encoder = nn.Sequential(nn.Conv2d(3, 4, 3), nn.Conv2d(4, 18, 1))   # [1] emits offsets
        self.head = nn.Sequential(nn.Conv2d(4, 18, 1), nn.Conv2d(4, 2, 1))       # [0] emits offsets

    def lr_groups(self):
        return {"backbone": [self.encoder], "offset": [self.encoder[1], self.head[0]]}


def test_model_declared_groups_offsets_at_a_tenth_of_the_base_lr():
    groups = {g["name"]: g for g in param_groups(Declared(), lr=0.01, head_lr_mult=10.0, weight_decay=0.05)}
    assert set(groups) == {"backbone", "backbone_no_decay", "head", "head_no_decay", "offset", "offset_no_decay"}
    assert groups["offset"]["lr"] == pytest.approx(0.001) and groups["offset"]["lr_mult"] == pytest.approx(0.1)
    assert groups["head"]["lr"] == pytest.approx(0.1) and groups["backbone"]["lr"] == pytest.approx(0.01)
    net = Declared()
    by_name = parameter_groups_by_name(net)
    assert by_name["encoder.0.weight"] == "backbone" and by_name["encoder.1.weight"] == "offset"  # offset wins
    assert by_name["head.0.bias"] == "offset" and by_name["head.1.weight"] == "head"
    custom = {g["name"]: g for g in param_groups(net, lr=0.01, head_lr_mult=10.0, weight_decay=0.0,
                                                 offset_lr_mult=0.5)}
    assert custom["offset"]["lr"] == pytest.approx(0.005)


def test_unknown_declared_group_is_an_error():
    class Bad(nn.Module):
        def __init__(self):
            super().__init__()
            self.x = nn.Linear(2, 2)

        def lr_groups(self):
            return {"offsets": [self.x]}

    with pytest.raises(ValueError, match="unknown group.*offsets"):
        param_groups(Bad(), lr=0.01, head_lr_mult=10.0, weight_decay=0.0)


def test_every_registered_family_declares_its_groups():
    """SegFormer / SD-CPC / MSAF: encoder at the base LR, every offset layer low, nothing left undeclared by
    accident (the head is what remains)."""
    from models import build_model

    for variant, backbone, n_offsets in (("segformer", "mit_b0", 0), ("sdcpc", "mit_b0", 3), ("msaf", "resnet18", 2)):
        with torch.device("meta"):
            model = build_model(variant, backbone, 3)
        by_name = parameter_groups_by_name(model)
        assert {g for n, g in by_name.items() if n.startswith(("backbone.", "features.body."))} == {"backbone"}
        assert sum(1 for n, g in by_name.items() if g == "offset" and n.endswith("weight")) == n_offsets
