import pytest
import torch

from cifarpipe.gradcam import choose_layers
from cifarpipe.errors import ParamsError
from cifarpipe.models import block_output_shapes, build_model, count_parameters, summary


def test_custom_resnet_matches_the_seeds():
    model = build_model("custom_resnet")
    assert count_parameters(model) == 6_573_130
    assert block_output_shapes(model) == {"prep_layer": (64, 32, 32), "layer1": (128, 16, 16),
                                          "layer2": (256, 8, 8), "layer3": (512, 4, 4)}
    assert all(conv.bias is None for conv in model.modules() if isinstance(conv, torch.nn.Conv2d))
    assert model(torch.randn(2, 3, 32, 32)).shape == (2, 10)


def test_resnet18_cifar_variant():
    model = build_model("resnet18")
    assert count_parameters(model) == 11_173_962
    assert block_output_shapes(model) == {"stem": (64, 32, 32), "layer1": (64, 32, 32), "layer2": (128, 16, 16),
                                          "layer3": (256, 8, 8), "layer4": (512, 4, 4)}
    assert model(torch.randn(2, 3, 32, 32)).shape == (2, 10)


def test_summary_lists_layers_and_totals():
    text = summary(build_model("custom_resnet"))
    assert "Total params: 6,573,130" in text and "layer3.res.body.1.0" in text and "[512, 4, 4]" in text


@pytest.mark.parametrize("name, expected", [("custom_resnet", ["layer1", "layer2"]), ("resnet18", ["layer2", "layer3"])])
def test_gradcam_layers_auto_are_the_two_deepest_at_least_8x8(name, expected):
    assert choose_layers(build_model(name), "auto", 8) == expected


def test_gradcam_refuses_a_layer_smaller_than_min_size():
    with pytest.raises(ParamsError, match="layer3.*4x4"):
        choose_layers(build_model("custom_resnet"), ["layer3"], 8)
    with pytest.raises(ParamsError, match="lacks"):
        choose_layers(build_model("custom_resnet"), ["layer9"], 8)
