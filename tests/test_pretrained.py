"""models.pretrained: every weight layout researchers have, loaded strictly into every backbone family.

The key names and shapes of the foreign layouts (tests/data/weight_layouts.json) were written by the source
implementations themselves (transformers' save_pretrained, torchvision, NVlabs' MiT, mmseg's mit2mmseg
converter; the file says which versions). Each test writes a file in that exact layout with random values,
loads it and checks that every tensor landed where the layout says. That the loaded backbones then compute
the source implementation's features was checked against the real code (docs/weights.md).
"""
from __future__ import annotations

import json
import pickle
from pathlib import Path

import pytest
import torch

from common.cli import InputError
from models import build_model
from models.backbones import build_cnn_backbone
from models.backbones.mit import build_mit
from models.pretrained import (describe, load_pretrained, load_state, read_safetensors, read_state,
                               resolve_pretrained)

LAYOUTS = json.loads((Path(__file__).parent / "data" / "weight_layouts.json").read_text())


def layout_state(name: str) -> dict[str, torch.Tensor]:
    """The layout's tensors, tensor i filled with the value i + 1 (cheap, and tells every tensor apart)."""
    return {k: torch.full(shape, float(i + 1)) for i, (k, shape) in enumerate(LAYOUTS[name])}


def uninitialised(builder, *args, **kwargs) -> torch.nn.Module:
    """A module whose values do not matter to the test (built on meta, then given memory: no init cost)."""
    with torch.device("meta"):
        module = builder(*args, **kwargs)
    return module.to_empty(device="cpu")


def assert_loaded(model: torch.nn.Module, expected: dict[str, torch.Tensor]) -> None:
    own = model.state_dict()
    for k, v in expected.items():
        torch.testing.assert_close(own[k], v, rtol=0, atol=0, msg=k)


# ------------------------------------------------------------------------------------------------ MiT
def test_official_segformer_mit_file_loads_key_for_key(tmp_path):
    state = layout_state("official_mit_b0")
    torch.save(state, tmp_path / "mit_b0.pth")
    enc = build_mit("mit_b0")
    report = load_state(enc, read_state(tmp_path / "mit_b0.pth"), backbone="mit_b0")
    assert report["layout"] == "official" and report["loaded"] == report["expected"] == 176
    assert report["ignored"] == ["head.bias", "head.weight"]            # the ImageNet classifier
    assert_loaded(enc, {k: v for k, v in state.items() if not k.startswith("head.")})


def test_huggingface_mit_layout_splits_nothing_and_joins_key_value(tmp_path):
    state = layout_state("huggingface_mit_b0")
    torch.save(state, tmp_path / "pytorch_model.bin")
    enc = build_mit("mit_b0")
    report = load_state(enc, read_state(tmp_path / "pytorch_model.bin"), backbone="mit_b0")
    assert report["layout"] == "huggingface" and report["loaded"] == 176
    assert report["ignored"] == ["classifier.bias", "classifier.weight"]
    p = "segformer.encoder."
    assert_loaded(enc, {
        "patch_embed1.proj.weight": state[p + "patch_embeddings.0.proj.weight"],
        "patch_embed2.norm.bias": state[p + "patch_embeddings.1.layer_norm.bias"],
        "block1.0.norm1.weight": state[p + "block.0.0.layer_norm_1.weight"],
        "block3.1.norm2.bias": state[p + "block.2.1.layer_norm_2.bias"],
        "block1.1.attn.q.weight": state[p + "block.0.1.attention.self.query.weight"],
        "block2.0.attn.kv.weight": torch.cat([state[p + "block.1.0.attention.self.key.weight"],
                                              state[p + "block.1.0.attention.self.value.weight"]]),
        "block2.0.attn.kv.bias": torch.cat([state[p + "block.1.0.attention.self.key.bias"],
                                            state[p + "block.1.0.attention.self.value.bias"]]),
        "block1.0.attn.sr.weight": state[p + "block.0.0.attention.self.sr.weight"],
        "block1.0.attn.norm.weight": state[p + "block.0.0.attention.self.layer_norm.weight"],
        "block4.1.attn.proj.weight": state[p + "block.3.1.attention.output.dense.weight"],
        "block2.1.mlp.fc1.weight": state[p + "block.1.1.mlp.dense1.weight"],
        "block2.1.mlp.dwconv.dwconv.weight": state[p + "block.1.1.mlp.dwconv.dwconv.weight"],
        "block2.1.mlp.fc2.bias": state[p + "block.1.1.mlp.dense2.bias"],
        "norm4.weight": state[p + "layer_norm.3.weight"],
    })


