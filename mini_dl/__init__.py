"""mini_dl: a small deep-learning framework on PyTorch tensors, with every gradient written by hand.

Everything public is importable from here::

    import mini_dl as dl
    model = dl.Sequential(dl.Linear(2, 25), dl.ReLU(), dl.Linear(25, 2))
"""
from . import init
from .activation import (
    ELU,
    GELU,
    Identity,
    LeakyReLU,
    LogSoftmax,
    ReLU,
    Sigmoid,
    SiLU,
    Softmax,
    Softplus,
    Tanh,
)
from .attention import MultiheadAttention
from .batchnorm import BatchNorm1d, BatchNorm2d, SyncBatchNorm
from .checkpoint import load_checkpoint, save_checkpoint
from .conv import Conv2d
from .data import DISK_RADIUS, MiniBatches, disk_dataset, one_hot
from .distributed import DistributedDataParallel
from .flatten import Flatten, Unflatten
from .gpt import CharGPT
from .gradcheck import GradCheckReport, check_gradients
from .layers import Dropout, Linear
from .loss import (
    BCELoss,
    BCEWithLogitsLoss,
    CrossEntropyLoss,
    HuberLoss,
    L1Loss,
    MSELoss,
    NLLLoss,
    SmoothL1Loss,
)
from .lr_scheduler import (
    CosineAnnealingLR,
    ExponentialLR,
    LambdaLR,
    LinearLR,
    LRScheduler,
    MultiStepLR,
    OneCycleLR,
    ReduceLROnPlateau,
    SequentialLR,
    StepLR,
)
from .mnist import load_mnist
from .module import Module, Parameter, Sequential
from .normalization import GroupNorm, LayerNorm
from .optim import SGD, Adagrad, Adam, AdamW, Optimizer, RMSprop
from .pooling import AdaptiveAvgPool2d, AvgPool2d, MaxPool2d
from .sparse import Embedding
from .train import accuracy, evaluate, f1_score, fit
from .transformer import TransformerEncoder, TransformerEncoderLayer

__version__ = "0.1.0"

__all__ = [
    "DISK_RADIUS",
    "ELU",
    "GELU",
    "SGD",
    "Adagrad",
    "Adam",
    "AdamW",
    "AdaptiveAvgPool2d",
    "AvgPool2d",
    "BCELoss",
    "BCEWithLogitsLoss",
    "BatchNorm1d",
    "BatchNorm2d",
    "CharGPT",
    "Conv2d",
    "CosineAnnealingLR",
    "CrossEntropyLoss",
    "DistributedDataParallel",
    "Dropout",
    "Embedding",
    "ExponentialLR",
    "Flatten",
    "GradCheckReport",
    "GroupNorm",
    "HuberLoss",
    "Identity",
    "L1Loss",
    "LRScheduler",
    "LambdaLR",
    "LayerNorm",
    "LeakyReLU",
    "Linear",
    "LinearLR",
    "LogSoftmax",
    "MSELoss",
    "MaxPool2d",
    "MiniBatches",
    "Module",
    "MultiStepLR",
    "MultiheadAttention",
    "NLLLoss",
    "OneCycleLR",
    "Optimizer",
    "Parameter",
    "RMSprop",
    "ReLU",
    "ReduceLROnPlateau",
    "Sequential",
    "SequentialLR",
    "SiLU",
    "Sigmoid",
    "SmoothL1Loss",
    "Softmax",
    "Softplus",
    "StepLR",
    "SyncBatchNorm",
    "Tanh",
    "TransformerEncoder",
    "TransformerEncoderLayer",
    "Unflatten",
    "accuracy",
    "check_gradients",
    "disk_dataset",
    "evaluate",
    "f1_score",
    "fit",
    "init",
    "load_checkpoint",
    "load_mnist",
    "one_hot",
    "save_checkpoint",
]
