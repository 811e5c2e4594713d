"""The reference recipe's two networks, their block shapes, the preview's summary, GradCAM's layer rule."""
import pytest
import torch
import torchvision

from cifarpipe.core.errors import ParamsError
from cifarpipe.core.params import Model
from cifarpipe.gradcam.cams import choose_layers
from cifarpipe.model.networks import block_output_shapes, build_model, count_parameters
from cifarpipe.preview.summary import model_summary
from conftest import REFERENCE_NETWORK

RESNET18 = Model(name="resnet18", width=64)


def test_custom_resnet_matches_the_seeds():
    model = build_model(REFERENCE_NETWORK)
    assert count_parameters(model) == 6_573_130
    assert block_output_shapes(model) == {"prep_layer": (64, 32, 32), "layer1": (128, 16, 16),
                                          "layer2": (256, 8, 8), "layer3": (512, 4, 4)}
    assert all(conv.bias is None for conv in model.modules() if isinstance(conv, torch.nn.Conv2d))
    assert model(torch.randn(2, 3, 32, 32)).shape == (2, 10)


def test_resnet18_is_torchvisions_with_the_cifar_stem():
    model = build_model(RESNET18)
    assert isinstance(model, torchvision.models.ResNet)
    assert count_parameters(model) == 11_173_962  # the ResNet18 recipe's count
    stock = torchvision.models.resnet18(num_classes=10)  # 7x7 stem: 64 * 3 * (49 - 9) weights more
    assert count_parameters(stock) - count_parameters(model) == 64 * 3 * (49 - 9)
    assert model.conv1.kernel_size == (3, 3) and model.conv1.stride == (1, 1)
    assert isinstance(model.maxpool, torch.nn.Identity)
    assert block_output_shapes(model) == {"layer1": (64, 32, 32), "layer2": (128, 16, 16),
                                          "layer3": (256, 8, 8), "layer4": (512, 4, 4)}
    assert model(torch.randn(2, 3, 32, 32)).shape == (2, 10)


def custom_resnet_parameters(w: int) -> int:
    """The custom ResNet's parameters at width w, by hand: 3x3 convolutions without bias, BatchNorm's weight
    and bias per channel, the classifier's weights and biases."""
    def conv_bn(c_in, c_out):
        return 9 * c_in * c_out + 2 * c_out
    return (conv_bn(3, w) + conv_bn(w, 2 * w) + 2 * conv_bn(2 * w, 2 * w) + conv_bn(2 * w, 4 * w)
            + conv_bn(4 * w, 8 * w) + 2 * conv_bn(8 * w, 8 * w) + 8 * w * 10 + 10)


@pytest.mark.parametrize("width", [8, 16])
def test_a_narrower_network_scales_every_layer_with_the_width(width):
    assert custom_resnet_parameters(64) == 6_573_130  # the custom-ResNet recipe's count
    model = build_model(Model(name="custom_resnet", width=width))
    assert count_parameters(model) == custom_resnet_parameters(width)
    assert block_output_shapes(model) == {"prep_layer": (width, 32, 32), "layer1": (2 * width, 16, 16),
                                          "layer2": (4 * width, 8, 8), "layer3": (8 * width, 4, 4)}
    resnet = build_model(Model(name="resnet18", width=width))
    assert block_output_shapes(resnet) == {"layer1": (width, 32, 32), "layer2": (2 * width, 16, 16),
                                           "layer3": (4 * width, 8, 8), "layer4": (8 * width, 4, 4)}
    assert resnet.conv1.out_channels == resnet.bn1.num_features == width
    assert resnet.fc.in_features == 8 * width
    # torchvision's initialisation: He-normal convolutions (fan_out), BatchNorm at weight 1 and bias 0
    conv = resnet.layer2[0].conv1.weight
    assert conv.std().item() == pytest.approx((2 / (9 * conv.shape[0])) ** 0.5, rel=0.2)
    assert all(torch.all(m.weight == 1) and torch.all(m.bias == 0) for m in resnet.modules()
               if isinstance(m, torch.nn.BatchNorm2d))
    for network in (model, resnet):
        assert network(torch.randn(2, 3, 32, 32)).shape == (2, 10)


def test_summary_lists_layers_and_totals():
    text = model_summary(build_model(REFERENCE_NETWORK))
    assert "Total params: 6,573,130" in text and "layer3.res.body.1.0" in text and "[512, 4, 4]" in text


@pytest.mark.parametrize("name, deepest, expected", [("custom_resnet", 2, ["layer1", "layer2"]),
                                                     ("custom_resnet", 3, ["prep_layer", "layer1", "layer2"]),
                                                     ("resnet18", 2, ["layer2", "layer3"])])
def test_gradcam_layers_auto_are_the_deepest_at_least_8x8(name, deepest, expected):
    assert choose_layers(build_model(Model(name=name, width=64)), "auto", 8, deepest) == expected


def test_gradcam_refuses_a_layer_smaller_than_min_size_or_one_the_model_lacks():
    with pytest.raises(ParamsError, match="layer3.*4x4"):
        choose_layers(build_model(REFERENCE_NETWORK), ["layer3"], 8, 2)
    with pytest.raises(ParamsError,
                       match="'prep_layer', which ResNet18 lacks; its blocks are layer1, layer2"):
        choose_layers(build_model(RESNET18), ["prep_layer"], 8, 2)