def test_safetensors_file_reads_as_the_same_tensors(tmp_path):
    """The hub also ships model.safetensors; read without the safetensors package, data only."""
    state = {k: v for k, v in list(layout_state("huggingface_mit_b0").items())[:6]}
    state["an_int"] = torch.arange(6, dtype=torch.int64).view(2, 3)
    state["half"] = torch.randn(4).to(torch.bfloat16)
    offsets, blobs, pos = {}, [], 0
    for k, v in state.items():       # the format written by hand: header length, JSON header, raw data
        raw = v.contiguous().view(torch.uint8).numpy().tobytes()
        dtype = {torch.float32: "F32", torch.int64: "I64", torch.bfloat16: "BF16"}[v.dtype]
        offsets[k] = {"dtype": dtype, "shape": list(v.shape), "data_offsets": [pos, pos + len(raw)]}
        blobs.append(raw)
        pos += len(raw)
    header = json.dumps({"__metadata__": {"format": "pt"}, **offsets}).encode()
    (tmp_path / "model.safetensors").write_bytes(len(header).to_bytes(8, "little") + header + b"".join(blobs))
    back = read_safetensors(tmp_path / "model.safetensors")
    assert set(back) == set(state) and all(torch.equal(back[k], state[k]) for k in state)


def test_mmseg_mit_layout_splits_in_proj_and_flattens_1x1_convs(tmp_path):
    state = layout_state("mmseg_mit_b0")       # keys already carry mmseg's "backbone." prefix
    torch.save({"meta": {"mmseg_version": "1.x"}, "state_dict": state}, tmp_path / "segformer.pth")
    enc = build_mit("mit_b0")
    report = load_state(enc, read_state(tmp_path / "segformer.pth"), backbone="mit_b0")
    assert report["layout"] == "mmseg" and report["loaded"] == 176
    assert report["ignored"] == ["decode_head.conv_seg.weight"]
    in_proj = state["backbone.layers.1.1.0.attn.attn.in_proj_weight"]       # [q; kv] of stage 2, block 0
    c = in_proj.shape[0] // 3
    assert_loaded(enc, {
        "block2.0.attn.q.weight": in_proj[:c], "block2.0.attn.kv.weight": in_proj[c:],
        "block1.0.attn.proj.weight": state["backbone.layers.0.1.0.attn.attn.out_proj.weight"],
        "block1.0.mlp.fc1.weight": state["backbone.layers.0.1.0.ffn.layers.0.weight"].flatten(1),
        "block1.0.mlp.dwconv.dwconv.weight": state["backbone.layers.0.1.0.ffn.layers.1.weight"],
        "block1.0.mlp.fc2.weight": state["backbone.layers.0.1.0.ffn.layers.4.weight"].flatten(1),
        "patch_embed3.proj.weight": state["backbone.layers.2.0.projection.weight"],
        "norm2.weight": state["backbone.layers.1.2.weight"],
    })


