"""The workshop's food classifier (ResNet18 + BERT + Transformer fusion) and its export to a model folder.

    from foodmodel import FoodClassifier, FoodClassifierConfig, load_checkpoint
    from foodmodel.export import export_model_folder

scripts/ is the import root (scripts/export_model.py puts it on sys.path).

The modules: config (FoodClassifierConfig, the preprocessing constants), architecture (the nn.Modules:
image encoders, FoodClassifier and the parts the exporter traces), text_encoder and bert (the BERT),
fusion (the fusion's forward), checkpoint (reading training checkpoints); export (writing a model folder)
with export_inputs, export_checks and model_json.
"""

from .architecture import FoodClassifier, HeadPart, SmallCNN, TextEncoderPart, WholeModelPart
from .bert import PlainBert
from .checkpoint import CheckpointError, infer_config, load_checkpoint, read_checkpoint
from .config import CROP, IMAGENET_MEAN, IMAGENET_STD, RESIZE, FoodClassifierConfig
from .text_encoder import transformers_available

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
