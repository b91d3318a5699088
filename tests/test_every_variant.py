"""Every entry of config/variants.yaml, on the smallest valid backbone of its family, on a tiny clip:
clip in, target logits out (eval), each clip of a batch predicted on its own; dict with logits and a finite loss (train); gradients reach every
trainable parameter. A family whose module does not import yet is skipped, with the reason."""
import pytest
import torch

from models.registry import build_model, family_module, load_variants

VARIANTS = load_variants()
NUM_CLASSES = 5
SIZE = 64                                    # divisible by every output stride (4, 8) and by 32
SMALLEST_FIRST = ("mit_b0", "resnet18", "pspnet18", "hrnet_w18")


def small_backbone(module) -> str:
    return next((b for b in SMALLEST_FIRST if b in module.BACKBONES), module.BACKBONES[0])


def family_or_skip(family: str):
    try:
        return family_module(family)
    except ImportError as e:               # another engineer's family not written yet
        pytest.skip(f"family '{family}' does not import yet: {e}")


def no_stochastic_depth(model):
    # a dropped residual branch would give its parameters an all-zero gradient; switch it off (DropPath
    # modules expose drop_prob)
    for m in model.modules():
        if hasattr(m, "drop_prob"):
            m.drop_prob = 0.0


@pytest.mark.parametrize("name", sorted(VARIANTS))
def test_variant_contract_on_a_tiny_clip(name):
    v = VARIANTS[name]
    module = family_or_skip(v.family)
    backbone = small_backbone(module)
    torch.manual_seed(0)
    model = build_model(v, backbone, NUM_CLASSES)
    assert model.variant is v
    clip = torch.randn(2, v.num_frames, 3, SIZE, SIZE)

    model.eval()
    ran_in_eval = []       # training-only modules (metrics/complexity.py convention) must not run at inference
    hooks = [m.register_forward_hook(lambda mod, i, o: ran_in_eval.append(type(mod).__name__))
             for m in (model.train_only_modules() if hasattr(model, "train_only_modules") else [])]
    with torch.no_grad():
        logits = model(clip)
    for h in hooks:
        h.remove()
    assert not ran_in_eval, f"{name}: training-only modules ran in eval: {ran_in_eval}"
    assert isinstance(logits, torch.Tensor), f"{name}: eval forward must return the logits tensor"
    assert logits.shape[:2] == (2, NUM_CLASSES)
    stride = SIZE // logits.shape[-1]
    assert stride in (1, 2, 4, 8) and tuple(logits.shape[-2:]) == (SIZE // stride, SIZE // stride), logits.shape
    assert torch.isfinite(logits).all()
    # each clip of a batch is predicted on its own (engine.infer batches clips and relies on it)
    with torch.no_grad():
        alone = torch.cat([model(clip[i:i + 1]) for i in range(clip.shape[0])])
    torch.testing.assert_close(logits, alone, rtol=1e-4, atol=1e-4)

    model.train()
    no_stochastic_depth(model)
    outputs = model(clip)
    assert isinstance(outputs, dict) and outputs["logits"].shape == logits.shape
    target = torch.randint(0, NUM_CLASSES, (2, SIZE, SIZE))
    target[:, :8] = 255                                      # some ignored pixels
    losses = model.loss(outputs, target)
    assert "total" in losses
    for key, value in losses.items():
        assert value.dim() == 0 and torch.isfinite(value), f"{name}: loss '{key}' = {value}"
    losses["total"].backward()
    unreached = [n for n, p in model.named_parameters() if p.requires_grad and p.grad is None]
    assert not unreached, f"{name}: no gradient reaches {unreached[:5]} ({len(unreached)} in all)"
    bad = [n for n, p in model.named_parameters() if p.grad is not None and not torch.isfinite(p.grad).all()]
    assert not bad, f"{name}: non-finite gradients in {bad[:5]}"


def test_every_family_has_a_variant_and_a_small_backbone():
    for family in {v.family for v in VARIANTS.values()}:
        try:
            module = family_module(family)
        except ImportError:
            continue
        assert small_backbone(module) in module.BACKBONES
