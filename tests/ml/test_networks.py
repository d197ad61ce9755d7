"""Every benchmark network: shapes, parameter counts, a training step, checkpoint loading."""

import pytest
import torch

from ml.networks import MODELS

# Parameter counts with a 7-class head. Where a reference release exists, the count is its
# published total with its classifier swapped for ours:
#   r3d_18:        torchvision 33,371,472 (400 classes) − 205,200 + 3,591
#   vgg11_lstm:    torchvision vgg11 features 9,220,480 + LSTM(512, 512) 2,101,248 + 3,591
#   resnet18_lstm: torchvision resnet18 11,689,512 − fc 513,000 + LSTM 2,101,248 + 3,591
#   i3d:           the PyTorch I3D port 12,697,264 (400-class 1×1×1 conv) − 410,000 + 7,175
PARAMETERS = {
    "c3d": 78_024_455,
    "p3d": 27_302_343,
    "p3d_199": 68_049_351,
    "r3d_18": 33_169_863,
    "resnet3d_18": 33_207_495,
    "i3d": 12_294_439,
    "vgg11_lstm": 11_325_319,
    "resnet18_lstm": 13_281_351,
}
FEATURES = {"c3d": 4096, "p3d": 2048, "p3d_199": 2048, "i3d": 1024}


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
        model = MODELS[name](num_classes=7)
        x = torch.randn(2, 3, 4, 32, 32)
        logits, features = model(x)
        assert logits.shape == (2, 7) and torch.isfinite(logits).all()
        assert torch.isfinite(features).all()
        loss = torch.nn.functional.cross_entropy(logits, torch.tensor([0, 3]))
        loss.backward()
        grads = [p.grad for p in model.parameters() if p.requires_grad]
        assert all(g is not None and torch.isfinite(g).all() for g in grads)

    def test_reset_classifier_changes_the_class_count(self, name):
        model = MODELS[name](num_classes=7).eval()
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
        source = MODELS["resnet18_lstm"](num_classes=7).backbone
        state = {**source.state_dict(), "fc.weight": torch.zeros(1000, 512)}
        path = tmp_path / "resnet18_imagenet.pth"
        torch.save(state, path)
        model = MODELS["resnet18_lstm"](num_classes=7, pretrained=str(path))
        assert torch.equal(model.backbone.conv1.weight, source.conv1.weight)

    def test_it_refuses_a_checkpoint_that_does_not_fit(self, tmp_path):
        path = tmp_path / "c3d.pth"
        torch.save(MODELS["c3d"](num_classes=7).state_dict(), path)
        with pytest.raises(ValueError, match="weights missing"):
            MODELS["r3d_18"](num_classes=7, pretrained=str(path))
