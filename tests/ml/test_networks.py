"""Every benchmark network: shapes, parameter counts, a training step, checkpoint loading."""

import pytest
import torch

from ml.networks import MODELS, TAKES_FRAMES


def conv(cin, cout, k, bias=False):
    return cin * cout * k + (cout if bias else 0)


def bn(c):
    return 2 * c


def linear(cin, cout):
    return cin * cout + cout


def lstm(cin, hidden, layers):
    """torch's LSTM: per layer 4 gates of (input + hidden) weights and two biases."""
    first = 4 * hidden * (cin + hidden + 2)
    return first + (layers - 1) * 4 * hidden * (2 * hidden + 2)


def bottleneck(cin, planes, k_middle, shortcut):
    """1×1 conv, the middle (k_middle weights per channel pair), 1×1 conv to 4·planes, BNs."""
    n = conv(cin, planes, 1) + bn(planes) + k_middle + conv(planes, 4 * planes, 1) + bn(4 * planes)
    return n + (conv(cin, 4 * planes, 1) + bn(4 * planes) if shortcut else 0)


def authors_resnet18_lstm(classes=7, frames=16):
    """The DFEW authors' ResLSTM.py: 2D Bottleneck ResNet [2, 2, 2, 2], LSTM(2048, 256, 3),
    a classifier over the 16 concatenated outputs."""
    n, cin = conv(3, 64, 49) + bn(64), 64
    for planes in (64, 128, 256, 512):
        for i in range(2):
            n += bottleneck(cin, planes, conv(planes, planes, 9) + bn(planes), i == 0)
            cin = 4 * planes
    return n + lstm(2048, 256, 3) + linear(frames * 256, classes)


def authors_p3d63(classes=7):
    """The DFEW authors' p3d.py P3D63: 13 pseudo-3D bottlenecks (S 1×3×3 and T 3×1×1, each
    with BN) in stages of 3, 4, 6, then 3 plain 2D bottlenecks (3×3), a 2048→classes fc."""
    n, cin = conv(3, 64, 49) + bn(64), 64
    for stage, (planes, blocks) in enumerate(((64, 3), (128, 4), (256, 6), (512, 3))):
        middle = conv(planes, planes, 9) + bn(planes)
        if stage < 3:
            middle += conv(planes, planes, 3) + bn(planes)
        for i in range(blocks):
            n += bottleneck(cin, planes, middle, i == 0)
            cin = 4 * planes
    return n + linear(2048, classes)


def c3d(batch_norm: bool, classes=7):
    """C3D's eight 3×3×3 convolutions with biases (the authors' add a BN after each)."""
    widths = [(3, 64), (64, 128), (128, 256), (256, 256)] + [(256, 512)] + [(512, 512)] * 3
    n = sum(conv(a, b, 27, bias=True) + (bn(b) if batch_norm else 0) for a, b in widths)
    return n + linear(8192, 4096) + linear(4096, 4096) + linear(4096, classes)


# Parameter counts with a 7-class head. The networks the DFEW authors trained are counted from
# their layer lists above; where a reference release exists, its published total with its
# classifier swapped for ours:
#   r3d_18:           torchvision 33,371,472 (400 classes) − 205,200 + 3,591
#   mc3_18:           torchvision 11,695,440 (400 classes) − 205,200 + 3,591
#   vgg11_lstm:       torchvision vgg11 features 9,220,480 + LSTM(512, 512) 2,101,248 + 3,591
#   resnet18_lstm_tv: torchvision resnet18 11,689,512 − fc 513,000 + LSTM 2,101,248 + 3,591
#   i3d:              the PyTorch I3D port 12,697,264 (400-class 1×1×1 conv) − 410,000 + 7,175
PARAMETERS = {
    "c3d": c3d(batch_norm=True),
    "c3d_sports1m": c3d(batch_norm=False),
    "p3d": authors_p3d63(),
    "p3d_199": 65_686_983,
    "r3d_18": 33_169_863,
    "mc3_18": 11_493_831,
    "resnet3d_18": 33_207_495,
    "i3d": 12_294_439,
    "vgg11_lstm": 11_325_319,
    "resnet18_lstm": authors_resnet18_lstm(),
    "resnet18_lstm_tv": 13_281_351,
}
FEATURES = {
    "c3d": 4096,
    "c3d_sports1m": 4096,
    "p3d": 2048,
    "p3d_199": 2048,
    "i3d": 1024,
    "resnet18_lstm": 16 * 256,
}


def test_the_authors_networks_have_their_published_sizes():
    # The issue's figures, from the authors' code: P3D-63 24.9 M, ResNet18+LSTM 17.4 M.
    assert round(PARAMETERS["p3d"] / 1e6, 1) == 24.9
    assert round(PARAMETERS["resnet18_lstm"] / 1e6, 1) == 17.4
    assert PARAMETERS["c3d"] - PARAMETERS["c3d_sports1m"] == 2 * (64 + 128 + 2 * 256 + 4 * 512)


