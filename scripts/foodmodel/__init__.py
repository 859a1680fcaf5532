"""The workshop's food classifier (ResNet18 + BERT + Transformer fusion) and its export to a model folder.

    from foodmodel import FoodClassifier, FoodClassifierConfig, load_checkpoint
    from foodmodel.export import export_model_folder

scripts/ is the import root (scripts/export_model.py puts it on sys.path).
"""

from .architecture import (
    CROP,
    IMAGENET_MEAN,
    IMAGENET_STD,
    RESIZE,
    CheckpointError,
    FoodClassifier,
    FoodClassifierConfig,
    HeadPart,
    SmallCNN,
    TextEncoderPart,
    WholeModelPart,
    infer_config,
    load_checkpoint,
    read_checkpoint,
    transformers_available,
)
from .bert import PlainBert

__all__ = [
    "CROP",
    "IMAGENET_MEAN",
    "IMAGENET_STD",
    "RESIZE",
    "CheckpointError",
    "FoodClassifier",
    "FoodClassifierConfig",
    "HeadPart",
    "PlainBert",
    "SmallCNN",
    "TextEncoderPart",
    "infer_config",
    "load_checkpoint",
    "read_checkpoint",
    "transformers_available",
    "WholeModelPart",
]
