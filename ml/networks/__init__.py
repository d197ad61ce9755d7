"""The benchmark networks of DFEW's Table 3, by name. Each builder takes ``num_classes`` and
``pretrained`` (a local checkpoint path) and returns a `VideoClassifier`."""

from ml.networks.base import VideoClassifier
from ml.networks.c3d import c3d
from ml.networks.i3d import i3d
from ml.networks.resnet3d import p3d_63, p3d_199, r3d_18, resnet3d_18
from ml.networks.rnn import resnet18_lstm, vgg11_lstm

MODELS = {
    "c3d": c3d,
    "p3d": p3d_63,
    "p3d_199": p3d_199,
    "r3d_18": r3d_18,
    "resnet3d_18": resnet3d_18,
    "i3d": i3d,
    "vgg11_lstm": vgg11_lstm,
    "resnet18_lstm": resnet18_lstm,
}

# Input side per model, as the DFEW code uses them: 112 for C3D, 224 for the others.
INPUT_SIZE = {"c3d": 112}
DEFAULT_INPUT_SIZE = 224

__all__ = ["MODELS", "INPUT_SIZE", "DEFAULT_INPUT_SIZE", "VideoClassifier"]