@pytest.mark.parametrize("name", sorted(MODELS))
class NetworkTests:
    def test_it_has_the_expected_parameter_count(self, name):
        model = MODELS[name](num_classes=7)
        assert sum(p.numel() for p in model.parameters()) == PARAMETERS[name]

    def test_it_returns_logits_and_features_for_a_16x112x112_clip(self, name):
        torch.manual_seed(0)
        model = MODELS[name](num_classes=7).eval()
        with torch.no_grad():
            logits, features = model(torch.randn(1, 3, 16, 112, 112))
        assert logits.shape == (1, 7)
        assert features.shape == (1, FEATURES.get(name, 512))
        assert torch.isfinite(logits).all()

    def test_a_tiny_clip_trains_one_step(self, name):
        torch.manual_seed(0)
        extra = {"frames": 4} if name in TAKES_FRAMES else {}
        model = MODELS[name](num_classes=7, **extra)
        x = torch.randn(2, 3, 4, 32, 32)
        logits, features = model(x)
        assert logits.shape == (2, 7) and torch.isfinite(logits).all()
        assert torch.isfinite(features).all()
        loss = torch.nn.functional.cross_entropy(logits, torch.tensor([0, 3]))
        loss.backward()
        grads = [p.grad for p in model.parameters() if p.requires_grad]
        assert all(g is not None and torch.isfinite(g).all() for g in grads)

    def test_reset_classifier_changes_the_class_count(self, name):
        extra = {"frames": 4} if name in TAKES_FRAMES else {}
        model = MODELS[name](num_classes=7, **extra).eval()
        model.reset_classifier(3)
        with torch.no_grad():
            logits, _ = model(torch.randn(1, 3, 4, 32, 32))
        assert logits.shape == (1, 3)


class PretrainedLoadingTests:
    def test_r3d_18_loads_a_torchvision_style_400_class_checkpoint(self, tmp_path):
        # A state dict named and shaped as torchvision's r3d_18 Kinetics-400 weights.
        source = MODELS["r3d_18"](num_classes=400)
        path = tmp_path / "r3d_18_kinetics.pth"
        torch.save(source.state_dict(), path)
        model = MODELS["r3d_18"](num_classes=7, pretrained=str(path))
        assert torch.equal(model.stem[0].weight, source.stem[0].weight)
        assert torch.equal(model.layer4[1].conv2[0].weight, source.layer4[1].conv2[0].weight)
        assert model.fc.out_features == 7

    def test_the_lstm_models_load_a_2d_imagenet_checkpoint_into_the_backbone(self, tmp_path):
        source = MODELS["resnet18_lstm_tv"](num_classes=7).backbone
        state = {**source.state_dict(), "fc.weight": torch.zeros(1000, 512)}
        path = tmp_path / "resnet18_imagenet.pth"
        torch.save(state, path)
        model = MODELS["resnet18_lstm_tv"](num_classes=7, pretrained=str(path))
        assert torch.equal(model.backbone.conv1.weight, source.conv1.weight)

    def test_it_refuses_a_checkpoint_that_does_not_fit(self, tmp_path):
        path = tmp_path / "c3d.pth"
        torch.save(MODELS["c3d"](num_classes=7).state_dict(), path)
        with pytest.raises(ValueError, match="weights missing"):
            MODELS["r3d_18"](num_classes=7, pretrained=str(path))


class AuthorsNetworkTests:
    def test_the_authors_resnet18_lstm_needs_its_clip_length(self):
        model = MODELS["resnet18_lstm"](num_classes=7, frames=16)
        with pytest.raises(ValueError, match="built for 16 frames, got 4"):
            model(torch.randn(1, 3, 4, 32, 32))

    def test_the_authors_c3d_has_batch_norm_after_every_convolution(self):
        model = MODELS["c3d"](num_classes=7)
        norms = [m for m in model.modules() if isinstance(m, torch.nn.BatchNorm3d)]
        convs = [m for m in model.modules() if isinstance(m, torch.nn.Conv3d)]
        assert [n.num_features for n in norms] == [c.out_channels for c in convs]
        assert not any(
            isinstance(m, torch.nn.BatchNorm3d) for m in MODELS["c3d_sports1m"]().modules()
        )

    def test_the_authors_p3d_keeps_its_last_stage_2d_and_pools_time_to_one_frame(self):
        model = MODELS["p3d"](num_classes=7).eval()
        stage4 = [
            m for m in model.layer4.modules() if isinstance(m, torch.nn.Conv2d | torch.nn.Conv3d)
        ]
        assert stage4 and all(isinstance(m, torch.nn.Conv2d) for m in stage4)
        seen = {}

        def record(module, args):
            seen["in"] = args[0].shape

        model.layer4.register_forward_pre_hook(record)
        with torch.no_grad():
            model(torch.randn(1, 3, 16, 160, 160))
        assert seen["in"] == (1, 1024, 10, 10)  # time 16 → 1 before the 2D stage, as theirs


class ChannelsLastTests:
    def test_it_converts_the_2d_and_3d_convolutions_of_a_model(self):
        from ml.networks.base import to_channels_last

        model = torch.nn.Sequential(torch.nn.Conv3d(3, 4, 3), torch.nn.Conv2d(4, 4, 3))
        to_channels_last(model)
        assert model[0].weight.is_contiguous(memory_format=torch.channels_last_3d)
        assert model[1].weight.is_contiguous(memory_format=torch.channels_last)
        assert not model[1].weight.is_contiguous()  # really converted, not left as it was
