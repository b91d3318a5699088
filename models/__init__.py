"""Models: backbones, operators, heads and the three families (segformer, sdcpc, msaf).

    from models import build_model, load_variants
    model = build_model("sdcpc", "mit_b1", num_classes=124)
"""
from models.registry import RegistryError, Variant, build_model, get_variant, load_variants

__all__ = ["RegistryError", "Variant", "build_model", "get_variant", "load_variants"]
