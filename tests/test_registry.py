"""The variant registry: resolution of bases, and clear errors for malformed entries."""
import pytest
import yaml

from models.registry import RegistryError, load_variants, parse_variants

PAPER_LABELS_SDCPC = ["SegFormer", "SD-CPC", "only DSSA", "only SSEA", "w/o DSSA", "w/o SSEA", "w/o MCP-CL",
                      "w/o stage 1", "w/o stage 2", "MCP-CL(M=1)", "w/o LA", "w/o DCN", "w/o Multi-Scale"]
PAPER_LABELS_MSAF = ["Baseline", "Baseline + TR", "Motion only", "State only", "w/o Motion", "w/o State",
                     "w/o Semantics", "w/o DCN", "MSAF"]


def test_every_paper_ablation_row_has_a_variant():
    labels = {v.label for v in load_variants().values()}
    for label in PAPER_LABELS_SDCPC + PAPER_LABELS_MSAF + ["P=9", "P=16"]:
        assert label in labels


def test_base_options_are_merged_not_copied():
    v = load_variants()
    assert v["sdcpc_wo_dcn"].options == {**v["sdcpc"].options, "dcn": False}
    assert v["sdcpc_wo_dcn"].ref_offsets == (-6, -3)
    assert v["sdcpc_wo_dcn"].clip_offsets == (-6, -3, 0)
    assert v["msaf_wo_motion"].num_frames == 1


@pytest.mark.parametrize("raw, message", [
    ({"a": {"family": "nope", "label": "A"}}, "unknown family 'nope'"),
    ({"a": {"base": "missing", "label": "A"}}, "base 'missing' is not a registered variant"),
    ({"a": {"base": "b", "label": "A"}, "b": {"base": "a", "label": "B"}}, "base chain loops"),
    ({"a": {"family": "sdcpc"}}, "'label' is a required property"),
    ({"a": {"family": "sdcpc", "label": "A", "ref_offsets": [-3, -6]}}, "time order"),
    ({"a": {"family": "sdcpc", "label": "A", "colour": 1}}, "Additional properties"),
    ({"Bad-Name": {"family": "sdcpc", "label": "A"}}, "does not match"),
])
def test_malformed_registry_is_a_one_line_error(raw, message, tmp_path):
    path = tmp_path / "variants.yaml"
    path.write_text(yaml.safe_dump(raw))
    with pytest.raises(RegistryError) as e:
        parse_variants(raw, path)
    assert message in str(e.value)
    assert str(path) in str(e.value)
    assert "\n" not in str(e.value)