def test_wrong_mit_size_is_one_line_naming_the_file_and_the_first_missing_keys(tmp_path):
    path = tmp_path / "mit_b1.pth"
    torch.save(uninitialised(build_mit, "mit_b1").state_dict(), path)
    with pytest.raises(InputError) as e:
        load_state(uninitialised(build_mit, "mit_b2"), read_state(path), source=str(path), backbone="mit_b2")
    msg = str(e.value)
    assert "\n" not in msg and msg.startswith(f"{path}: does not fit mit_b2 (official layout)")
    assert "156 of the backbone's 332 tensors missing (first: block1.2.attn.kv.bias" in msg
    assert "pretrained_partial: true" in msg
    # the explicit flag loads what fits and says what did not
    report = load_state(uninitialised(build_mit, "mit_b2"), read_state(path), source=str(path), backbone="mit_b2",
                        partial=True)
    assert report["loaded"] == 176 and len(report["missing"]) == 156
    assert "partial: 156 missing" in describe(report)
    with pytest.raises(InputError, match="tensors with no place in it"):   # the other way round: unexpected keys
        torch.save(uninitialised(build_mit, "mit_b2").state_dict(), path)
        load_state(uninitialised(build_mit, "mit_b1"), read_state(path), source=str(path), backbone="mit_b1")


# ------------------------------------------------------------------------------------------------ ResNet / HRNet
@pytest.mark.parametrize("depth", [18, 50])
def test_torchvision_resnet_loads_into_the_v1b_stem_whole(depth, tmp_path):
    state = layout_state(f"torchvision_resnet{depth}")
    torch.save(state, tmp_path / "tv.pth")
    body = build_cnn_backbone(f"resnet{depth}", stem="v1b")
    report = load_state(body, read_state(tmp_path / "tv.pth"), backbone=f"resnet{depth}")
    assert report["layout"] == "torchvision" and report["ignored"] == ["fc.bias", "fc.weight"]
    assert report["loaded"] == len(state) - 2 == report["expected"]
    assert_loaded(body, {k: v for k, v in state.items() if not k.startswith("fc.")})
    with pytest.raises(InputError, match="7x7 stem: build the backbone with the option `stem: v1b`"):
        load_state(uninitialised(build_cnn_backbone, f"resnet{depth}"), read_state(tmp_path / "tv.pth"),
                   backbone=f"resnet{depth}")


def test_mmcv_v1c_and_timm_deep_stem_namings(tmp_path):
    src = build_cnn_backbone("resnet18")
    state = {k: torch.randn_like(v.float()) if v.is_floating_point() else v for k, v in src.state_dict().items()}
    torch.save({"meta": {}, "state_dict": {"backbone." + k: v for k, v in state.items()}}, tmp_path / "v1c.pth")
    dst = build_cnn_backbone("resnet18")
    assert load_state(dst, read_state(tmp_path / "v1c.pth"))["layout"] == "mmcv"
    assert_loaded(dst, state)
    timm = {}
    names = {"stem.0.": "conv1.0.", "stem.1.": "conv1.1.", "stem.3.": "conv1.3.", "stem.4.": "conv1.4.",
             "stem.6.": "conv1.6.", "stem.7.": "bn1."}
    for k, v in state.items():
        for ours, theirs in names.items():
            if k.startswith(ours):
                k = theirs + k[len(ours):]
        timm[k] = v
    timm["fc.weight"] = torch.randn(1000, 512)
    torch.save(timm, tmp_path / "timm.pth")
    dst = build_cnn_backbone("resnet18")
    report = load_state(dst, read_state(tmp_path / "timm.pth"))
    assert report["layout"] == "timm" and report["ignored"] == ["fc.weight"]
    assert_loaded(dst, state)


