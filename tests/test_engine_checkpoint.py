"""engine.checkpoint: RNG states round-trip, atomic writes leave the old file on failure, clear errors."""
from __future__ import annotations

import random

import numpy as np
import pytest
import torch

from common.cli import InputError
from engine import checkpoint as ckpt_io


def test_rng_states_round_trip():
    random.seed(1), np.random.seed(1), torch.manual_seed(1)
    states = ckpt_io.rng_states()
    a = (random.random(), np.random.rand(), torch.rand(1).item())
    random.seed(9), np.random.seed(9), torch.manual_seed(9)
    ckpt_io.set_rng_states(states)
    assert (random.random(), np.random.rand(), torch.rand(1).item()) == a


def test_save_is_atomic_old_file_survives_a_failed_write(tmp_path, monkeypatch):
    path = tmp_path / "checkpoint.pt"
    ckpt_io.save_atomic({"format": ckpt_io.CHECKPOINT_FORMAT, "iteration": 1}, path)

    def broken_save(obj, f):   # f: the open temporary file
        f.write(b"half")
        raise OSError("disk full")

    monkeypatch.setattr(torch, "save", broken_save)
    with pytest.raises(OSError):
        ckpt_io.save_atomic({"format": ckpt_io.CHECKPOINT_FORMAT, "iteration": 2}, path)
    monkeypatch.undo()
    assert ckpt_io.load_checkpoint(path)["iteration"] == 1
    assert [p.name for p in tmp_path.iterdir()] == ["checkpoint.pt"]   # no temporary left behind


def test_torn_or_foreign_files_are_named(tmp_path):
    torn = tmp_path / "checkpoint.pt"
    torn.write_bytes(b"\x80\x02garbage")
    with pytest.raises(InputError, match="checkpoint.pt: cannot read checkpoint"):
        ckpt_io.load_checkpoint(torn)
    foreign = tmp_path / "model.pt"
    torch.save({"weights": 1}, foreign)
    with pytest.raises(InputError, match="not a vss-bench model file"):
        ckpt_io.load_model_file(foreign)
    with pytest.raises(InputError, match="not found"):
        ckpt_io.load_checkpoint(tmp_path / "missing.pt")


def test_unwrap_returns_inner_module():
    inner = torch.nn.Linear(2, 2)

    class Wrapper(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.module = inner

    assert ckpt_io.unwrap(Wrapper()) is inner and ckpt_io.unwrap(inner) is inner
