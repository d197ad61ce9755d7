"""The benchmark networks of DFEW's Table 3, by name. Each builder takes ``num_classes`` and
``pretrained`` (a local checkpoint path) and returns a `VideoClassifier`.

The Table 3 names build the networks the DFEW authors trained (github jiangxingxun/DFEW,
``makemodel/``, and torchvision's video ResNets): ``c3d`` with batch norm, ``p3d`` (P3D-63),
``r3d_18``, ``mc3_18``, ``i3d``, ``resnet18_lstm``. ``resnet3d_18`` (Hara et al.) and
``vgg11_lstm`` are not in their release and follow the papers. Textbook variants that load
public pretrained weights keep names of their own: ``c3d_sports1m``, ``resnet18_lstm_tv``.
"""

from ml.networks.base import VideoClassifier
from ml.networks.c3d import c3d, c3d_sports1m
from ml.networks.i3d import i3d
from ml.networks.init import initialise
from ml.networks.p3d import p3d_63, p3d_199
from ml.networks.resnet3d import mc3_18, r3d_18, resnet3d_18
from ml.networks.rnn import resnet18_lstm, resnet18_lstm_tv, vgg11_lstm

MODELS = {
    "c3d": c3d,
    "c3d_sports1m": c3d_sports1m,
    "p3d": p3d_63,
    "p3d_199": p3d_199,
    "r3d_18": r3d_18,
    "mc3_18": mc3_18,
    "resnet3d_18": resnet3d_18,
    "i3d": i3d,
    "vgg11_lstm": vgg11_lstm,
    "resnet18_lstm": resnet18_lstm,
    "resnet18_lstm_tv": resnet18_lstm_tv,
}

# Input side per model in the authors' configs (config/*.yaml ``size_Resize_te``); models
# they did not train get 112.
DFEW_INPUT_SIZE = {
    "r3d_18": 112,
    "mc3_18": 112,
    "resnet18_lstm": 112,
    "c3d": 112,
    "p3d": 160,
    "i3d": 224,
}

# Builders whose network depends on the clip length (a classifier over every frame's output).
TAKES_FRAMES = {"resnet18_lstm"}


def build_model(
    name: str,
    num_classes: int = 7,
    *,
    pretrained: str | None = None,
    frames: int = 16,
    init: str = "default",
    i3d_padding: str = "symmetric",
) -> VideoClassifier:
    """The network `name` as a run asks for it: its frame count, P3D's Conv3d rule and I3D's
    padding, then the initialisation (``init="authors"``: their Performer rule; skipped when
    `pretrained` weights are loaded, which the rule would overwrite)."""
    extra: dict = {}
    if name in TAKES_FRAMES:
        extra["frames"] = frames
    if name in ("p3d", "p3d_199"):
        extra["init"] = init
    if name == "i3d":
        extra["padding"] = i3d_padding
    model = MODELS[name](num_classes=num_classes, pretrained=pretrained, **extra)
    return model if pretrained else initialise(model, init)


__all__ = ["MODELS", "DFEW_INPUT_SIZE", "TAKES_FRAMES", "VideoClassifier", "build_model"]