def test_official_hrnet_imagenet_file_drops_its_classification_heads(tmp_path):
    src = build_cnn_backbone("hrnet_w18")
    state = {k: v for k, v in src.state_dict().items() if not k.endswith("num_batches_tracked")}  # old files
    heads = {"incre_modules.0.0.conv1.weight": torch.randn(32, 18, 1, 1),
             "downsamp_modules.0.0.weight": torch.randn(256, 128, 3, 3),
             "final_layer.0.weight": torch.randn(2048, 1024, 1, 1), "classifier.weight": torch.randn(1000, 2048)}
    torch.save({**state, **heads}, tmp_path / "hrnetv2_w18_imagenet_pretrained.pth")
    dst = build_cnn_backbone("hrnet_w18")
    report = load_state(dst, read_state(tmp_path / "hrnetv2_w18_imagenet_pretrained.pth"), backbone="hrnet_w18")
    assert report["layout"] == "official" and report["loaded"] == len(state)
    assert report["ignored"] == sorted(heads)
    with pytest.raises(InputError, match=r"does not fit hrnet_w48 .*of another shape \(first: "):
        load_state(uninitialised(build_cnn_backbone, "hrnet_w48"),
                   read_state(tmp_path / "hrnetv2_w18_imagenet_pretrained.pth"), backbone="hrnet_w48")


# ------------------------------------------------------------------------------------------------ files, models
def test_bad_files_are_one_line_and_never_execute(tmp_path):
    with pytest.raises(InputError, match="pretrained weights not found"):
        read_state(tmp_path / "none.pth")

    class Boom:
        def __reduce__(self):
            return (print, ("this must never run",))

    (tmp_path / "evil.pth").write_bytes(pickle.dumps({"w": Boom()}, protocol=2))
    with pytest.raises(InputError, match="evil.pth: pretrained weights refused, not loaded") as e:
        read_state(tmp_path / "evil.pth")
    assert "\n" not in str(e.value)
    (tmp_path / "junk.pth").write_bytes(b"\x00" * 10)
    with pytest.raises(InputError, match="junk.pth: cannot read pretrained weights"):
        read_state(tmp_path / "junk.pth")
    (tmp_path / "torn.safetensors").write_bytes((100).to_bytes(8, "little") + b"{")
    with pytest.raises(InputError, match="torn.safetensors: cannot read pretrained weights"):
        read_state(tmp_path / "torn.safetensors")
    torch.save([1, 2], tmp_path / "list.pth")
    with pytest.raises(InputError, match="not a state dict"):
        read_state(tmp_path / "list.pth")


def test_resolve_pretrained_path_mapping_and_explicit_none():
    assert resolve_pretrained(None, "mit_b1") is None and resolve_pretrained("none", "mit_b1") is None
    assert resolve_pretrained("/w/x.pth", "mit_b1") == "/w/x.pth"
    assert resolve_pretrained({"mit_b1": "/w/b1.pth", "mit_b2": "/w/b2.pth"}, "mit_b2") == "/w/b2.pth"
    with pytest.raises(InputError, match="no weights file for backbone mit_b5 .*mit_b1, mit_b2"):
        resolve_pretrained({"mit_b1": "a", "mit_b2": "b"}, "mit_b5")


@pytest.mark.parametrize("variant, backbone", [("segformer", "mit_b0"), ("sdcpc", "mit_b0"), ("msaf", "resnet18"),
                                               ("msaf_baseline", "pspnet18")])
def test_every_family_loads_into_its_backbone_group(variant, backbone, tmp_path):
    model = build_model(variant, backbone, 3)
    target = model.lr_groups()["backbone"][0]
    state = {k: torch.randn_like(v.float()) if v.is_floating_point() else v for k, v in target.state_dict().items()}
    torch.save(state, tmp_path / "w.pth")
    report = load_pretrained(model, str(tmp_path / "w.pth"), backbone)
    assert model.init_report is report and report["loaded"] == report["expected"]
    assert_loaded(target, state)
    if backbone.startswith("pspnet"):   # the pyramid pooling module is not ImageNet-trained: not in the file
        assert all(not k.startswith("ppm.") for k in target.state_dict())
    assert load_pretrained(build_model(variant, backbone, 3), "none", backbone) == {"init": "random",
                                                                                     "checkpoint": None}
